"""Merges made inside a CRM: who was merged into whom, where the pair goes, and what the loser's counterpart does.

A merge leaves one survivor (Salesforce: the master keeps its Id; HubSpot: a new record with a new id) and
merged-away losers. The survivor keeps a pair: the one it had, else a loser's, which moves to it with its agreed
snapshot (so the three-way merge keeps its base and an unsynced edit made before the merge still wins). Every
loser becomes a `merged` tombstone naming its survivor and the counterpart it leaves behind (none when that
counterpart moved to the survivor). A loser's counterpart that cannot
move to the survivor (the survivor is paired already) stays separate: it is skipped with a reason, never used to
re-create the loser. Merges are rare, so the planning walks events one by one.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from include.sync_logic.canonical import MATCHED_KEY, OWN_ID, identity_columns
from include.sync_logic.counterparts import STAGED_ID
from include.sync_logic.decisions import DECISION_COLUMNS
from include.sync_logic.mapping import MappingConfig
from include.sync_logic.sides import Action, Side

MERGED = "merged"
# HubSpot's read-only property listing the ids merged into a record, ";"-separated (chains included).
HUBSPOT_MERGED_IDS = "hs_merged_object_ids"
EVENT_COLUMNS = ["side", "loser_id", "survivor_id", "happened_at"]
TOMBSTONE_COLUMNS = ["side", "contact_id", "kind", "happened_at", "survivor_id", "counterpart_id"]
RELINK_COLUMNS = ["side", "old_id", "new_id", "counterpart_id"]
SEPARATE_COLUMNS = ["side", "contact_id", "loser_id", "survivor_id", "survivor_counterpart_id"]
_PAIR_ID = {Side.SALESFORCE: "salesforce_id", Side.HUBSPOT: "hubspot_id"}


@dataclass(frozen=True)
class MergePlan:
    """``relinks``: pairs whose id on ``side`` moves from a loser to its survivor, and their other id
    (``RELINK_COLUMNS``);
    ``tombstones``: one `merged` row per loser (``TOMBSTONE_COLUMNS``); ``separate``: counterparts of losers
    that stay apart from the survivor, on the other side (``SEPARATE_COLUMNS``)."""

    relinks: pd.DataFrame
    tombstones: pd.DataFrame
    separate: pd.DataFrame


def _lookup(keys: pd.Series, values: pd.Series) -> dict[str, str]:
    return dict(zip(keys.astype("str"), values.astype("str"), strict=True))


def _events(side: Side, losers: pd.Series, survivors: pd.Series, happened: pd.Series) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "side": str(side),
            "loser_id": losers.astype("str").to_numpy(),
            "survivor_id": survivors.astype("str").to_numpy(),
            "happened_at": pd.to_datetime(happened, utc=True).to_numpy(),
        },
        columns=EVENT_COLUMNS,
    )
    frame = frame[frame["loser_id"] != frame["survivor_id"]]
    return frame.drop_duplicates(["side", "loser_id"], ignore_index=True)


def hubspot_merge_events(staged: pd.DataFrame, known_ids: Iterable[str]) -> pd.DataFrame:
    """Merges seen in HubSpot records: each id in ``hs_merged_object_ids`` the sync state knows, merged into the
    record holding the list (the merge moved its ``lastmodifieddate``, so it is in that window's search)."""
    if HUBSPOT_MERGED_IDS not in staged.columns or staged.empty:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    listed = staged[["id", HUBSPOT_MERGED_IDS, "lastmodifieddate"]].dropna(subset=[HUBSPOT_MERGED_IDS])
    listed = listed.assign(loser=listed[HUBSPOT_MERGED_IDS].astype("str").str.split(";")).explode("loser")
    listed["loser"] = listed["loser"].str.strip()
    listed = listed[listed["loser"].isin(set(map(str, known_ids)))]
    return _events(Side.HUBSPOT, listed["loser"], listed["id"], listed["lastmodifieddate"])


def hubspot_redirect_events(fetched: pd.DataFrame, known_ids: Iterable[str]) -> pd.DataFrame:
    """Merges seen in reads by id: a known id asked for (``lookup_key``) answered by another record."""
    if "lookup_key" not in fetched.columns or fetched.empty:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    asked = fetched["lookup_key"].astype("str")
    moved = fetched[asked.isin(set(map(str, known_ids))) & (asked != fetched["id"].astype("str"))]
    return _events(Side.HUBSPOT, moved["lookup_key"], moved["id"], moved["lastmodifieddate"])


def salesforce_merge_events(merged: pd.DataFrame) -> pd.DataFrame:
    """Merges seen in Salesforce: deleted rows naming their ``MasterRecordId`` (read with queryAll)."""
    merged = merged.dropna(subset=["MasterRecordId"])
    return _events(Side.SALESFORCE, merged["Id"], merged["MasterRecordId"], merged["SystemModstamp"])


def plan_merges(
    events: pd.DataFrame, snapshots: pd.DataFrame, survivor_links: Mapping[str, str] | None = None
) -> MergePlan:
    """Where each merge leaves the pairs (see the module docstring).

    ``snapshots``: the sync state's pairs of the losers and survivors (``salesforce_id``, ``hubspot_id``).
    ``survivor_links``: a survivor's own link value where known (a merged HubSpot record keeps the primary's
    link); among several paired losers the one it names moves, else the first by id.
    """
    links = dict(survivor_links or {})
    counterpart = {side: _lookup(snapshots[_PAIR_ID[side]], snapshots[_PAIR_ID[side.other]]) for side in Side}
    relinks, tombstones, separate = [], [], []
    for (side_name, survivor_id), group in events.groupby(["side", "survivor_id"], sort=True):
        side, survivor = Side(str(side_name)), str(survivor_id)
        pairs = counterpart[side]
        named = links.get(survivor)
        group = group.assign(named=[named is not None and pairs.get(loser) == named for loser in group["loser_id"]])
        group = group.sort_values(["named", "loser_id"], ascending=[False, True])
        paired = pairs.get(survivor)
        for loser, happened in zip(group["loser_id"], group["happened_at"], strict=True):
            mate = pairs.get(loser)
            if mate is not None and paired is None:
                relinks.append((str(side), loser, survivor, mate))
                paired = pairs[survivor] = mate
            elif mate is not None and mate != paired:
                separate.append((str(side.other), mate, loser, survivor, paired))
            # A counterpart that moved to the survivor no longer stands beside the loser.
            tombstones.append((str(side), loser, MERGED, happened, survivor, None if mate == paired else mate))
    return MergePlan(
        relinks=pd.DataFrame(relinks, columns=RELINK_COLUMNS),
        tombstones=_none_for_missing(pd.DataFrame(tombstones, columns=TOMBSTONE_COLUMNS)),
        separate=pd.DataFrame(separate, columns=SEPARATE_COLUMNS),
    )


def _none_for_missing(frame: pd.DataFrame) -> pd.DataFrame:
    ids = [column for column in frame.columns if column.endswith("_id")]
    return frame.astype(dict.fromkeys(ids, object)).where(frame.notna(), None) if len(frame) else frame


def describe(row: Mapping[Hashable, Any]) -> str:
    """The report's sentence for a counterpart left separate: ``row`` holds ``SEPARATE_COLUMNS``."""
    merged_side = Side(row["side"]).other
    return (
        f"{merged_side.label} {row['loser_id']} merged into {row['survivor_id']}, paired with "
        f"{Side(row['side']).label} {row['survivor_counterpart_id']}; "
        f"{Side(row['side']).label} {row['contact_id']} still separate"
    )


@dataclass(frozen=True)
class MergedLinks:
    """Staged rows whose link names a merged-away contact: ``separate`` (``SEPARATE_COLUMNS``) stay apart and
    are left out of the sync; ``moved`` (own id -> survivor id) belong to the survivor's pair now."""

    separate: pd.DataFrame
    moved: dict[str, str]


def merged_links(
    staged: pd.DataFrame, side: Side, mapping: MappingConfig, tombstones: pd.DataFrame, snapshots: pd.DataFrame
) -> MergedLinks:
    """Rows of ``side`` linked to a contact of the other side that a merge took away.

    ``tombstones``: the other side's `merged` tombstones (``contact_id``, ``survivor_id``); ``snapshots``: the
    state's pairs of their survivors. A row the survivor's pair holds has moved with it; any other row stays
    separate when the survivor is paired elsewhere; with no pair at all, the survivor takes the row.
    """
    merged = tombstones[(tombstones["kind"] == MERGED) & (tombstones["side"] == str(side.other))]
    identity = identity_columns(staged, side, mapping)
    own, link = identity[OWN_ID[side]].astype("str"), identity[OWN_ID[side.other]]
    survivor_of = _lookup(merged["contact_id"], merged["survivor_id"])
    hit = link.notna() & link.isin(list(survivor_of))
    mates = _lookup(snapshots[_PAIR_ID[side.other]], snapshots[_PAIR_ID[side]])
    moved: dict[str, str] = {}
    separate = []
    for contact, loser in zip(own[hit], link[hit].astype("str"), strict=True):
        survivor = survivor_of[loser]
        mate = mates.get(survivor)
        if mate is None or mate == contact:
            moved[contact] = survivor
        else:
            separate.append((str(side), contact, loser, survivor, mate))
    return MergedLinks(pd.DataFrame(separate, columns=SEPARATE_COLUMNS), moved)


def follow_survivor(
    staged: pd.DataFrame, side: Side, mapping: MappingConfig, moved: Mapping[str, str], survivors: pd.DataFrame
) -> pd.DataFrame:
    """Rows whose pair moved to a survivor, made to meet it: the stale link cleared and the survivor's email as
    the key the row is matched on, so pairing joins them and both sides get their link written.

    ``survivors``: the other side's staged rows of the survivors (to read their email keys).
    """
    if not moved:
        return staged
    keys = identity_columns(survivors, side.other, mapping)
    email_of = dict(zip(keys[OWN_ID[side.other]].astype("str"), keys["email_key"], strict=True))
    own = staged[STAGED_ID[side]].astype("str")
    target = own.map(moved)
    key = target.map(email_of)
    out = staged.copy()
    if MATCHED_KEY not in out.columns:
        out[MATCHED_KEY] = pd.Series(pd.NA, index=out.index, dtype="object")
    follow = key.notna().to_numpy()
    out.loc[follow, mapping.link.on(side)] = None
    out.loc[follow, MATCHED_KEY] = key[follow]
    return out


def claim_link(
    staged: pd.DataFrame, side: Side, mapping: MappingConfig, counterparts: Mapping[str, str]
) -> pd.DataFrame:
    """Salesforce survivors whose link is blank, read as linked to the counterpart their pair moved to them.

    The merged-away loser keeps its unique link value while it sits in the Recycle Bin (a write of it answers
    DUPLICATE_VALUE naming the loser), so the survivor's own link cannot be written yet; read this way it pairs
    by link, and only the counterpart's link (the stale loser id) is rewritten. ``counterparts``: survivor id ->
    counterpart id.
    """
    if not counterparts:
        return staged
    link = mapping.link.on(side)
    own = staged[STAGED_ID[side]].astype("str")
    blank = (staged[link].isna() if link in staged.columns else pd.Series(True, index=staged.index)).to_numpy()
    claim = blank & own.isin(list(counterparts)).to_numpy()
    out = staged.copy()
    out.loc[claim, link] = own[claim].map(counterparts)
    return out


def separate_skips(separate: pd.DataFrame, targets: Iterable[Side]) -> pd.DataFrame:
    """One skip decision per separate counterpart and target written (``DECISION_COLUMNS``), the reason saying
    which merge left it apart (and an optional ``note`` column's text, e.g. that it was merged too)."""
    written = {str(target) for target in targets}
    rows = separate.loc[separate["side"].map(lambda side: str(Side(side).other) in written).astype(bool)]
    n = len(rows)
    return pd.DataFrame(
        {
            "target": [str(Side(side).other) for side in rows["side"]],
            "action": str(Action.SKIP),
            "source_system": rows["side"].astype("str").to_numpy(),
            "source_id": rows["contact_id"].astype("str").to_numpy(),
            "target_id": pd.Series([None] * n, dtype="object"),
            "payload": "{}",
            "changed_fields": "",
            "reason": [
                describe(row) + (f"; {row['note']}" if isinstance(row.get("note"), str) else "")
                for row in rows.to_dict("records")
            ],
            "conflict": np.zeros(n, dtype=bool),
            "matched_by": "merge",
            "agreed": "{}",
            "data_hash": "",
        },
        columns=DECISION_COLUMNS,
    )
