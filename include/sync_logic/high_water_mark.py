"""A high-water-mark poll of Salesforce contacts: which rows are news, and where the mark moves.

Where an org has no Change Data Capture, the event path asks Salesforce every few seconds for the contacts whose
`SystemModstamp` is at or after the mark (queryAll, so deleted and merged-away rows come too). SOQL compares whole
seconds and many rows share a second, so the query takes `>=` the mark's second and the mark remembers which
(Id, SystemModstamp) it has already passed on at that second: a row is news once, a row changed again is news
again, and nothing at the boundary is lost. No I/O here; `crm_sync.events.sf_poll` does the query and keeps the
mark in Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from include.sync_logic.events import ContactEvent, EventKind
from include.sync_logic.sides import Side

POLL_FIELDS = ("Id", "SystemModstamp", "IsDeleted", "MasterRecordId")
"""What the poll reads of each changed contact: enough to name it and say what happened, no field values."""


def _key(contact_id: str, modstamp: pd.Timestamp) -> str:
    return f"{contact_id}@{int(modstamp.value // 1_000_000)}"


@dataclass(frozen=True)
class PollMark:
    """The next poll reads `SystemModstamp >= second`; `seen` holds `Id@epoch-ms` of the rows at or after
    `second` already passed on."""

    second: datetime
    seen: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.second.tzinfo is None:
            raise ValueError("the mark must be timezone-aware")
        if self.second.microsecond:
            raise ValueError("the mark is a whole second (SOQL datetime literals have no fraction)")

    @classmethod
    def starting_at(cls, moment: datetime) -> PollMark:
        """A first mark at `moment`, floored to its second."""
        return cls(moment.replace(microsecond=0))

    def to_json(self) -> dict[str, object]:
        return {"second": self.second.isoformat(), "seen": sorted(self.seen)}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> PollMark:
        seen = data.get("seen") or []
        if not isinstance(seen, list):
            raise ValueError("a poll mark's seen must be a list")
        return cls(datetime.fromisoformat(str(data["second"])), frozenset(str(item) for item in seen))


@dataclass(frozen=True)
class PollOutcome:
    """The events of one poll (oldest change first) and the mark after it."""

    events: list[ContactEvent]
    mark: PollMark


def news_since(rows: pd.DataFrame, mark: PollMark) -> PollOutcome:
    """The rows of a `SystemModstamp >= mark.second` query (columns `POLL_FIELDS`) as events, and the new mark.

    A deleted row naming a `MasterRecordId` was merged away: a MERGED event on its master. Other deleted rows are
    DELETED; live rows CHANGED (an undelete is a change too: the re-read finds the contact alive and the sync
    state's tombstone handling resumes its pair). The mark moves to the newest second read and keeps every row
    of that second; a poll that read nothing keeps the mark.
    """
    if rows.empty:
        return PollOutcome([], mark)
    stamps = pd.to_datetime(rows["SystemModstamp"], utc=True)
    keys = [_key(str(cid), stamp) for cid, stamp in zip(rows["Id"], stamps, strict=True)]
    fresh = ~pd.Series(keys, index=rows.index).isin(mark.seen)
    order = stamps[fresh].sort_values(kind="stable").index
    events = [_event(rows.loc[index], stamps[index]) for index in order]
    newest = stamps.max().to_pydatetime().replace(microsecond=0)
    second = max(newest, mark.second)
    at_second = frozenset(key for key, stamp in zip(keys, stamps, strict=True) if stamp >= pd.Timestamp(second))
    return PollOutcome(events, PollMark(second, at_second))


def _event(row: pd.Series, stamp: pd.Timestamp) -> ContactEvent:
    contact_id = str(row["Id"])
    occurred_ms = int(stamp.value // 1_000_000)
    event_id = f"sf-poll:{_key(contact_id, stamp)}"
    master = row.get("MasterRecordId")
    deleted = bool(row.get("IsDeleted"))
    if deleted and isinstance(master, str) and master:
        return ContactEvent(Side.SALESFORCE, master, EventKind.MERGED, occurred_ms, event_id, (contact_id,))
    kind = EventKind.DELETED if deleted else EventKind.CHANGED
    return ContactEvent(Side.SALESFORCE, contact_id, kind, occurred_ms, event_id)


def polls_per_day(poll_seconds: float) -> int:
    """API calls a quiet org pays the poll a day (one query a poll; more only past a page of changes)."""
    return int(timedelta(days=1) / timedelta(seconds=poll_seconds))
