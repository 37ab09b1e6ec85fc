"""Tombstones: contacts of known pairs that are gone from one CRM, found, classified and fed to reconcile.

A CRM's change feeds do not show a contact that was deleted: Salesforce's query skips the Recycle Bin,
HubSpot's search skips archived contacts, and a privacy (GDPR) deletion or a purge leaves nothing at all.
Without a memory of it, the next edit of the counterpart looks like a new contact and re-creates it. So:

1. `missing_partners`: ids a live contact points to (its link field, or its pair in the sync state) that
   the run's frames do not hold; only those are looked up, so detection costs nothing until a counterpart
   of a gone contact changes.
2. `classify`: what the look-up answered (a live row: not gone; a deleted, archived or merged-away row;
   nothing) becomes a tombstone kind. HubSpot answering nothing for an id it once had means the record was
   removed for good, which the API cannot tell apart from a privacy deletion: it counts as one, because
   re-creating a privacy-deleted contact is a breach and leaving a purged one alone is not.
3. `tombstone_rows`: each tombstone as a deleted staged row linked to its counterpart, so pairing puts it
   beside the counterpart and the decisions see "counterpart deleted" instead of "new contact".
4. `explain`: the decisions touching a tombstone say what happened, when, and what the option did.

No Airflow, no I/O: the operators read and write the CRMs and the state.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import pandas as pd

from include.sync_logic.canonical import OWN_ID, column, identity_columns
from include.sync_logic.mapping import MappingConfig, OnCounterpartDeleted
from include.sync_logic.sides import Action, Side

TOMBSTONE_FIELDS = ["side", "contact_id", "kind", "happened_at", "survivor_id", "counterpart_id"]
PRIVACY_DELETED = "privacy_deleted"
MERGED = "merged"
NEVER_RECREATED = (PRIVACY_DELETED, MERGED)  # whatever on_counterpart_deleted says
# What a look-up that answers nothing means, per side: HubSpot keeps archived contacts readable for 90 days
# and removes privacy deletions at once; Salesforce's queryAll sees the Recycle Bin until its purge.
GONE_WITHOUT_TRACE = {Side.HUBSPOT: PRIVACY_DELETED, Side.SALESFORCE: "purged"}
_OWN = {Side.SALESFORCE: "Id", Side.HUBSPOT: "id"}
_DELETED = {Side.SALESFORCE: "IsDeleted", Side.HUBSPOT: "archived"}
_MODIFIED = {Side.SALESFORCE: "LastModifiedDate", Side.HUBSPOT: "lastmodifieddate"}
MASTER_RECORD = "MasterRecordId"  # Salesforce: the survivor of a merge, on the deleted losers
_WORDS = {
    "deleted": "deleted",
    "archived": "archived",
    PRIVACY_DELETED: "deleted for good (privacy deletion or purge: nothing of it remains)",
    "purged": "purged from the Recycle Bin",
    MERGED: "merged away",
}


def empty_tombstones() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="object") for name in TOMBSTONE_FIELDS})


def _ids(frame: pd.DataFrame, side: Side) -> pd.Series:
    return column(frame, _OWN[side]).dropna().astype(str)


def _deleted(frame: pd.DataFrame, side: Side) -> pd.Series:
    return column(frame, _DELETED[side]).fillna(False).astype(bool)


def missing_partners(
    frames: Mapping[Side, pd.DataFrame], snapshots: pd.DataFrame | None, mapping: MappingConfig
) -> dict[Side, pd.DataFrame]:
    """Per side: (contact_id, counterpart_id) of the ids live contacts of the other side are linked or paired
    to that this side's frame does not hold (any row of it, deleted ones included)."""
    out = {}
    for side in Side:
        source = frames[side.other]
        live = identity_columns(source[~_deleted(source, side.other).to_numpy()], side.other, mapping)
        own, link = live[OWN_ID[side.other]], live[OWN_ID[side]]
        wanted = [pd.DataFrame({"contact_id": link, "counterpart_id": own})]
        if snapshots is not None and len(snapshots):
            paired = snapshots[snapshots[f"{side.other}_id"].isin(own.dropna())]
            wanted.append(
                pd.DataFrame({"contact_id": paired[f"{side}_id"], "counterpart_id": paired[f"{side.other}_id"]})
            )
        asked = pd.concat(wanted, ignore_index=True).dropna().astype(str)
        asked = asked[(asked["contact_id"] != "") & ~asked["contact_id"].isin(_ids(frames[side], side))]
        out[side] = asked.drop_duplicates("contact_id").sort_values("contact_id", ignore_index=True)
    return out


