"""Retry of transient CRM failures, with the pool's backoff arithmetic (full jitter, Retry-After wins).

Hooks turn a failed request into `TransientError` (429, 5xx, timeouts, dropped connections) or let a
permanent error through; only `TransientError` is retried here. When the attempts run out the last
`TransientError` is raised, so the Airflow task fails and its own retries take over.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from crm_sync.ratelimit.backoff import retry_delay

log = logging.getLogger(__name__)

T = TypeVar("T")


class TransientError(Exception):
    """A failure that may succeed when tried again; `retry_after` is the wait the server asked for."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying: `attempts` calls in all, waits growing from `base` up to `cap` seconds."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        return retry_delay(attempt, retry_after=retry_after, base=self.base, cap=self.cap, rng=self.rng)


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn` until it returns, retrying `TransientError` with backoff; other errors pass at once."""
    for attempt in range(policy.attempts):
        try:
            return fn()
        except TransientError as exc:
            if attempt + 1 >= policy.attempts:
                log.warning("%s: giving up after %d attempts (%s)", what, policy.attempts, exc)
                raise
            wait = policy.delay(attempt, exc.retry_after)
            log.info("%s: transient failure (%s), retry %d in %.2fs", what, exc, attempt + 1, wait)
            sleep(wait)
    raise AssertionError("unreachable")  # the loop always returns or raises
