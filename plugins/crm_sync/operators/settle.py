"""Settle: after the loads, move the sync state to what both CRMs now hold and update the retry queue.

Runs whatever happened upstream (trigger rule all_done): a load task that failed for good leaves its
records unanswered, and they become retry-queue entries here, so the next run writes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm_sync.operators.base import CrmSyncOperator
from crm_sync.staging import read_frame, read_frames

if TYPE_CHECKING:
    from airflow.sdk import Context


class SettleStateOperator(CrmSyncOperator):
    """Snapshots of confirmed writes and agreed values; retry-queue attempts for every write that did not land."""

    ui_color = "#e8eef7"

    def execute(self, context: Context) -> dict[str, Any]:
        import pandas as pd

        from crm_sync.state.hook import SyncStateHook
        from include.sync_logic.settle import settle

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
        run_id = context["run_id"]
        snapshots = deleted = resolved = 0
        attempt_parts = []
        # One reconcile partition at a time: their contacts are disjoint, so each settles on its own.
        for decisions_url, baseline_url in zip(reconciled["decisions"], reconciled["baseline"], strict=True):
            decisions = read_frame(decisions_url)
            answers = None if results is None else results[results["ref"].astype(str).isin(decisions["source_id"])]
            outcome = settle(decisions, read_frame(baseline_url), answers)
            snapshots += sum(store.merge_snapshots(frame, run_id=run_id) for frame in outcome.snapshots if len(frame))
            if len(outcome.deleted_pairs):
                pairs = outcome.deleted_pairs
                deleted += store.delete_snapshots(pairs["salesforce_id"], pairs["hubspot_id"])
            resolved += store.resolve(outcome.resolved) if len(outcome.resolved) else 0
            if len(outcome.attempts):
                store.record_attempts(outcome.attempts, run_id=run_id)
                attempt_parts.append(outcome.attempts)
        attempts = pd.concat(attempt_parts, ignore_index=True) if attempt_parts else pd.DataFrame(columns=["code"])
        queue = store.queue_size()
        attempts_by_code = attempts["code"].value_counts().to_dict() if len(attempts) else {}
        self.log.info("::group::Sync state")
        self.log.info("snapshots written: %d; pairs removed after deletes: %d", snapshots, deleted)
        self.log.info(
            "retry queue: %d entries closed, %d attempts recorded %s", resolved, len(attempts), attempts_by_code
        )
        for row in attempts.head(200).itertuples(index=False):
            self.log.info(
                "retry target=%s source=%s action=%s code=%s", row.target, row.source_id, row.action, row.code
            )
        self.log.info("retry queue now: %s", queue)
        self.log.info("::endgroup::")
        return {
            "settled": True,
            "snapshots_written": snapshots,
            "snapshots_deleted": deleted,
            "retries_resolved": resolved,
            "retries_recorded": len(attempts),
            "retries_by_code": {str(k): int(v) for k, v in attempts_by_code.items()},
            "retry_queue": queue,
        }
