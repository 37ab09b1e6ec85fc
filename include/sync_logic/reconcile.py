"""Reconciliation: from the staged frames of both CRMs and the sync state to one decision per contact and target.

canonical frames (canonical.py) -> pairs and duplicates (pairing.py) -> per-field three-way merge against
the last agreed values (merge.py) -> decisions (decisions.py). All column arithmetic, no loop over rows.
The rules are documented in README.md beside this file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from include.sync_logic.canonical import PREFIX, to_canonical
from include.sync_logic.decisions import DECISION_COLUMNS, decide, duplicate_rejects, empty_decisions
from include.sync_logic.mapping import MappingConfig
from include.sync_logic.merge import SNAPSHOT_COLUMNS, base_for, baseline, merge_field, one_way_held, source_of
from include.sync_logic.pairing import pair_up, prepare
from include.sync_logic.sides import Direction, Side
from include.sync_logic.tombstones import explain, fresh_changes, with_tombstones


@dataclass(frozen=True)
class Reconciliation:
    """``decisions``: one row per contact and target (``DECISION_COLUMNS``); ``baseline``: snapshot values
    to record before any write (``SNAPSHOT_COLUMNS``: agreed fields, and the base of first-seen conflicts)."""

    decisions: pd.DataFrame
    baseline: pd.DataFrame


def reconcile(
    sf: pd.DataFrame,
    hs: pd.DataFrame,
    *,
    sf_changed_ids: Iterable[str],
    hs_changed_ids: Iterable[str],
    mapping: MappingConfig,
    direction: Direction | str = Direction.BOTH,
    snapshots: pd.DataFrame | None = None,
    tombstones: pd.DataFrame | None = None,
) -> Reconciliation:
    """Decide, per contact and target CRM, what to write.

    ``sf``/``hs`` are raw staged frames (candidates plus fetched counterparts); the changed ids name the
    candidates (changed in the window, or due in the retry queue): only groups holding one get decisions.
    ``snapshots`` are the sync state's rows for these contacts (``SNAPSHOT_COLUMNS``; None: no state yet).
    ``tombstones`` (``tombstones.TOMBSTONE_FIELDS``, optional boolean ``fresh``: found by this run): contacts
    gone from one side; each stands beside its counterpart as a deleted row (see tombstones.py), so the
    counterpart is not re-created unless the mapping's ``on_counterpart_deleted`` says so (never for a privacy
    deletion). A fresh one is a change of its side, as a deletion read in the window would be.
    """
    if direction not in {item.value for item in Direction}:
        raise ValueError(f"direction must be one of {', '.join(Direction)}")
    direction = Direction(direction)
    if tombstones is not None and len(tombstones):
        sf, hs = with_tombstones(sf, hs, tombstones, mapping)
        sf_changed_ids, hs_changed_ids = fresh_changes(tombstones, sf_changed_ids, hs_changed_ids)
    s = prepare(to_canonical(sf, Side.SALESFORCE, mapping), Side.SALESFORCE, sf_changed_ids)
    h = prepare(to_canonical(hs, Side.HUBSPOT, mapping), Side.HUBSPOT, hs_changed_ids)
    pairing = pair_up(s, h)
    groups = pairing.groups
    active = (groups[PREFIX[Side.SALESFORCE] + "changed"] | groups[PREFIX[Side.HUBSPOT] + "changed"]).to_numpy()
    groups = groups[active].reset_index(drop=True)
    live = (groups["s.present"] & groups["h.present"] & ~groups["s.deleted"] & ~groups["h.deleted"]).to_numpy()
    base = base_for(groups, snapshots, mapping, every_field=True)
    outcomes = {
        item.name: merge_field(groups, item, mapping.conflict_rule(item), base, live)
        for item in mapping.fields
        if item.two_way
    }
    # One-way fields have no merge; the state records the from-side's value once nothing is to be written,
    # so a contact that did not change is recognisable before its counterpart is fetched (settled.py).
    held = [one_way_held(groups, item, base, live) for item in mapping.fields if source_of(item) is not None]
    parts = [decide(groups, target, mapping, outcomes) for target in direction.targets]
    active_s = set(groups.loc[groups["s"] >= 0, "s"])
    active_h = set(groups.loc[groups["h"] >= 0, "h"])
    if Side.HUBSPOT in direction.targets:
        parts.append(duplicate_rejects(s, Side.SALESFORCE, pairing.s_dups, active_s, mapping))
    if Side.SALESFORCE in direction.targets:
        parts.append(duplicate_rejects(h, Side.HUBSPOT, pairing.h_dups, active_h, mapping))
    parts = [part for part in parts if len(part)]
    if parts:
        decisions = pd.concat(parts, ignore_index=True)
        decisions = decisions.sort_values(["target", "source_system", "source_id"], kind="stable")
        decisions = decisions.reset_index(drop=True)[DECISION_COLUMNS]
    else:
        decisions = empty_decisions()
    if tombstones is not None and len(tombstones):
        decisions = explain(decisions, tombstones, mapping)
    agreed = baseline(groups, outcomes, base, live, held)
    return Reconciliation(decisions=decisions, baseline=agreed[SNAPSHOT_COLUMNS])
