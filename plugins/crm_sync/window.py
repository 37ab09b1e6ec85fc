"""The sync window of one run: its data interval widened backwards by the lookback (no Airflow imports)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class SyncWindow:
    """[start, end) in UTC; `full_resync` means the window is ignored and every contact is read."""

    start: datetime
    end: datetime
    full_resync: bool = False

    @classmethod
    def from_interval(
        cls, interval_start: datetime, interval_end: datetime, *, lookback_minutes: int, full_resync: bool
    ) -> SyncWindow:
        if interval_start.tzinfo is None or interval_end.tzinfo is None:
            raise ValueError("the data interval must be timezone-aware")
        if interval_end < interval_start:
            raise ValueError(f"data interval ends before it starts: {interval_start} > {interval_end}")
        if interval_end == interval_start and not full_resync:
            raise ValueError(
                "empty data interval: the DAG needs a data-interval timetable (CronDataIntervalTimetable), "
                "not a cron trigger timetable"
            )
        return cls(interval_start - timedelta(minutes=lookback_minutes), interval_end, full_resync)

    def describe(self) -> str:
        if self.full_resync:
            return "full resync (window ignored)"
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"
