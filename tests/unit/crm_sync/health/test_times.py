"""Times in the view: UTC to the second, no microseconds; anything that is not a time passes unchanged."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from crm_sync.health.times import readable_duration, readable_run_id, readable_time, readable_window


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-30 02:23:22.826790+00:00", "2026-11-30 02:23:22"),
        ("2026-11-30T02:23:00+00:00", "2026-11-30 02:23"),
        ("2026-11-30T03:23:22.5+01:00", "2026-11-30 02:23:22"),  # shown in UTC
        ("2026-11-30T02:23:22", "2026-11-30 02:23:22"),  # naive means UTC
        (datetime(2026, 11, 30, 2, 23, 22, 999_999, tzinfo=timezone(timedelta(hours=-5))), "2026-11-30 07:23:22"),
        (None, ""),
        ("never", "never"),
    ],
)
def test_readable_time(value: object, expected: str) -> None:
    assert readable_time(value) == expected


def test_a_window_shows_the_end_date_only_when_it_crosses_midnight() -> None:
    same_day = "[2026-11-28T09:43:00+00:00, 2026-11-28T10:00:00+00:00)"
    assert readable_window(same_day) == "2026-11-28 09:43 – 10:00"
    over_midnight = "[2026-11-28T23:43:00.250000+00:00, 2026-11-29T00:00:00+00:00)"
    assert readable_window(over_midnight) == "2026-11-28 23:43 – 2026-11-29 00:00"
    assert readable_window("full resync (window ignored)") == "full resync (window ignored)"


@pytest.mark.parametrize(
    ("run_id", "expected"),
    [
        ("manual__2026-11-30T02:22:52.427930+00:00", "manual 2026-11-30 02:22:52"),
        ("backfill__2026-11-28T10:00:00+00:00", "backfill 2026-11-28 10:00"),
        ("scheduled__2026-11-28T10:15:00+00:00", "scheduled 2026-11-28 10:15"),
        ("asset_triggered__2026-11-28T10:15:01.5+00:00", "asset_triggered 2026-11-28 10:15:01"),
        ("my-rerun-of-friday", "my-rerun-of-friday"),
        ("manual__not-a-date", "manual__not-a-date"),
    ],
)
def test_readable_run_id(run_id: str, expected: str) -> None:
    assert readable_run_id(run_id) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (None, ""),
        (0, "0 s"),
        (3.25, "3.2 s"),
        (10.0, "10 s"),
        (60, "1 min"),
        (754.2, "12 min 34 s"),
        (3_600, "1 h"),
        (3_660, "1 h 1 min"),
        (86_400.0, "1 d"),
        (145_395.2, "1 d 16 h"),
    ],
)
def test_readable_duration(seconds: float | None, expected: str) -> None:
    assert readable_duration(seconds) == expected
