"""Settle: after the loads, move the sync state to what both CRMs now hold and update the retry queue.

Runs whatever happened upstream (trigger rule all_done): a load task that failed for good leaves its
records unanswered, and they become retry-queue entries here, so the next run writes them. The queue entries
this try of the run took end their lease here: counted when tried, handed back untried otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm_sync.operators.base import CrmSyncOperator, param_template, run_try
from crm_sync.staging import read_frames, result_urls

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Context

    from crm_sync.state.store import SyncStateStore
    from crm_sync.task_results import ReconcileResult, SettleResult


class SettleStateOperator(CrmSyncOperator):
    """Snapshots of confirmed writes and agreed values; retry-queue attempts for every write that did not land.

    :param reconcile_result: the reconcile task's result (its `.output`); None when reconcile failed.
    :param state_conn_id: the sync-state database (templated; default: the run's param).
    """

    template_fields = ("reconcile_result", "state_conn_id")
    ui_color = "#e8eef7"

    def __init__(
        self,
        *,
        reconcile_result: ReconcileResult | None,
        state_conn_id: str = param_template("state_conn_id"),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.reconcile_result = reconcile_result
        self.state_conn_id = state_conn_id

    def execute(self, context: Context) -> SettleResult:
        from crm_sync.state.hook import SyncStateHook

        store = SyncStateHook(self.state_conn_id).get_store()
        run_id, this_try = context["run_id"], run_try(context)
        reconciled = self.reconcile_result
        if not reconciled or not reconciled["decisions"]:
            untried = store.release_claims(run_id=run_id, run_try=this_try)
            self.log.warning(
                "reconcile produced no decisions (it failed?): the sync state is left as it was; "
                "%d retry-queue entries it took are due again",
                untried,
            )
            return {"settled": False, "retries_untried": untried, "retry_queue": store.queue_size()}
        if self.run_params(context).dry_run:
            self.log.info("dry run: the sync state and the retry queue are left as they were")
            return {"settled": False, "retry_queue": store.queue_size()}
        return settle_run(
            store, reconciled["folder"], reconciled["decisions"], run_id=run_id, run_try=this_try, log=self.log.info
        )


def settle_run(
    store: SyncStateStore,
    folder: str,
    decisions: list[str],
    *,
    run_id: str,
    run_try: str,
    log: Callable[[str], None],
) -> SettleResult:
    """Settle a reconcile's decision parts with the load and link results staged in its `folder`; log what the
    state and the retry queue took."""
    from crm_sync.state.settling import settle_parts

    results = read_frames(result_urls(folder))
    totals = settle_parts(store, decisions, results, run_id=run_id, run_try=run_try)
    queue = store.queue_size()
    attempts_by_code = totals.attempts_by_code
    recorded = sum(attempts_by_code.values())
    parked = sum(int(frame["permanent"].sum()) for frame in totals.attempts)  # refusals no retry can pass
    log("::group::Sync state")
    log(f"snapshots written: {totals.snapshots_written}; pairs removed after deletes: {totals.snapshots_deleted}")
    log(
        f"retry queue: {totals.retries_resolved} entries closed, {recorded} attempts recorded {attempts_by_code}, "
        f"{parked} parked at once (permanent refusals)"
    )
    shown = [row for frame in totals.attempts for row in frame.head(200).itertuples(index=False)][:200]
    for row in shown:
        log(
            f"retry target={row.target} source={row.source_id} action={row.action} code={row.code} "
            f"permanent={row.permanent}"
        )
    log(f"retry queue: {totals.retries_untried} entries this run took but never tried are due again")
    log(f"retry queue now: {queue}")
    log("::endgroup::")
    return {
        "settled": True,
        "snapshots_written": totals.snapshots_written,
        "snapshots_deleted": totals.snapshots_deleted,
        "retries_resolved": totals.retries_resolved,
        "retries_recorded": recorded,
        "retries_untried": totals.retries_untried,
        "retries_by_code": attempts_by_code,
        "retries_parked": parked,
        "retry_queue": queue,
    }
