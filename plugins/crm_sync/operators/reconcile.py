"""Reconcile: both sides' window changes plus their fetched counterparts -> one decision per contact and target."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm_sync.operators.base import CrmSyncOperator, load_mapping_file
from crm_sync.staging import read_frames, write_frame

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Context


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

    def execute(self, context: Context) -> dict[str, Any]:
        from crm_sync.hooks.hubspot import HubSpotContactsHook
        from crm_sync.hooks.salesforce import SalesforceContactsHook
        from include.sync_logic.reconcile import counterpart_requests, reconcile

        settings = self.settings(context)
        mapping = load_mapping_file(self.mapping_path)
        sf_changed = _frame_or_empty(self.salesforce_extract["paths"], mapping.salesforce_fields)
        hs_changed = _frame_or_empty(self.hubspot_extract["paths"], ["id", *mapping.hubspot_properties])

        wanted = counterpart_requests(sf_changed, hs_changed, mapping)
        sf_hook = SalesforceContactsHook(
            salesforce_conn_id=settings.salesforce_conn_id, redis_conn_id=settings.redis_conn_id
        )
        hs_hook = HubSpotContactsHook(hubspot_conn_id=settings.hubspot_conn_id, redis_conn_id=settings.redis_conn_id)
        sf_fetched = [
            sf_hook.fetch_by_ids(sorted(wanted.salesforce_ids), mapping.salesforce_fields),
            sf_hook.fetch_by_emails(sorted(wanted.salesforce_emails), mapping.salesforce_fields),
        ]
        hs_fetched = [
            hs_hook.read_by_ids(sorted(wanted.hubspot_ids), mapping.hubspot_properties),
            hs_hook.read_by_emails(sorted(wanted.hubspot_emails), mapping.hubspot_properties),
        ]
        self.log.info(
            "Counterparts fetched: salesforce %d (asked %d ids, %d emails), hubspot %d (asked %d ids, %d emails)",
            sum(len(frame) for frame in sf_fetched),
            len(wanted.salesforce_ids),
            len(wanted.salesforce_emails),
            sum(len(frame) for frame in hs_fetched),
            len(wanted.hubspot_ids),
            len(wanted.hubspot_emails),
        )
        sf_all = _union([sf_changed, *sf_fetched], "Id")
        hs_all = _union([hs_changed, *hs_fetched], "id")
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
        }
