"""Writing a run into the store: the baseline before any CRM write, the confirmed writes after the loads.

The baseline (values both CRMs already hold, and the loser's value as the base of a first-seen conflict)
is true when reconcile computes it, so it is recorded then: a run killed mid-load and run again decides
the same, even though its own partial writes moved the records' modstamps. Settling the loads works one
reconcile partition at a time: partitions hold disjoint contacts, so each settles on its own against the
load results of its own records, and memory follows the partition, not the run. The retry-queue entries the
run took (`claim_due`) and did not settle are handed back last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crm_sync.staging import read_frame

if TYPE_CHECKING:
    import pandas as pd

    from crm_sync.state.store import SyncStateStore


@dataclass
class SettleTotals:
    """What the store took: snapshot rows written and deleted, queue entries closed, attempts recorded, and
    entries the run took but did not try (handed back)."""

    snapshots_written: int = 0
    snapshots_deleted: int = 0
    retries_resolved: int = 0
    retries_untried: int = 0
    attempts: list[pd.DataFrame] = field(default_factory=list)

    @property
    def attempts_by_code(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for frame in self.attempts:
            for code, n in frame["code"].value_counts().items():
                counts[str(code)] = counts.get(str(code), 0) + int(n)
        return counts


def record_baseline(store: SyncStateStore, baseline: list[str], *, run_id: str) -> int:
    """Merge reconcile's baseline parts into the store; returns the pairs written."""
    return sum(store.merge_snapshots(frame, run_id=run_id) for frame in map(read_frame, baseline) if len(frame))


def settle_parts(
    store: SyncStateStore,
    decisions: list[str],
    results: pd.DataFrame | None,
    *,
    run_id: str,
    run_try: str = "0",
) -> SettleTotals:
    """Settle each decisions part with the results answering its records (the baseline is already recorded),
    then hand back the queue entries this try of the run took without deciding on them."""
    from include.sync_logic.settle import settle

    refs = None if results is None else results["ref"].astype(str)
    totals = SettleTotals()
    for decisions_url in decisions:
        part = read_frame(decisions_url)
        answers = None if results is None or refs is None else results[refs.isin(part["source_id"])]
        outcome = settle(part, answers)
        totals.snapshots_written += sum(
            store.merge_snapshots(frame, run_id=run_id) for frame in outcome.snapshots if len(frame)
        )
        if len(outcome.deleted_pairs):
            pairs = outcome.deleted_pairs
            totals.snapshots_deleted += store.delete_snapshots(pairs["salesforce_id"], pairs["hubspot_id"])
        if len(outcome.resolved):
            totals.retries_resolved += store.resolve(outcome.resolved)
        if len(outcome.attempts):
            store.record_attempts(outcome.attempts, run_id=run_id, run_try=run_try)
            totals.attempts.append(outcome.attempts)
    totals.retries_untried = store.release_claims(run_id=run_id, run_try=run_try)
    return totals
