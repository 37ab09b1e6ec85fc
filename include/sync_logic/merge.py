"""The three-way merge per field: the sync state's last agreed value is the base, the two CRMs the branches.

A side changed a field when its value differs from the base. One side changed: its value wins. Both
changed apart (or there is no base yet: a first sync, a link made elsewhere): the field's conflict rule
settles it; ``latest`` compares the two records' own modification times, whatever window they fall in.
Neither: nothing to do. Owner rules (``salesforce``, ``prefer_hubspot_unless_blank``...) make the
owner's value win whenever the two differ, as HubSpot's own connector does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from include.sync_logic.canonical import PREFIX, equal
from include.sync_logic.mapping import ConflictRule, FieldMapping, MappingConfig
from include.sync_logic.sides import Side
from include.sync_logic.vector_text import json_objects

NO_WINNER, SALESFORCE_WINS, HUBSPOT_WINS = 0, 1, 2
WINS = {Side.SALESFORCE: SALESFORCE_WINS, Side.HUBSPOT: HUBSPOT_WINS}
SNAPSHOT_COLUMNS = ["salesforce_id", "hubspot_id", "field_values"]
_MISSING_KEY = "\x00"
# (canonical field name, rows to record, value per row): one field's part of the baseline.
BaselineEntry = tuple[str, np.ndarray, pd.Series]


@dataclass(frozen=True)
class Base:
    """The last agreed values of each group's pair (aligned with the groups): ``known`` says a field has one."""

    values: pd.DataFrame
    known: pd.DataFrame


@dataclass(frozen=True)
class FieldOutcome:
    """Per group: which side's value of one two-way field wins, whether both moved apart, whether equal."""

    winner: np.ndarray
    conflict: np.ndarray
    equal: np.ndarray


def base_for(
    groups: pd.DataFrame, snapshots: pd.DataFrame | None, mapping: MappingConfig, *, every_field: bool = False
) -> Base:
    """The snapshot of each group's exact pair (same Salesforce and HubSpot id), decoded into columns.

    The two-way fields by default (the merge's base); ``every_field`` adds the one-way ones, which the
    state records once both CRMs hold them equal.
    """
    names = [item.name for item in mapping.fields if every_field or item.two_way]
    n = len(groups)
    values = pd.DataFrame({name: pd.Series(pd.NA, index=range(n), dtype="str") for name in names})
    known = pd.DataFrame({name: np.zeros(n, dtype=bool) for name in names})
    if snapshots is None or snapshots.empty or not n:
        return Base(values, known)
    records = [json.loads(text) if isinstance(text, str) else {} for text in snapshots["field_values"]]
    snap = pd.DataFrame(
        {
            "sf_id": snapshots["salesforce_id"].astype("str").to_numpy(),
            "hs_id": snapshots["hubspot_id"].astype("str").to_numpy(),
            "row": np.arange(len(snapshots)),
        }
    )
    keys = pd.DataFrame(
        {
            "sf_id": groups[PREFIX[Side.SALESFORCE] + "sf_id"].fillna(_MISSING_KEY).astype("str").to_numpy(),
            "hs_id": groups[PREFIX[Side.HUBSPOT] + "hs_id"].fillna(_MISSING_KEY).astype("str").to_numpy(),
        }
    )
    row = keys.merge(snap.drop_duplicates(["sf_id", "hs_id"]), on=["sf_id", "hs_id"], how="left")["row"]
    found = row.notna().to_numpy()
    positions = row.fillna(-1).astype("int64").to_numpy()
    for name in names:
        column = pd.Series([record.get(name) for record in records], dtype="str")
        has = np.fromiter((name in record for record in records), dtype=bool, count=len(records))
        values[name] = column.iloc[np.where(found, positions, 0)].reset_index(drop=True).where(found)
        known[name] = np.where(found, has[positions], False)
    return Base(values, known)


