"""HubSpot private-app rate limits: a rolling 10-second window, a per-second search limit, a daily cap.

Rolling windows are sliding logs of admitted requests (a fixed counter would let twice the limit through
at window edges, which HubSpot does not). They run on real monotonic time, not the sandbox clock: the
limits are about request pace, while the sandbox clock only stamps records. The daily cap resets when the
sandbox clock's UTC date changes.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import date


class RollingWindow:
    """Admit at most `limit` requests in any `seconds`-long interval."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._hits: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._hits and self._hits[0] <= now - self.seconds:
            self._hits.popleft()

    def try_acquire(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self._prune(now)
        if len(self._hits) >= self.limit:
            return False
        self._hits.append(now)
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

    def clear(self) -> None:
        self._hits.clear()


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

    def clear(self) -> None:
        self.ten_secondly.clear()
        self.search.clear()
        self.day.used = 0
