"""Find the contacts of a run's pairs that are gone from one CRM, record them as tombstones, clear restored ones.

Cost, for contacts of known pairs only: nothing while no counterpart of a gone contact changes; then, once per
gone contact (a recorded tombstone answers every later run from the sync state):
- Salesforce: one composite call per 5 IN queries of ids, queryAll (the Recycle Bin's deleted and merged-away
  rows); an id it does not answer was purged.
- HubSpot: a batch read of the ids live, and one archived (`archived=true`), each per 100 ids; an id neither
  answers was removed for good (a privacy deletion, or an archive past its 90 days).
The live read keeps a contact that exists but was only not read from being taken for a deleted one.
The classification is pure (`include.sync_logic.tombstones`); this module does the reads and the state's writes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from crm_sync.hooks.contacts import LookupKey
from include.sync_logic.sides import Side
from include.sync_logic.tombstones import (
    MASTER_RECORD,
    classify,
    deleted_in_frames,
    describe,
    empty_tombstones,
    missing_partners,
    restored,
)

if TYPE_CHECKING:
    import pandas as pd
    from airflow.sdk import ObjectStoragePath

    from crm_sync.hooks.contacts import ContactsHook
    from crm_sync.state.store import SyncStateStore
    from crm_sync.task_results import Tombstones
    from include.sync_logic.mapping import MappingConfig

EVENT_COLUMNS = ["side", "contact_id", "counterpart_id", "event", "reason"]
# The staged columns tombstone detection reads from a full resync's parts (ids, link, deleted flag, time).
IDENTITY_COLUMNS = {
    Side.SALESFORCE: ["Id", "IsDeleted", "LastModifiedDate"],
    Side.HUBSPOT: ["id", "archived", "lastmodifieddate"],
}


@dataclass
class GoneContacts:
    """What a run knows about gone contacts: every tombstone that concerns it (``tombstones``, with ``fresh``
    True for those found by this run), the ones restored, and the API calls the look-ups spent per side.
    ``events``: one row per contact found gone or back (side, contact_id, counterpart_id, event, reason), staged
    by reconcile for the sync-health view's contact history."""

    tombstones: pd.DataFrame
    events: pd.DataFrame
    found: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    api_calls: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> Tombstones:
        return {"found": self.found, "restored": self.restored, "api_calls": self.api_calls}

    def stage_events(self, folder: ObjectStoragePath) -> None:
        """Stage `events` as `tombstones/part-00000.parquet` of the run's try folder (nothing when none)."""
        from crm_sync.staging import write_frame

        if len(self.events):
            write_frame(folder / "tombstones" / "part-00000.parquet", self.events)


def read_alive_again(frames: dict[Side, pd.DataFrame], store: SyncStateStore) -> pd.DataFrame:
    """(side, contact_id) of tombstoned contacts among `frames` read alive: restored or undeleted since.

    Read before settled contacts are dropped: a restore changes no mapped value, so the restored contact would
    look settled, and it must stay a candidate for its pair to resume (its counterpart's edits made meanwhile).
    """
    ids = {side: frames[side][_own(side)].dropna().astype(str) for side in Side}
    return restored(frames, store.read_tombstones(ids[Side.SALESFORCE], ids[Side.HUBSPOT]))


def find_gone_contacts(
    frames: dict[Side, pd.DataFrame],
    snapshots: pd.DataFrame,
    *,
    store: SyncStateStore,
    hooks: Mapping[Side, ContactsHook],
    mapping: MappingConfig,
    run_id: str,
    dry_run: bool,
    log: Callable[[str], None],
) -> GoneContacts:
    """Tombstones for `frames` (the contacts the run read, counterparts included) and their state pairs.

    Known tombstones come from the state; partners that are neither read nor known are looked up by id; deleted
    rows the run read are recorded; tombstoned contacts read alive again are cleared (a restore, an undelete).
    A dry run records and clears nothing.
    """
    import pandas as pd

    asked = missing_partners(frames, snapshots, mapping)
    ids = {
        side: pd.concat([frames[side].get(_own(side), pd.Series(dtype=str)), asked[side]["contact_id"]])
        for side in Side
    }
    known = store.read_tombstones(ids[Side.SALESFORCE].dropna().astype(str), ids[Side.HUBSPOT].dropna().astype(str))
    back = restored(frames, known)
    found = [deleted_in_frames(frames, mapping)]
    calls: dict[str, int] = {}
    for side, hook in hooks.items():
        unknown = asked[side][~asked[side]["contact_id"].isin(known.loc[known["side"] == side, "contact_id"])]
        before = hook.api_calls
        if len(unknown):
            found.append(classify(side, unknown, _look_up(hook, list(unknown["contact_id"]), mapping), mapping))
        calls[str(side)] = hook.api_calls - before
    fresh = pd.concat([frame for frame in found if len(frame)] or [empty_tombstones()], ignore_index=True)
    fresh = fresh[~_keys(fresh).isin(_keys(known))]
    fresh = fresh.drop_duplicates(["side", "contact_id"]).reset_index(drop=True)
    if not dry_run:
        if len(fresh):
            store.record_tombstones(fresh, run_id=run_id)
        if len(back):
            store.clear_tombstones(back)
    gone = known[~_keys(known).isin(_keys(back))]
    everything = pd.concat([gone.assign(fresh=False), fresh.assign(fresh=True)], ignore_index=True).reindex(
        columns=[*empty_tombstones().columns, "fresh"]
    )
    words = [describe(row) for row in fresh.to_dict("records")]
    for line in words:
        log(f"Gone: {line}")
    returned = [f"{side} contact {cid} is back (restored or undeleted)" for side, cid in back.itertuples(index=False)]
    for line in returned:
        log(line)
    log(
        f"Tombstones: {len(gone)} known, {len(fresh)} found, {len(back)} cleared; look-ups spent "
        + ", ".join(f"{side} {n} calls" for side, n in calls.items())
    )
    events = pd.concat(
        [
            fresh.assign(event="gone", reason=words)[EVENT_COLUMNS],
            back.assign(counterpart_id=None, event="back", reason=returned)[EVENT_COLUMNS],
        ],
        ignore_index=True,
    )
    return GoneContacts(everything, events, found=words, restored=returned, api_calls=calls)


def _keys(frame: pd.DataFrame) -> pd.Series:
    """`side/contact_id` per row: one comparable key for a tombstone."""
    return frame["side"].astype(str) + "/" + frame["contact_id"].astype(str)


def _own(side: Side) -> str:
    return IDENTITY_COLUMNS[side][0]


def _look_up(hook: ContactsHook, ids: list[str], mapping: MappingConfig) -> pd.DataFrame:
    """The rows a look-up by id answers, deleted ones included (see the module docstring for the cost); Salesforce's
    name the master a merged-away contact went to."""
    fields = [*mapping.fields_on(hook.side), *([MASTER_RECORD] if hook.side is Side.SALESFORCE else [])]
    return hook.fetch_contacts(LookupKey.OWN_ID, ids, fields, include_deleted=True)


def staged_identity(parts: dict[Side, list[str]], mapping: MappingConfig) -> dict[Side, pd.DataFrame]:
    """What tombstone detection needs of a full resync's staged parts: ids, links, deleted flags and times."""
    import pandas as pd

    from crm_sync.staging import iter_frames

    frames = {}
    for side in Side:
        columns = [*IDENTITY_COLUMNS[side], mapping.link.on(side)]
        read = list(iter_frames(parts[side], columns))
        frames[side] = pd.concat(read, ignore_index=True) if read else pd.DataFrame(columns=columns)
    return frames
