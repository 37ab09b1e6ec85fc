"""The Recycle Bin's clock rules: Get Deleted's window (whole minutes, more than a minute wide, at most 15
days back) and the entries that expire after the 15-day retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sandbox.salesforce.recycle import RETENTION, RecycleBin, ReplicationError, earliest_available, replication_window

NOW = datetime(2026, 11, 28, 14, 30, 45, 500_000, tzinfo=UTC)


def test_window_drops_seconds_and_ends_at_the_current_minute():
    start, latest = replication_window(NOW - timedelta(hours=1, seconds=15), NOW + timedelta(days=1), NOW)
    assert start == datetime(2026, 11, 28, 13, 30, tzinfo=UTC)
    assert latest == datetime(2026, 11, 28, 14, 30, tzinfo=UTC)
    assert earliest_available(NOW) == datetime(2026, 11, 13, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (NOW - timedelta(minutes=1), NOW),  # 14:29 to 14:30: not more than a minute apart
        (NOW, NOW - timedelta(minutes=5)),  # end before start
        (NOW - RETENTION - timedelta(minutes=1), NOW),  # before the earliest date available
    ],
)
def test_window_refusals(start, end):
    with pytest.raises(ReplicationError) as refused:
        replication_window(start, end, NOW)
    assert refused.value.error_code == "INVALID_REPLICATION_DATE"


def test_entries_expire_after_the_retention_and_filter_by_type():
    bin_ = RecycleBin()
    for minutes, name, record_id in [(3, "Contact", "003c"), (1, "Contact", "003a"), (2, "Account", "001b")]:
        bin_.add(NOW + timedelta(minutes=minutes), name, record_id)
    assert bin_.between(NOW, NOW + timedelta(minutes=3), "Contact") == [(NOW + timedelta(minutes=1), "003a")]
    assert bin_.expired(NOW + RETENTION + timedelta(minutes=1, seconds=30)) == [
        (NOW + timedelta(minutes=1), "Contact", "003a")
    ]
    assert [record_id for _, _, record_id in bin_.entries] == ["001b", "003c"]