def deleted_in_frames(frames: Mapping[Side, pd.DataFrame], mapping: MappingConfig) -> pd.DataFrame:
    """Tombstones of the deleted or archived rows the run read that are linked to a contact (an extract with
    deletes, or a look-up): deleted, archived, or merged (a Salesforce loser naming its master)."""
    parts = []
    for side in Side:
        frame = frames[side]
        gone = frame[_deleted(frame, side).to_numpy()]
        identity = identity_columns(gone, side, mapping)
        survivor = column(gone, MASTER_RECORD).astype(object).where(column(gone, MASTER_RECORD).notna(), None)
        plain = "deleted" if side == Side.SALESFORCE else "archived"
        parts.append(
            pd.DataFrame(
                {
                    "side": str(side),
                    "contact_id": identity[OWN_ID[side]].to_numpy(),
                    "kind": survivor.map(lambda master, plain=plain: plain if master is None else MERGED).to_numpy(),
                    "happened_at": pd.to_datetime(column(gone, _MODIFIED[side]), utc=True, errors="coerce").to_numpy(),
                    "survivor_id": survivor.to_numpy(),
                    "counterpart_id": identity[OWN_ID[side.other]].to_numpy(),
                }
            )
        )
    found = pd.concat(parts, ignore_index=True)
    return found[found["contact_id"].notna() & found["counterpart_id"].notna()].reset_index(drop=True)


def classify(side: Side, asked: pd.DataFrame, found: pd.DataFrame, mapping: MappingConfig) -> pd.DataFrame:
    """Tombstones of the `asked` ids (`missing_partners`) from what a look-up by id, deleted rows included,
    found (`found`: staged rows of `side`). A live row is not gone (it was only not read); a deleted one
    gives its kind (`deleted_in_frames`); an id the look-up did not answer is `GONE_WITHOUT_TRACE`."""
    side = Side(side)
    answered = _ids(found, side)
    rows = deleted_in_frames({side: found, side.other: pd.DataFrame()}, mapping)
    rows = rows[rows["contact_id"].isin(asked["contact_id"])].drop(columns="counterpart_id")
    rows = rows.merge(asked, on="contact_id", how="left")
    silent = asked[~asked["contact_id"].isin(answered)]
    nothing = silent.assign(
        side=str(side),
        kind=GONE_WITHOUT_TRACE[side],
        happened_at=pd.NaT,  # type: ignore[arg-type]  # pandas-stubs: assign() refuses the NaT scalar pandas takes
        survivor_id=None,
    )
    parts = [frame for frame in (rows, nothing) if len(frame)]
    if not parts:
        return empty_tombstones()
    both = pd.concat(parts, ignore_index=True).reindex(columns=TOMBSTONE_FIELDS)
    return both.assign(survivor_id=both["survivor_id"].astype(object).where(both["survivor_id"].notna(), None))


def restored(frames: Mapping[Side, pd.DataFrame], tombstones: pd.DataFrame) -> pd.DataFrame:
    """(side, contact_id) of tombstoned contacts the run read alive again (a restore, an undelete)."""
    parts = []
    for side in Side:
        frame = frames[side]
        live = _ids(frame[~_deleted(frame, side).to_numpy()], side)
        mine = tombstones[(tombstones["side"] == side) & tombstones["contact_id"].isin(live)]
        parts.append(mine[["side", "contact_id"]])
    return pd.concat(parts, ignore_index=True)


def tombstone_rows(tombstones: pd.DataFrame, side: Side, present: pd.Series, mapping: MappingConfig) -> pd.DataFrame:
    """Staged rows of `side` standing for its tombstones whose counterpart is among `present` (the other side's
    ids in the run): deleted, linked to the counterpart, modified when the deletion happened.

    With `on_counterpart_deleted: recreate` only privacy deletions and merges get a row: the others'
    counterparts are written as new contacts, as the option asks (a merged-away contact lives on in its survivor,
    so re-creating it would make a duplicate).
    """
    mine = tombstones[(tombstones["side"] == side) & tombstones["counterpart_id"].isin(present.astype(str))]
    if mapping.on_counterpart_deleted == OnCounterpartDeleted.RECREATE:
        mine = mine[mine["kind"].isin(NEVER_RECREATED)]
    link = mapping.link.on(side)
    return pd.DataFrame(
        {
            _OWN[side]: mine["contact_id"].astype(str).to_numpy(),
            link: mine["counterpart_id"].astype(str).to_numpy(),
            _DELETED[side]: True,
            _MODIFIED[side]: pd.to_datetime(mine["happened_at"], utc=True).to_numpy(),
        }
    )


