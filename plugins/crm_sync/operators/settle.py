"""Settle: after the loads, move the sync state to what both CRMs now hold and update the retry queue.

Runs whatever happened upstream (trigger rule all_done): a load task that failed for good leaves its
records unanswered, and they become retry-queue entries here, so the next run writes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm_sync.operators.base import CrmSyncOperator
from crm_sync.staging import read_frames

if TYPE_CHECKING:
    from airflow.sdk import Context


class SettleStateOperator(CrmSyncOperator):
    """Snapshots of confirmed writes and agreed values; retry-queue attempts for every write that did not land."""

    ui_color = "#e8eef7"

    def execute(self, context: Context) -> dict[str, Any]:
        from crm_sync.state.hook import SyncStateHook
        from crm_sync.state.settling import settle_parts

        settings = self.settings(context)
        store = SyncStateHook(settings.state_conn_id).get_store()
        reconciled = context["ti"].xcom_pull(task_ids="reconcile") or {}
        if not reconciled.get("decisions"):
            self.log.warning("reconcile produced no decisions (it failed?): the sync state is left as it was")
            return {"settled": False, "retry_queue": store.queue_size()}
        if settings.dry_run:
            self.log.info("dry run: the sync state and the retry queue are left as they were")
            return {"settled": False, "retry_queue": store.queue_size()}
        folder = self.run_folder(context)
        results = read_frames([str(path) for path in sorted((folder / "results").glob("*.parquet"))])
        totals = settle_parts(store, reconciled["decisions"], results, run_id=context["run_id"])
        queue = store.queue_size()
        attempts_by_code = totals.attempts_by_code
        recorded = sum(attempts_by_code.values())
        self.log.info("::group::Sync state")
        self.log.info(
            "snapshots written: %d; pairs removed after deletes: %d", totals.snapshots_written, totals.snapshots_deleted
        )
        self.log.info(
            "retry queue: %d entries closed, %d attempts recorded %s",
            totals.retries_resolved,
            recorded,
            attempts_by_code,
        )
        shown = [row for frame in totals.attempts for row in frame.head(200).itertuples(index=False)][:200]
        for row in shown:
            self.log.info(
                "retry target=%s source=%s action=%s code=%s", row.target, row.source_id, row.action, row.code
            )
        self.log.info("retry queue now: %s", queue)
        self.log.info("::endgroup::")
        return {
            "settled": True,
            "snapshots_written": totals.snapshots_written,
            "snapshots_deleted": totals.snapshots_deleted,
            "retries_resolved": totals.retries_resolved,
            "retries_recorded": recorded,
            "retries_by_code": attempts_by_code,
            "retry_queue": queue,
        }
