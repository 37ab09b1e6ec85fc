"""Reconcile: the window's changes plus the retry queue's due contacts, their counterparts and the sync state
-> one decision per contact and target, and the baseline the state records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm_sync.operators.base import CrmSyncOperator, api_stats, load_mapping_file
from crm_sync.report import merge_counters
from crm_sync.staging import read_frames, write_frame

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Context

    from crm_sync.state.store import SyncStateStore


def _frame_or_empty(urls: list[str], columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    frame = read_frames(urls)
    return frame if frame is not None else pd.DataFrame(columns=columns)


class ReconcileContactsOperator(CrmSyncOperator):
    """Adds due retries and fetches counterparts (in batches), then runs the three-way merge and decisions."""

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
        from crm_sync.state.hook import SyncStateHook
        from include.sync_logic.counterparts import close_counterparts, union_staged
        from include.sync_logic.reconcile import reconcile
        from include.sync_logic.sides import Direction, Side

        settings = self.settings(context)
        mapping = load_mapping_file(self.mapping_path)
        fields, properties = mapping.salesforce_fields, mapping.hubspot_properties
        sf_hook = SalesforceContactsHook(settings.salesforce_conn_id, redis_conn_id=settings.redis_conn_id)
        hs_hook = HubSpotContactsHook(settings.hubspot_conn_id, redis_conn_id=settings.redis_conn_id)
        store = SyncStateHook(settings.state_conn_id).get_store()

        window = {
            Side.SALESFORCE: _frame_or_empty(self.salesforce_extract["paths"], fields),
            Side.HUBSPOT: _frame_or_empty(self.hubspot_extract["paths"], ["id", *properties]),
        }
        due = self._due_retries(store, Direction(settings.direction))
        fetch_by_id = {
            Side.SALESFORCE: lambda keys: sf_hook.fetch_by_ids(keys, fields),
            Side.HUBSPOT: lambda keys: hs_hook.read_by_ids(keys, properties),
        }
        candidates = {
            side: union_staged([window[side], fetch_by_id[side](due[side])], side) if due[side] else window[side]
            for side in Side
        }
        sf_all, hs_all = close_counterparts(
            candidates[Side.SALESFORCE],
            candidates[Side.HUBSPOT],
            mapping,
            {
                "salesforce_ids": fetch_by_id[Side.SALESFORCE],
                "salesforce_emails": lambda keys: sf_hook.fetch_by_emails(keys, fields),
                "salesforce_by_hubspot_id": lambda keys: sf_hook.fetch_by_hubspot_ids(keys, fields),
                "hubspot_ids": fetch_by_id[Side.HUBSPOT],
                "hubspot_emails": lambda keys: hs_hook.read_by_emails(keys, properties),
                "hubspot_by_salesforce_id": lambda keys: hs_hook.read_by_salesforce_ids(
                    keys, properties, link_property=mapping.link.hubspot
                ),
            },
            log=self.log.info,
        )
        if settings.full_resync:
            snapshots = store.read_all_snapshots()
        else:
            snapshots = store.read_snapshots(sf_all["Id"].astype(str), hs_all["id"].astype(str))
        self.log.info("Sync state: %d snapshots for %d + %d contacts", len(snapshots), len(sf_all), len(hs_all))
        result = reconcile(
            sf_all,
            hs_all,
            sf_changed_ids=set(candidates[Side.SALESFORCE]["Id"].astype(str)),
            hs_changed_ids=set(candidates[Side.HUBSPOT]["id"].astype(str)),
            mapping=mapping,
            direction=settings.direction,
            snapshots=snapshots,
        )
        decisions = result.decisions
        counts = decisions.groupby(["target", "action"]).size()
        summary = {f"{target}.{action}": int(n) for (target, action), n in counts.items()}
        self.log.info("::group::Decisions")
        for key, value in sorted(summary.items()):
            self.log.info("%s: %d", key, value)
        self.log.info("conflicts resolved: %d", int(decisions["conflict"].sum()) if len(decisions) else 0)
        self.log.info("pairs whose agreed values the state records before any write: %d", len(result.baseline))
        self.log.info("::endgroup::")
        folder = self.run_folder(context)
        return {
            "decisions": write_frame(folder / "decisions.parquet", decisions),
            "baseline": write_frame(folder / "baseline.parquet", result.baseline),
            "counts": summary,
            "salesforce_in_window": len(window[Side.SALESFORCE]),
            "hubspot_in_window": len(window[Side.HUBSPOT]),
            "retries_due": {str(side): len(due[side]) for side in Side},
            "snapshots_read": len(snapshots),
            "api": merge_counters([api_stats("salesforce", sf_hook), api_stats("hubspot", hs_hook)]),
        }

    def _due_retries(self, store: SyncStateStore, direction: Any) -> dict[Any, list[str]]:
        """Source ids of due retry-queue entries per source side, for the targets this run writes."""
        from include.sync_logic.sides import Side

        due = store.due()
        wanted = due[due["target"].isin([str(target) for target in direction.targets])]
        by_side = {
            side: sorted(set(wanted.loc[wanted["target"] == side.other, "source_id"].astype(str))) for side in Side
        }
        self.log.info(
            "Retry queue: %d entries due (%s)",
            len(wanted),
            ", ".join(f"{side} {len(ids)}" for side, ids in by_side.items()),
        )
        return by_side