def merge_field(
    groups: pd.DataFrame, item: FieldMapping, rule: ConflictRule, base: Base, live: np.ndarray
) -> FieldOutcome:
    """The winner of one two-way field per group (``live``: both contacts present and not deleted)."""
    s_value = groups[PREFIX[Side.SALESFORCE] + item.name].reset_index(drop=True)
    h_value = groups[PREFIX[Side.HUBSPOT] + item.name].reset_index(drop=True)
    same = equal(s_value, h_value).to_numpy()
    known = base.known[item.name].to_numpy()
    s_moved = ~known | ~equal(s_value, base.values[item.name]).to_numpy()
    h_moved = ~known | ~equal(h_value, base.values[item.name]).to_numpy()
    differ = live & ~same
    conflict = differ & s_moved & h_moved
    if rule == ConflictRule.LATEST:
        s_at = groups[PREFIX[Side.SALESFORCE] + "modified_at"].reset_index(drop=True)
        h_at = groups[PREFIX[Side.HUBSPOT] + "modified_at"].reset_index(drop=True)
        hubspot_later = (h_at > s_at).fillna(False).astype(bool).to_numpy()  # ties go to Salesforce
        s_wins = differ & ((s_moved & ~h_moved) | (conflict & ~hubspot_later))
    elif rule in (ConflictRule.SALESFORCE, ConflictRule.HUBSPOT):
        s_wins = differ & (rule == ConflictRule.SALESFORCE)
    else:
        owner_blank = (s_value if rule == ConflictRule.PREFER_SALESFORCE_UNLESS_BLANK else h_value).isna().to_numpy()
        owner_is_sf = rule == ConflictRule.PREFER_SALESFORCE_UNLESS_BLANK
        s_wins = differ & (~owner_blank if owner_is_sf else owner_blank)
    winner = np.where(s_wins, SALESFORCE_WINS, np.where(differ, HUBSPOT_WINS, NO_WINNER)).astype(np.int8)
    return FieldOutcome(winner=winner, conflict=conflict, equal=same)


def source_of(item: FieldMapping) -> Side | None:
    """The side a one-way field flows from (None for a two-way field, or one written to neither side)."""
    sources = [side for side in Side if item.writes_to(side.other)]
    return sources[0] if len(sources) == 1 else None


def keeps_blank(item: FieldMapping, source: Side) -> bool:
    """Whether a blank on the from-side leaves the other side's value alone (unless the field's rule is that side)."""
    return item.conflict != ConflictRule(source)


def one_way_held(groups: pd.DataFrame, item: FieldMapping, base: Base, live: np.ndarray) -> BaselineEntry:
    """A one-way field's baseline entry: the from-side's value, where nothing is to be written (both hold it,
    or the from-side is blank and a blank does not clear) and the state does not hold it yet."""
    source = source_of(item)
    if source is None:
        raise ValueError(f"field {item.name} does not flow one way")
    src = groups[PREFIX[source] + item.name].reset_index(drop=True)
    dst = groups[PREFIX[source.other] + item.name].reset_index(drop=True)
    idle = equal(src, dst).to_numpy() | (src.isna().to_numpy() & keeps_blank(item, source))
    stale = ~base.known[item.name].to_numpy() | ~equal(src, base.values[item.name]).to_numpy()
    return item.name, live & idle & stale, src


def baseline(
    groups: pd.DataFrame,
    outcomes: dict[str, FieldOutcome],
    base: Base,
    live: np.ndarray,
    held: Sequence[BaselineEntry] = (),
) -> pd.DataFrame:
    """Snapshot values to record now, before any write (columns ``SNAPSHOT_COLUMNS``).

    Fields both CRMs already hold equal are agreed. A differing field with no base yet gets the losing
    side's value (which it still holds) as its base, so the winner stays "the side that changed" until its
    write lands: a write that fails or is refused is retried, never overturned by the loser's newer
    modstamp (our own link write bumps it). ``held``: one-way fields' entries (``one_way_held``).
    """
    entries: list[BaselineEntry] = list(held)
    for name, outcome in outcomes.items():
        s_value = groups[PREFIX[Side.SALESFORCE] + name].reset_index(drop=True)
        h_value = groups[PREFIX[Side.HUBSPOT] + name].reset_index(drop=True)
        known = base.known[name].to_numpy()
        stale = ~known | ~equal(s_value, base.values[name]).to_numpy()
        agreed = live & outcome.equal & stale
        provisional = live & ~outcome.equal & ~known & (outcome.winner != NO_WINNER)
        value = h_value.where(outcome.winner == SALESFORCE_WINS, s_value)
        entries.append((name, agreed | provisional, value))
    include = np.zeros(len(groups), dtype=bool)
    for _, mask, _ in entries:
        include |= mask
    objects = json_objects(entries, len(groups))
    return pd.DataFrame(
        {
            "salesforce_id": groups[PREFIX[Side.SALESFORCE] + "sf_id"].to_numpy()[include],
            "hubspot_id": groups[PREFIX[Side.HUBSPOT] + "hs_id"].to_numpy()[include],
            "field_values": objects.to_numpy()[include],
        }
    ).astype("str")
