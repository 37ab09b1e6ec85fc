"""Settling a run's staged decisions into the store, one reconcile partition at a time.

Partitions hold disjoint contacts, so each settles on its own against the load results of its own
records: memory follows the partition, not the run.
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
    """What the store took: snapshot rows written and deleted, queue entries closed, attempts recorded."""

    snapshots_written: int = 0
    snapshots_deleted: int = 0
    retries_resolved: int = 0
    attempts: list[pd.DataFrame] = field(default_factory=list)

    @property
    def attempts_by_code(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for frame in self.attempts:
            for code, n in frame["code"].value_counts().items():
                counts[str(code)] = counts.get(str(code), 0) + int(n)
        return counts


def settle_parts(
    store: SyncStateStore,
    decisions: list[str],
    baseline: list[str],
    results: pd.DataFrame | None,
    *,
    run_id: str,
) -> SettleTotals:
    """Settle each (decisions, baseline) part pair with the results answering its records."""
    from include.sync_logic.settle import settle

    totals = SettleTotals()
    for decisions_url, baseline_url in zip(decisions, baseline, strict=True):
        part = read_frame(decisions_url)
        answers = None if results is None else results[results["ref"].astype(str).isin(part["source_id"])]
        outcome = settle(part, read_frame(baseline_url), answers)
        totals.snapshots_written += sum(
            store.merge_snapshots(frame, run_id=run_id) for frame in outcome.snapshots if len(frame)
        )
        if len(outcome.deleted_pairs):
            pairs = outcome.deleted_pairs
            totals.snapshots_deleted += store.delete_snapshots(pairs["salesforce_id"], pairs["hubspot_id"])
        if len(outcome.resolved):
            totals.retries_resolved += store.resolve(outcome.resolved)
        if len(outcome.attempts):
            store.record_attempts(outcome.attempts, run_id=run_id)
            totals.attempts.append(outcome.attempts)
    return totals
