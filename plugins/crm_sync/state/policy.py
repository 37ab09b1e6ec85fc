"""When a contact whose write failed is tried again, and when the queue gives up on it (no Airflow)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

_LONGEST_MINUTES = 100 * 366 * 24 * 60  # a century: next_attempt_at must stay a representable datetime
MAX_STEPS = 100  # distinct waits: the store schedules with one SQL CASE branch per step


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff between runs: `base * factor ** (attempts - 1)` minutes, at most `cap`.

    An entry is parked (kept and listed, no longer retried) once it has failed `max_attempts` times.
    The defaults retry after 15 min, 30 min, 1 h, ... up to a day, for about four days in all.
    A run that takes due entries holds them for `lease_minutes`: longer than a run lasts, so no other run
    tries them meanwhile; a run that dies leaves them to come due again when the lease expires.
    """

    base_minutes: float = 15
    factor: float = 2
    cap_minutes: float = 1440
    max_attempts: int = 8
    lease_minutes: float = 120

    def __post_init__(self) -> None:
        if not self.base_minutes > 0:
            raise ValueError(f"base_minutes must be positive, got {self.base_minutes!r}")
        if not self.factor >= 1:
            raise ValueError(f"factor must be at least 1, got {self.factor!r}")
        if not self.base_minutes <= self.cap_minutes <= _LONGEST_MINUTES:
            raise ValueError(
                f"cap_minutes must lie between base_minutes ({self.base_minutes!r}) and {_LONGEST_MINUTES:.0f}, "
                f"got {self.cap_minutes!r}"
            )
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be an integer of at least 1, got {self.max_attempts!r}")
        if not 0 < self.lease_minutes <= _LONGEST_MINUTES:
            raise ValueError(f"lease_minutes must lie between 0 and {_LONGEST_MINUTES:.0f}, got {self.lease_minutes!r}")
        self.steps()

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt (from 1)."""
        if attempts < 1:
            raise ValueError(f"attempts counts from 1, got {attempts!r}")
        exponent = min(attempts - 1, 1024)  # past this the cap has long been reached; avoids float overflow
        try:
            minutes = self.base_minutes * self.factor**exponent
        except OverflowError:
            minutes = self.cap_minutes
        return timedelta(minutes=min(minutes, self.cap_minutes))

    def steps(self) -> list[timedelta]:
        """The waits after attempt 1, 2, ... up to where they stop changing (the cap, a factor of 1, or
        max_attempts); every later attempt waits as long as the last one listed."""
        waits = [self.delay(1)]
        while len(waits) < self.max_attempts and self.delay(len(waits) + 1) != waits[-1]:
            if len(waits) == MAX_STEPS:
                raise ValueError(
                    f"more than {MAX_STEPS} distinct waits before the cap: raise factor or lower cap_minutes"
                )
            waits.append(self.delay(len(waits) + 1))
        return waits

    @property
    def lease(self) -> timedelta:
        """How long a run holds the due entries it took."""
        return timedelta(minutes=self.lease_minutes)
