"""Reconcile: both sides' window changes plus their fetched counterparts -> one decision per contact and target."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm_sync.operators.base import CrmSyncOperator, api_stats, load_mapping_file
from crm_sync.report import merge_counters
from crm_sync.staging import read_frames, write_frame

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Context

    from include.sync_logic.mapping import MappingConfig


def _frame_or_empty(urls: list[str], columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    frame = read_frames(urls)
    return frame if frame is not None else pd.DataFrame(columns=columns)


def _union(frames: list[pd.DataFrame], key: str) -> pd.DataFrame:
    """Window rows first, so a counterpart fetched again keeps its window copy."""
    import pandas as pd

    present = [frame for frame in frames if not frame.empty]
    if not present:
        return frames[0]
    return pd.concat(present, ignore_index=True).drop_duplicates(subset=[key], keep="first")


class ReconcileContactsOperator(CrmSyncOperator):
    """Fetches counterparts the window did not bring (in batches), then runs the vectorised decision engine."""

    template_fields = ("mapping_path", "salesforce_extract", "hubspot_extract")
    ui_color = "#fdf3e1"

    def __init__(self, *, mapping_path: str, salesforce_extract: Any, hubspot_extract: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mapping_path = mapping_path
        self.salesforce_extract = salesforce_extract
        self.hubspot_extract = hubspot_extract

    def _with_counterparts(
        self, sf: pd.DataFrame, hs: pd.DataFrame, sf_hook: Any, hs_hook: Any, mapping: MappingConfig
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Add the counterparts the window did not bring, in batches, until the pairs are closed.

        A fetched contact may link to a third record (a HubSpot contact found by email that is linked
        to another Salesforce contact): the second round fetches those, so reconcile sees whole pairs
        and reports a duplicate instead of creating one. Keys already asked for are not asked again.
        """
        from include.sync_logic.reconcile import counterpart_requests

        fields, properties = mapping.salesforce_fields, mapping.hubspot_properties
        fetchers = {
            "salesforce_ids": lambda keys: sf_hook.fetch_by_ids(keys, fields),
            "salesforce_emails": lambda keys: sf_hook.fetch_by_emails(keys, fields),
            "salesforce_by_hubspot_id": lambda keys: sf_hook.fetch_by_hubspot_ids(keys, fields),
            "hubspot_ids": lambda keys: hs_hook.read_by_ids(keys, properties),
            "hubspot_emails": lambda keys: hs_hook.read_by_emails(keys, properties),
            "hubspot_by_salesforce_id": lambda keys: hs_hook.read_by_salesforce_ids(
                keys, properties, link_property=mapping.link.hubspot
            ),
        }
        asked: dict[str, set[str]] = {kind: set() for kind in fetchers}
        for round_number in (1, 2):
            wanted = counterpart_requests(sf, hs, mapping)
            fresh = {kind: [key for key in getattr(wanted, kind) if key not in asked[kind]] for kind in fetchers}
            if not any(fresh.values()):
                break
            found = {kind: fetchers[kind](keys) for kind, keys in fresh.items() if keys}
            for kind, keys in fresh.items():
                asked[kind].update(keys)
            sf = _union([sf, *(frame for kind, frame in found.items() if kind.startswith("salesforce"))], "Id")
            hs = _union([hs, *(frame for kind, frame in found.items() if kind.startswith("hubspot"))], "id")
            self.log.info(
                "Counterparts round %d: %s",
                round_number,
                ", ".join(f"{kind} asked {len(keys)} found {len(found.get(kind, []))}" for kind, keys in fresh.items()),
            )
        return sf, hs

    def execute(self, context: Context) -> dict[str, Any]:
        from crm_sync.hooks.hubspot import HubSpotContactsHook
        from crm_sync.hooks.salesforce import SalesforceContactsHook
        from include.sync_logic.reconcile import reconcile

        settings = self.settings(context)
        mapping = load_mapping_file(self.mapping_path)
        sf_changed = _frame_or_empty(self.salesforce_extract["paths"], mapping.salesforce_fields)
        hs_changed = _frame_or_empty(self.hubspot_extract["paths"], ["id", *mapping.hubspot_properties])

        sf_hook = SalesforceContactsHook(settings.salesforce_conn_id, redis_conn_id=settings.redis_conn_id)
        hs_hook = HubSpotContactsHook(settings.hubspot_conn_id, redis_conn_id=settings.redis_conn_id)
        sf_all, hs_all = self._with_counterparts(sf_changed, hs_changed, sf_hook, hs_hook, mapping)
        decisions = reconcile(
            sf_all,
            hs_all,
            sf_changed_ids=set(sf_changed["Id"].astype(str)),
            hs_changed_ids=set(hs_changed["id"].astype(str)),
            mapping=mapping,
            direction=settings.direction,
        )
        counts = decisions.groupby(["target", "action"]).size()
        summary = {f"{target}.{action}": int(n) for (target, action), n in counts.items()}
        self.log.info("::group::Decisions")
        for key, value in sorted(summary.items()):
            self.log.info("%s: %d", key, value)
        self.log.info("conflicts resolved: %d", int(decisions["conflict"].sum()) if len(decisions) else 0)
        self.log.info("::endgroup::")
        url = write_frame(self.run_folder(context) / "decisions.parquet", decisions)
        return {
            "decisions": url,
            "counts": summary,
            "salesforce_in_window": len(sf_changed),
            "hubspot_in_window": len(hs_changed),
            "api": merge_counters([api_stats("salesforce", sf_hook), api_stats("hubspot", hs_hook)]),
        }
