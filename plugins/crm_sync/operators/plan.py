"""Plan: cut each target's write decisions into API-sized batch files, grouped into shards for mapping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import ObjectStoragePath

from crm_sync.operators.base import CrmSyncOperator
from crm_sync.staging import iter_frames, write_frame

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import Context


class PlanWritesOperator(CrmSyncOperator):
    """Returns one target's shards (each a list of batch descriptors) for the load task to map over.

    A shard is the unit of dynamic task mapping, so the number of task instances stays bounded
    (`max_shards`) however many batches a resync produces. One plan task per target: a mapped task
    can only expand over a task's return value.
    """

    template_fields = ("reconcile_result",)
    ui_color = "#fdf3e1"

    def __init__(
        self,
        *,
        reconcile_result: Any,
        target: str,
        max_shards: int = 8,
        hubspot_batch_size: int = 100,
        salesforce_batch_size: int = 200,
        salesforce_bulk_threshold: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if target not in ("hubspot", "salesforce"):
            raise ValueError(f"target must be hubspot or salesforce, not {target!r}")
        self.reconcile_result = reconcile_result
        self.target = target
        self.max_shards = max_shards
        self.hubspot_batch_size = hubspot_batch_size
        self.salesforce_batch_size = salesforce_batch_size
        self.salesforce_bulk_threshold = salesforce_bulk_threshold

    def execute(self, context: Context) -> list[list[dict[str, Any]]]:
        from include.sync_logic.plan import PlanConfig, plan_target

        decisions = target_writes(self.reconcile_result["decisions"], self.target)
        folder = ObjectStoragePath(self.reconcile_result["folder"]) / "batches"
        config = PlanConfig(
            hubspot_batch_size=self.hubspot_batch_size,
            salesforce_batch_size=self.salesforce_batch_size,
            salesforce_bulk_threshold=self.bulk_threshold(context),
            max_shards=self.max_shards,
        )
        planned = plan_target(decisions, self.target, config)
        by_batch = dict(tuple(planned.writes.groupby("batch", sort=True))) if not planned.empty else {}
        meta = planned.batches.set_index("batch")
        shards: list[list[dict[str, Any]]] = []
        for shard_number, batch_numbers in enumerate(planned.shards):
            batches = []
            for number in batch_numbers:
                action, api = meta.at[number, "action"], meta.at[number, "api"]
                name = f"{self.target}-{action}-{number:05d}.parquet"
                url = write_frame(folder / name, by_batch[number].drop(columns=["batch", "api"]))
                batches.append({"url": url, "action": action, "api": api, "rows": int(meta.at[number, "size"])})
            shards.append(batches)
            self.log.info(
                "%s shard %d: %d batches, %d records",
                self.target,
                shard_number,
                len(batches),
                sum(batch["rows"] for batch in batches),
            )
        self.log.info(
            "%s plan: %d records in %d batches, %d shards",
            self.target,
            len(planned.writes),
            len(planned.batches),
            len(shards),
        )
        return shards

    def bulk_threshold(self, context: Context) -> int:
        """Above this many Salesforce writes of one action, one Bulk API 2.0 job: the argument, else the
        Salesforce connection extra `bulk_threshold` (the one that also switches reads), else 10,000."""
        if self.salesforce_bulk_threshold is not None:
            return self.salesforce_bulk_threshold
        if self.target != "salesforce":
            return 10_000
        from airflow.sdk import BaseHook

        extras = BaseHook.get_connection(self.settings(context).salesforce_conn_id).extra_dejson
        return int(extras.get("bulk_threshold") or 10_000)


def target_writes(urls: list[str], target: str) -> pd.DataFrame:
    """One target's write decisions from the decision parts: a large resync's skips never sit in memory."""
    import pandas as pd

    from include.sync_logic.sides import WRITE_ACTIONS

    parts = [part[(part["target"] == target) & part["action"].isin(WRITE_ACTIONS)] for part in iter_frames(urls)]
    return pd.concat(parts, ignore_index=True)
