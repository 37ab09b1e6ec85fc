"""The org's Recycle Bin and delete log: which rows were deleted when, until they are physically deleted.

Salesforce keeps deleted records in the Recycle Bin for 15 days, then deletes them for good (Apex
developer guide, "Restoring Deleted Records"); until then `queryAll` shows them with IsDeleted = true,
`undelete()` brings them back under the same Id, and the REST Get Deleted resource
(`sobjects/{type}/deleted/?start=&end=`) lists them. That resource's rules (REST API guide "sObject Get
Deleted" and SOAP `getDeleted()`): results reach back at most 15 days; the seconds of start and end are
ignored; start must precede end by more than a minute, else INVALID_REPLICATION_DATE; more than 600,000
ids is EXCEEDED_ID_LIMIT; deletedDate is the row's SystemModstamp; `latestDateCovered` is never later
than end (here: never later than the current minute either).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime, timedelta

RETENTION = timedelta(days=15)
GET_DELETED_LIMIT = 600_000


class ReplicationError(Exception):
    """A Get Deleted request Salesforce refuses: its error code and message."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def to_minute(when: datetime) -> datetime:
    return when.replace(second=0, microsecond=0)


def earliest_available(now: datetime) -> datetime:
    """The oldest deletion still on record: the Recycle Bin empties itself after 15 days."""
    return to_minute(now - RETENTION)


def replication_window(start: datetime, end: datetime, now: datetime) -> tuple[datetime, datetime]:
    """The [start, latestDateCovered) span a Get Deleted call answers, or the documented refusal."""
    start, end = to_minute(start), to_minute(end)
    if end - start <= timedelta(minutes=1):
        raise ReplicationError("INVALID_REPLICATION_DATE", "start must precede end by more than one minute")
    if start < earliest_available(now):
        raise ReplicationError(
            "INVALID_REPLICATION_DATE", "start is before the earliest date available (deleted records are kept 15 days)"
        )
    return start, min(end, to_minute(now))


@dataclass
class RecycleBin:
    """Deletions in time order: (SystemModstamp at deletion, sObject name, Id). Entries go stale when a row
    is undeleted or a delete is rolled back; the store checks each against its row before using it."""

    entries: list[tuple[datetime, str, str]] = field(default_factory=list)
    purged: set[str] = field(default_factory=set)  # physically deleted ids: undelete no longer finds them

    def add(self, deleted_at: datetime, sobject: str, record_id: str) -> None:
        bisect.insort(self.entries, (deleted_at, sobject, record_id))

    def expired(self, now: datetime) -> list[tuple[datetime, str, str]]:
        """Remove and return the entries older than the retention period."""
        cut = bisect.bisect_right(self.entries, (now - RETENTION, "\uffff", "\uffff"))
        if cut == 0:
            return []  # the usual case, checked before every API call: no copy of the list
        gone, self.entries = self.entries[:cut], self.entries[cut:]
        return gone

    def between(self, start: datetime, end: datetime, sobject: str) -> list[tuple[datetime, str]]:
        """(deletedDate, Id) of the entries of one sObject type deleted in [start, end)."""
        low = bisect.bisect_left(self.entries, (start, "", ""))
        high = bisect.bisect_left(self.entries, (end, "", ""))
        return [(stamp, record_id) for stamp, name, record_id in self.entries[low:high] if name == sobject]
