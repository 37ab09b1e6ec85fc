"""The mass-change gate: a run that would update or delete too large a share of what it read stops.

A broken mapping or a bad source import shows up as nearly every contact read turning into an update
(or a delete). Creates are not counted: a new contact overwrites nothing. Tiny runs pass whatever their
share (`min_changes`), so a window of five edits is never blocked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

GATED_ACTIONS = ("update", "delete")


@dataclass(frozen=True)
class GateVerdict:
    """What the gate saw and whether it lets the run write."""

    read: int
    changes: dict[str, int]
    share: float
    max_share: float
    min_changes: int
    blocked: bool

    @property
    def total_changes(self) -> int:
        return sum(self.changes.values())

    def message(self) -> str:
        """One line for the task log and the failure reason: the numbers, the limit, the way through."""
        detail = ", ".join(f"{key} {count}" for key, count in sorted(self.changes.items())) or "none"
        head = (
            f"{self.total_changes} planned updates/deletes ({detail}) = {self.share:.0%} of {self.read} contacts "
            f"read; limit {self.max_share:.0%} above {self.min_changes} changes"
        )
        if self.blocked:
            return f"mass-change gate: {head}. Nothing was written; rerun with allow_mass_change=true if intended."
        return f"mass-change gate passed: {head}."


def contacts_read(decisions: pd.DataFrame) -> int:
    """Every contact the run held, each once: the sources decided on and the counterparts they target.

    Counterparts count because reconcile read them too (fetched outside the window); without them a window
    of ordinary one-sided edits would look like "every contact read gets updated".
    """
    sources = set(zip(decisions["source_system"].astype(str), decisions["source_id"].astype(str), strict=True))
    linked = decisions[decisions["target_id"].notna() & (decisions["target_id"].astype(str) != "")]
    targets = set(zip(linked["target"].astype(str), linked["target_id"].astype(str), strict=True))
    return len(sources | targets)


def overwriting_counts(decisions: pd.DataFrame) -> dict[str, int]:
    """`"<target>.<action>": n` of the updates and deletes that overwrite data; an update that only writes our
    own link field (a pair matched by email, a rerun after a killed load) overwrites nothing."""
    gated = decisions[decisions["action"].isin(GATED_ACTIONS) & (decisions["changed_fields"] != "link")]
    counts = gated.groupby(["target", "action"]).size()
    return {f"{target}.{action}": int(n) for (target, action), n in counts.items()}


def mass_change_verdict(
    decision_counts: Mapping[str, int], read: int, *, max_share: float, min_changes: int
) -> GateVerdict:
    """Judge a run from its decision counts (`"<target>.<action>": n`) and the number of contacts read."""
    if not 0 <= max_share <= 1:
        raise ValueError(f"max_share must be within [0, 1], not {max_share}")
    changes = {
        key: int(count)
        for key, count in decision_counts.items()
        if key.rpartition(".")[2] in GATED_ACTIONS and int(count) > 0
    }
    total = sum(changes.values())
    share = total / read if read else (1.0 if total else 0.0)
    blocked = total > min_changes and share > max_share
    return GateVerdict(read, changes, share, max_share, min_changes, blocked)
