"""A high-water-mark poll of Salesforce contacts: which rows are news, and where the mark moves.

Where an org has no Change Data Capture, the event path asks Salesforce every few seconds for the contacts whose
`SystemModstamp` is at or after the mark (queryAll, so deleted and merged-away rows come too). SOQL compares whole
seconds and many rows share a second, so the query takes `>=` the mark's second and the mark remembers which
(Id, SystemModstamp) it has already passed on at that second: a row is news once, a row changed again is news
again, and nothing at the boundary is lost. No I/O here; `crm_sync.events.sf_poll` does the query and keeps the
mark in Redis.

Salesforce stamps whole seconds, so two edits of a contact within one second look the same to the poll. A row
whose second was still open when the poll asked (it may be edited again and keep its stamp) is passed on but not
remembered, under an event id of that poll's own (the queue drops a repeated id), so each later poll passes it on
again until a poll sees its second closed and remembers it. The cost: one extra event for a contact edited in the
last `1 s + clock_skew` before a poll (more only while polls come faster than that). The event DAG reads each
contact once per micro-batch, all of a CRM's in one call, and the sync state finds a repeat already equal: it
costs no write, and a call only when it is alone in its micro-batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from include.sync_logic.event_echoes import row_digest
from include.sync_logic.events import ContactEvent, EventKind
from include.sync_logic.sides import Side

POLL_FIELDS = ("Id", "SystemModstamp", "IsDeleted", "MasterRecordId")
"""What the poll reads of each changed contact to name it and say what happened; it adds the fields the event run's
echo digests cover (`row_fields`), so a live row says what it holds (a digest, see `event_echoes`)."""


def _key(contact_id: str, modstamp: pd.Timestamp) -> str:
    return f"{contact_id}@{_epoch_ms(modstamp)}"


def _epoch_ms(moment: pd.Timestamp) -> int:
    return int(moment.value // 1_000_000)


def first_open_second(polled_at: datetime, clock_skew: timedelta) -> datetime:
    """The oldest second Salesforce may still stamp a write with, as far as a poll can tell.

    `polled_at` is read before the query is sent (the query sees the org no earlier than that); `clock_skew` is
    the most this clock may run ahead of Salesforce's (and covers a save committed just after its stamp). Every
    earlier second is closed: no write can get its stamp any more.
    """
    return (polled_at - clock_skew).replace(microsecond=0)


@dataclass(frozen=True)
class PollMark:
    """The next poll reads `SystemModstamp >= second`; `seen` holds `Id@epoch-ms` of the rows at or after
    `second` already passed on whose second was over (a row of a second still open is never in it)."""

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
    """The events of one poll (oldest change first), the mark after it, and how many rows read were in a second
    still open (passed on again by the next poll)."""

    events: list[ContactEvent]
    mark: PollMark
    still_open: int


def news_since(
    rows: pd.DataFrame,
    mark: PollMark,
    *,
    polled_at: datetime,
    clock_skew: timedelta,
    row_fields: Sequence[str] = (),
) -> PollOutcome:
    """The rows of a `SystemModstamp >= mark.second` query (columns `POLL_FIELDS`) as events, and the new mark.

    A deleted row naming a `MasterRecordId` was merged away: a MERGED event on its master. Other deleted rows are
    DELETED; live rows CHANGED (an undelete is a change too: the re-read finds the contact alive and the sync
    state's tombstone handling resumes its pair). Rows in a second still open (see `first_open_second`) are
    passed on under an id of this poll and the mark stays at the first open second, remembering nothing, so the
    next poll reads them again; otherwise the mark moves to the newest second read and keeps every row of that
    second. A poll that read nothing keeps the mark. With `row_fields`, a live row's event carries the digest of
    those fields (its echo test); a deleted or merged-away row's none.
    """
    if rows.empty:
        return PollOutcome([], mark, 0)
    stamps = pd.to_datetime(rows["SystemModstamp"], utc=True)
    keys = [_key(str(cid), stamp) for cid, stamp in zip(rows["Id"], stamps, strict=True)]
    open_from = pd.Timestamp(first_open_second(polled_at, clock_skew))
    still_open = stamps >= open_from
    fresh = ~pd.Series(keys, index=rows.index).isin(mark.seen)
    order = stamps[fresh].sort_values(kind="stable").index
    poll_ms = _epoch_ms(pd.Timestamp(polled_at))
    events = [
        _event(rows.loc[index], stamps[index], poll_ms if still_open[index] else None, row_fields) for index in order
    ]
    newest = stamps.max().to_pydatetime().replace(microsecond=0)
    second = max(min(newest, open_from.to_pydatetime()), mark.second)
    closed_at_second = (stamps >= pd.Timestamp(second)) & ~still_open
    at_second = frozenset(key for key, keep in zip(keys, closed_at_second, strict=True) if keep)
    return PollOutcome(events, PollMark(second, at_second), int(still_open.sum()))


def _event(row: pd.Series, stamp: pd.Timestamp, open_in_poll_ms: int | None, row_fields: Sequence[str]) -> ContactEvent:
    """The row's event; one in a second still open is named by the poll too (`~<poll epoch-ms>`), so the queue
    takes each poll's delivery of it."""
    contact_id = str(row["Id"])
    occurred_ms = _epoch_ms(stamp)
    event_id = f"sf-poll:{_key(contact_id, stamp)}"
    if open_in_poll_ms is not None:
        event_id += f"~{open_in_poll_ms}"
    master = row.get("MasterRecordId")
    deleted = bool(row.get("IsDeleted"))
    if deleted and isinstance(master, str) and master:
        return ContactEvent(Side.SALESFORCE, master, EventKind.MERGED, occurred_ms, event_id, (contact_id,))
    if deleted:
        return ContactEvent(Side.SALESFORCE, contact_id, EventKind.DELETED, occurred_ms, event_id)
    fingerprint = row_digest({str(name): value for name, value in row.items()}, row_fields) if row_fields else ""
    return ContactEvent(Side.SALESFORCE, contact_id, EventKind.CHANGED, occurred_ms, event_id, fingerprint=fingerprint)


def polls_per_day(poll_seconds: float) -> int:
    """API calls a quiet org pays the poll a day (one query a poll; more only past a page of changes)."""
    return int(timedelta(days=1) / timedelta(seconds=poll_seconds))