def with_tombstones(
    sf: pd.DataFrame, hs: pd.DataFrame, tombstones: pd.DataFrame, mapping: MappingConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both staged frames with the rows of the tombstones whose counterpart they hold (`tombstone_rows`); a
    tombstoned id the frame holds itself (read alive, or deleted by the extract) keeps its own row."""
    frames = {Side.SALESFORCE: sf, Side.HUBSPOT: hs}
    out = {}
    for side in Side:
        held = _ids(frames[side], side)
        rows = tombstone_rows(
            tombstones[~tombstones["contact_id"].isin(held) | (tombstones["side"] != side)],
            side,
            _ids(frames[side.other], side.other),
            mapping,
        )
        out[side] = pd.concat([frames[side], rows], ignore_index=True) if len(rows) else frames[side]
    return out[Side.SALESFORCE], out[Side.HUBSPOT]


def fresh_changes(
    tombstones: pd.DataFrame, sf_changed_ids: Iterable[str], hs_changed_ids: Iterable[str]
) -> tuple[list[str], list[str]]:
    """The candidates' ids with the tombstones found by this run (``fresh``) added on their side; a merge is not a
    deletion to propagate (merges.py decides about the loser's counterpart), so it is never a change."""
    fresh = (
        tombstones[tombstones["fresh"].fillna(False).astype(bool)] if "fresh" in tombstones else tombstones.iloc[0:0]
    )
    fresh = fresh[fresh["kind"] != MERGED]
    ids = {side: fresh.loc[fresh["side"] == side, "contact_id"].astype(str).tolist() for side in Side}
    return [*map(str, sf_changed_ids), *ids[Side.SALESFORCE]], [*map(str, hs_changed_ids), *ids[Side.HUBSPOT]]


def describe(tombstone: Mapping[Hashable, Any]) -> str:
    """`hubspot contact 101 deleted for good (...) at 2026-03-02 09:30 UTC`: one tombstone in words."""
    what = _WORDS[str(tombstone["kind"])]
    if tombstone["kind"] == MERGED and tombstone.get("survivor_id"):
        what = f"merged into {tombstone['survivor_id']}"
    at = pd.Timestamp(tombstone["happened_at"]) if pd.notna(tombstone.get("happened_at")) else None
    when = f" at {at.tz_convert('UTC'):%Y-%m-%d %H:%M} UTC" if at is not None else ""
    return f"{tombstone['side']} contact {tombstone['contact_id']} {what}{when}"


def explain(decisions: pd.DataFrame, tombstones: pd.DataFrame, mapping: MappingConfig) -> pd.DataFrame:
    """The decisions that touch a tombstone, their reason replaced by what happened and what the option did."""
    if decisions.empty or tombstones.empty:
        return decisions
    words = pd.Series(
        [describe(row) for row in tombstones.to_dict("records")],  # one per tombstone: few
        index=tombstones["side"].astype(str) + "/" + tombstones["contact_id"].astype(str),
    )
    on_target = (decisions["target"].astype(str) + "/" + decisions["target_id"].astype(str)).map(words)
    on_source = (decisions["source_system"].astype(str) + "/" + decisions["source_id"].astype(str)).map(words)
    skip, delete = decisions["action"] == Action.SKIP, decisions["action"] == Action.DELETE
    option = f"(on_counterpart_deleted: {mapping.on_counterpart_deleted})"
    reason = decisions["reason"]
    reason = reason.mask(skip & on_source.notna(), on_source + f"; counterpart kept {option}")
    reason = reason.mask(delete & on_source.notna(), on_source + f"; deleted here too {option}")
    reason = reason.mask(skip & on_target.notna(), on_target + f"; not re-created {option}")
    return decisions.assign(reason=reason)
