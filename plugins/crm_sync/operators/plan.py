"""Plan: cut one side's write decisions into API-sized batch files, grouped into shards for mapping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import ObjectStoragePath

from crm_sync.operators.base import CrmSyncOperator, param_template
from crm_sync.staging import iter_frames, write_frame
from include.sync_logic.sides import Side

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd
    from airflow.sdk import Context

    from crm_sync.task_results import BatchDescriptor, ReconcileResult, Shard
    from include.sync_logic.plan import PlanConfig


class PlanWritesOperator(CrmSyncOperator):
    """Returns the shards of the writes to one side (each a list of batch descriptors) for its load to map over.

    A shard is the unit of dynamic task mapping, so the number of task instances stays bounded
    (`max_shards`) however many batches a resync produces. One plan task per side: a mapped task
    can only expand over a task's return value.

    :param side: the side written to.
    :param reconcile_result: the reconcile task's result (its `.output`).
    :param salesforce_bulk_threshold: above this many Salesforce writes of one action, one Bulk API 2.0 job;
        default: the Salesforce hook's (connection extra `bulk_threshold`).
    :param salesforce_conn_id: the Salesforce connection (templated; default: the run's param).
    """

    template_fields = ("reconcile_result", "salesforce_conn_id")
    ui_color = "#fdf3e1"

    def __init__(
        self,
        *,
        side: Side,
        reconcile_result: ReconcileResult,
        max_shards: int = 8,
        hubspot_batch_size: int = 100,
        salesforce_batch_size: int = 200,
        salesforce_bulk_threshold: int | None = None,
        salesforce_conn_id: str = param_template("salesforce_conn_id"),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.side = Side(side)
        self.reconcile_result = reconcile_result
        self.max_shards = max_shards
        self.hubspot_batch_size = hubspot_batch_size
        self.salesforce_batch_size = salesforce_batch_size
        self.salesforce_bulk_threshold = salesforce_bulk_threshold
        self.salesforce_conn_id = salesforce_conn_id

    def execute(self, context: Context) -> list[Shard]:
        from include.sync_logic.plan import PlanConfig

        config = PlanConfig(
            hubspot_batch_size=self.hubspot_batch_size,
            salesforce_batch_size=self.salesforce_batch_size,
            salesforce_bulk_threshold=self.bulk_threshold(),
            max_shards=self.max_shards,
        )
        folder = ObjectStoragePath(self.reconcile_result["folder"]) / "batches"
        return plan_shards(self.reconcile_result["decisions"], self.side, folder, config, log=self.log.info)

    def bulk_threshold(self) -> int:
        """The argument, else (writes to Salesforce) the Salesforce hook's, the one that also switches its reads."""
        from include.sync_logic.plan import SALESFORCE_BULK_THRESHOLD

        if self.salesforce_bulk_threshold is not None:
            return self.salesforce_bulk_threshold
        if self.side is not Side.SALESFORCE:
            return SALESFORCE_BULK_THRESHOLD  # HubSpot has no bulk API: never used
        from crm_sync.hooks.salesforce import SalesforceContactsHook

        return SalesforceContactsHook(self.salesforce_conn_id).bulk_threshold


def target_writes(urls: list[str], target: Side) -> pd.DataFrame:
    """The write decisions to one side from the decision parts: a large resync's skips never sit in memory."""
    import pandas as pd

    from include.sync_logic.sides import WRITE_ACTIONS

    parts = [part[(part["target"] == target) & part["action"].isin(WRITE_ACTIONS)] for part in iter_frames(urls)]
    return pd.concat(parts, ignore_index=True)


def plan_shards(
    decisions: list[str], side: Side, folder: ObjectStoragePath, config: PlanConfig, *, log: Callable[[str], None]
) -> list[Shard]:
    """The writes to `side` among the decision parts, cut into batch files under `folder`, grouped into shards."""
    from include.sync_logic.plan import plan_target

    planned = plan_target(target_writes(decisions, side), side, config)
    by_batch = dict(tuple(planned.writes.groupby("batch", sort=True))) if not planned.empty else {}
    meta = {
        batch["batch"]: (str(batch["action"]), str(batch["api"]), int(batch["size"]))
        for batch in planned.batches.to_dict("records")
    }
    shards: list[Shard] = []
    for shard_number, batch_numbers in enumerate(planned.shards):
        batches: Shard = []
        for number in batch_numbers:
            action, api, rows = meta[number]
            name = f"{side}-{action}-{number:05d}.parquet"
            url = write_frame(folder / name, by_batch[number].drop(columns=["batch", "api"]))
            batch: BatchDescriptor = {"url": url, "action": action, "api": api, "rows": rows}
            batches.append(batch)
        shards.append(batches)
        log(f"{side} shard {shard_number}: {len(batches)} batches, {sum(batch['rows'] for batch in batches)} records")
    log(f"{side} plan: {len(planned.writes)} records in {len(planned.batches)} batches, {len(shards)} shards")
    return shards
