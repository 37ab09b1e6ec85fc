"""Retry delays: capped exponential backoff with full jitter, honouring Retry-After.

Pure functions; pass a seeded `random.Random` for repeatable delays in tests.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def full_jitter(attempt: int, *, base: float = 1.0, cap: float = 60.0, rng: random.Random) -> float:
    """A delay drawn uniformly from [0, min(cap, base * 2**attempt)] (attempt counts from 0).

    Full jitter spreads retrying clients over the whole interval, so they do not come back
    in lock-step and trip the limit again.
    """
    if attempt < 0 or base < 0 or cap < 0:
        raise ValueError("attempt, base and cap must not be negative")
    ceiling = cap if attempt >= 64 else min(cap, base * 2.0**attempt)
    return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or an HTTP date); None if unusable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def retry_delay(
    attempt: int,
    *,
    retry_after: float | None = None,
    base: float = 1.0,
    cap: float = 60.0,
    rng: random.Random,
) -> float:
    """The delay before retry number `attempt` (from 0).

    With a Retry-After the server's figure wins, even past `cap` (retrying earlier is
    known to fail; a caller that cannot wait that long should defer instead), plus up to
    `base` seconds of jitter so the whole pool does not return on the same instant.
    Without one: `full_jitter`.
    """
    if retry_after is not None:
        return max(0.0, retry_after) + rng.uniform(0.0, base)
    return full_jitter(attempt, base=base, cap=cap, rng=rng)
