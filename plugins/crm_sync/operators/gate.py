"""The mass-change gate task: between reconcile and the plans, so a blocked run writes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException

from crm_sync.operators.base import CrmSyncOperator

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.sdk.types import Logger

    from crm_sync.params import RunParams
    from crm_sync.task_results import GateResult, ReconcileResult


class MassChangeGateOperator(CrmSyncOperator):
    """Fails the run (no retry: the same data gives the same verdict) when it would change too much.

    Reads reconcile's decisions and the sync state's pair count it saw (each CRM's size from below).
    `allow_mass_change` lets a deliberate mass change through;
    a dry run is never blocked (it writes nothing) but logs the verdict.
    """

    template_fields = ("reconcile_result",)
    ui_color = "#fde2e2"

    def __init__(self, *, reconcile_result: ReconcileResult, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reconcile_result = reconcile_result

    def execute(self, context: Context) -> GateResult:
        params = self.run_params(context)
        return mass_change_gate(
            self.reconcile_result["decisions"], self.reconcile_result["known_pairs"], params, log=self.log
        )


def mass_change_gate(decisions: list[str], known_pairs: int, params: RunParams, *, log: Logger) -> GateResult:
    """The verdict on the decision parts; raises AirflowFailException when they change too much and the run's
    params do not let it through (`allow_mass_change`, or a dry run, which writes nothing)."""
    from collections import Counter

    from crm_sync.staging import iter_frames
    from include.sync_logic.gate import contacts_read, mass_change_verdict, overwriting_counts

    changes: Counter[str] = Counter()
    read: Counter[str] = Counter()
    for part in iter_frames(decisions):  # partitions hold disjoint contacts
        changes.update(overwriting_counts(part))
        read.update(contacts_read(part))
    verdict = mass_change_verdict(
        dict(changes),
        read,
        known_pairs=known_pairs,
        max_share=params.max_change_share,
        min_changes=params.mass_change_min_count,
    )
    let_through = params.allow_mass_change or params.dry_run
    if verdict.blocked and not let_through:
        raise AirflowFailException(verdict.message())
    if verdict.blocked:
        reason = "allow_mass_change" if params.allow_mass_change else "dry run"
        log.warning("%s Let through (%s).", verdict.message().split(". Nothing")[0], reason)
    else:
        log.info("%s", verdict.message())
    return {"blocked": verdict.blocked, "let_through": let_through, "share": round(verdict.share, 4)}
