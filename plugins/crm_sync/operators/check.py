"""The run's last word: after the report (which runs whatever happened), fail the run if any task failed.

Without it the only leaf, `report` (trigger rule all_done), succeeds and the whole run shows green
although a reconcile or load failed and nothing, or only part, was synced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from crm_sync.operators.base import CrmSyncOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

FAILED_STATES = ("failed", "upstream_failed")


def failed_tasks(states: dict[str, Any], own_task_id: str) -> dict[str, str]:
    """Task ids (mapped ones as `<task>_<index>`) in a failed state, except the checking task itself."""
    return {
        task: str(state) for task, state in sorted(states.items()) if state in FAILED_STATES and task != own_task_id
    }


class RunOutcomeOperator(CrmSyncOperator):
    """Trigger rule all_done; fails naming every failed task so the run's state tells the truth."""

    ui_color = "#e8e8f4"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)

    def execute(self, context: Context) -> None:
        run_id = context["run_id"]
        states = context["ti"].get_task_states(dag_id=self.dag_id, run_ids=[run_id]).get(run_id, {})
        failed = failed_tasks(states, self.task_id)
        if failed:
            named = ", ".join(f"{task} ({state})" for task, state in failed.items())
            raise AirflowFailException(f"{len(failed)} task(s) did not succeed: {named}; the report says what was done")
        self.log.info("all %d task instances succeeded or were skipped", len(states) - 1)
