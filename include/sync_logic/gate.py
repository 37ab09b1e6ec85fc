"""The mass-change gate: a run that would update or delete too large a share of a CRM's contacts stops.

A broken mapping or a bad source import shows up as a large share of a CRM's contacts turning into
updates (or deletes). Each target CRM is judged on its own, against how many contacts it holds as far as
the run knows: the larger of the contacts the run read on that side and the pairs in the sync state (one
contact a side each, so a lower bound on every CRM's size that costs no API call). Judged against what
the run read alone, an ordinary incremental window (every edit read with its counterpart, which it then
updates) sits near half and would stop at the default limit. A create of a new contact overwrites nothing
and is not counted; a re-create (a contact whose counterpart is gone, written anew: `recreate`) is, so a
full resync that would bring back every contact deleted on one side stops here. A target with few changes
(`min_changes`) passes whatever its share, so a window of five edits is never blocked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from include.sync_logic.decisions import Reason, decision_counts
from include.sync_logic.sides import Action, Side

GATED_ACTIONS = ("update", "delete", "recreate")


@dataclass(frozen=True)
class TargetShare:
    """One target CRM's planned overwrites against the contacts it holds as far as the run knows."""

    target: Side
    changes: dict[str, int]  # action -> count
    read: int
    known_pairs: int

    @property
    def total(self) -> int:
        return sum(self.changes.values())

    @property
    def base(self) -> int:
        return max(self.read, self.known_pairs)

    @property
    def share(self) -> float:
        return self.total / self.base if self.base else (1.0 if self.total else 0.0)

    def describe(self) -> str:
        detail = ", ".join(f"{action} {n}" for action, n in sorted(self.changes.items()))
        return (
            f"{self.target} {self.total} ({detail}) = {self.share:.0%} of {self.base} contacts "
            f"({self.read} read, {self.known_pairs} pairs in the sync state)"
        )


@dataclass(frozen=True)
class GateVerdict:
    """What the gate saw per target CRM and whether it lets the run write."""

    targets: tuple[TargetShare, ...]
    max_share: float
    min_changes: int

    def blocks(self, target: TargetShare) -> bool:
        return target.total > self.min_changes and target.share > self.max_share

    @property
    def blocked(self) -> bool:
        return any(self.blocks(target) for target in self.targets)

    @property
    def share(self) -> float:
        """The largest target's share (0 when nothing is changed)."""
        return max((target.share for target in self.targets), default=0.0)

    @property
    def total_changes(self) -> int:
        return sum(target.total for target in self.targets)

    def message(self) -> str:
        """One line for the task log and the failure reason: the numbers, the limit, the way through."""
        detail = "; ".join(target.describe() for target in self.targets) or "none"
        head = (
            f"planned updates/deletes/re-creates: {detail}; limit {self.max_share:.0%} of a CRM's contacts above "
            f"{self.min_changes} changes"
        )
        if self.blocked:
            return f"mass-change gate: {head}. Nothing was written; rerun with allow_mass_change=true if intended."
        return f"mass-change gate passed: {head}."


def contacts_read(decisions: pd.DataFrame) -> dict[str, int]:
    """Contacts the run held per side, each once: the sources decided on and the counterparts they target.

    Counterparts count because reconcile read them too (fetched outside the window).
    """
    linked = decisions[decisions["target_id"].notna() & (decisions["target_id"].astype(str) != "")]
    held = pd.DataFrame(
        {
            "side": pd.concat([decisions["source_system"], linked["target"]], ignore_index=True).astype(str),
            "id": pd.concat([decisions["source_id"], linked["target_id"]], ignore_index=True).astype(str),
        }
    ).drop_duplicates()
    return {str(side): int(n) for side, n in held["side"].value_counts().items()}


def overwriting_counts(decisions: pd.DataFrame) -> dict[str, int]:
    """`"<target>.<action>": n` of the updates and deletes that overwrite data, and the re-creates
    (`<target>.recreate`); an update that only writes our own link field (a pair matched by email, a rerun
    after a killed load) overwrites nothing."""
    recreated = {Reason.RECREATED.format(target=side) for side in Side}
    action = decisions["action"].mask(
        decisions["action"].eq(Action.CREATE) & decisions["reason"].isin(recreated), "recreate"
    )
    gated = decisions.assign(action=action)
    gated = gated[gated["action"].isin(GATED_ACTIONS) & (gated["changed_fields"] != "link")]
    return decision_counts(gated)


def mass_change_verdict(
    decision_counts: Mapping[str, int],
    read: Mapping[str, int],
    *,
    known_pairs: int,
    max_share: float,
    min_changes: int,
) -> GateVerdict:
    """Judge a run from its decision counts (`"<target>.<action>": n`), the contacts it read per side and the
    sync state's pair count."""
    if not 0 <= max_share <= 1:
        raise ValueError(f"max_share must be within [0, 1], not {max_share}")
    changes: dict[str, dict[str, int]] = {}
    for key, count in decision_counts.items():
        target, _, action = key.rpartition(".")
        if action in GATED_ACTIONS and int(count) > 0:
            changes.setdefault(target, {})[action] = int(count)
    targets = tuple(
        TargetShare(Side(target), changes[target], int(read.get(target, 0)), known_pairs) for target in sorted(changes)
    )
    return GateVerdict(targets, max_share, min_changes)
