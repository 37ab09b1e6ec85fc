"""HubSpot private-app rate limits: a rolling 10-second window, a per-second search limit, a daily cap.

Rolling windows are sliding logs of admitted requests (a fixed counter would let twice the limit through
at window edges, which HubSpot does not). They run on real monotonic time, not the sandbox clock: the
limits are about request pace, while the sandbox clock only stamps records. The daily cap resets when the
sandbox clock's UTC date changes.

Each rolling window also remembers its busiest interval since the last clear (`peaks()`, in the admin
`GET stats` under `total.rate_limits`): the most requests it admitted in any interval of its length, and the
most that asked (admitted or answered 429). The second is the one a client's own pacing is judged by: the
first can never pass the limit, since the window refuses what would.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import date


class RollingWindow:
    """Admit at most `limit` requests in any `seconds`-long interval; remember the busiest such interval.

    An interval is open at its start, as the log is pruned: (t - seconds, t]. A rolling count is highest on
    an interval that ends on a request, so the log's length right after each request is every candidate,
    and `peak_admitted` / `peak_offered` are exact maxima, not samples.
    """

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._hits: deque[float] = deque()
        self._asked: deque[float] = deque()  # every request checked here, admitted or refused
        self.peak_admitted = 0
        self.peak_offered = 0

    def _prune(self, now: float) -> None:
        while self._hits and self._hits[0] <= now - self.seconds:
            self._hits.popleft()

    def try_acquire(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self._prune(now)
        self._asked.append(now)
        while self._asked[0] <= now - self.seconds:
            self._asked.popleft()
        self.peak_offered = max(self.peak_offered, len(self._asked))
        if len(self._hits) >= self.limit:
            return False
        self._hits.append(now)
        self.peak_admitted = max(self.peak_admitted, len(self._hits))
        return True

    def remaining(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        self._prune(now)
        return max(0, self.limit - len(self._hits))

    def retry_after(self, now: float | None = None) -> int:
        """Whole seconds until a slot frees up (HubSpot's Retry-After is in seconds)."""
        now = time.monotonic() if now is None else now
        self._prune(now)
        if len(self._hits) < self.limit:
            return 0
        return max(1, math.ceil(self._hits[0] + self.seconds - now))

    def peaks(self) -> dict[str, float | int]:
        """The limit beside the most requests admitted, and asked, in any rolling interval since the last reset."""
        return {
            "limit": self.limit,
            "window_seconds": self.seconds,
            "peak_admitted": self.peak_admitted,
            "peak_offered": self.peak_offered,
        }

    def reset_peaks(self) -> None:
        """Start the peaks over; the log stays (the limit still counts earlier requests, and so do the peaks)."""
        self.peak_admitted = self.peak_offered = 0

    def clear(self) -> None:
        self._hits.clear()
        self._asked.clear()
        self.reset_peaks()


@dataclass
class DailyCounter:
    limit: int
    used: int = 0
    day: date | None = None

    def try_acquire(self, today: date) -> bool:
        if today != self.day:
            self.day, self.used = today, 0
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass
class HubSpotLimits:
    """The limits one private app token gets; all settable from the CLI and `POST /__admin/limits`."""

    requests_per_10s: int = 100
    search_requests_per_s: int = 5
    daily: int = 500_000
    ten_secondly: RollingWindow = field(init=False)
    search: RollingWindow = field(init=False)
    day: DailyCounter = field(init=False)

    def __post_init__(self) -> None:
        self.ten_secondly = RollingWindow(self.requests_per_10s, 10.0)
        self.search = RollingWindow(self.search_requests_per_s, 1.0)
        self.day = DailyCounter(self.daily)

    def configure(self, **values: int) -> None:
        unknown = set(values) - {"requests_per_10s", "search_requests_per_s", "daily"}
        if unknown:
            raise ValueError(f"unknown limit settings: {sorted(unknown)}")
        for name, value in values.items():
            setattr(self, name, int(value))
        self.ten_secondly.limit = self.requests_per_10s
        self.search.limit = self.search_requests_per_s
        self.day.limit = self.daily

    def settings(self) -> dict[str, int]:
        return {
            "requests_per_10s": self.requests_per_10s,
            "search_requests_per_s": self.search_requests_per_s,
            "daily": self.daily,
        }

    def peaks(self) -> dict[str, dict[str, float | int]]:
        """Each rolling window's busiest interval (the daily cap is a plain count: `remaining()` has it)."""
        return {"requests_per_10s": self.ten_secondly.peaks(), "search_requests_per_s": self.search.peaks()}

    def reset_peaks(self) -> None:
        self.ten_secondly.reset_peaks()
        self.search.reset_peaks()

    def clear(self) -> None:
        self.ten_secondly.clear()
        self.search.clear()
        self.day.used = 0
