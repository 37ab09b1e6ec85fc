"""The one retry layer of every CRM call: tenacity, with the pool's backoff arithmetic.

Hooks turn a failed request into `TransientError` (429, 5xx, timeouts, dropped connections) or a permanent
error (`errors`: each CRM's `classify`); only `TransientError` is retried. The wait is the project's full-jitter
backoff, with the server's Retry-After (when the hook passes one on) as its floor. When the attempts
run out the last `TransientError` is raised, so the Airflow task fails and its own retries take over.
The HTTP clients underneath must not retry themselves, or one call would be sent many times.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from crm_sync.hooks.errors import TransientError
from crm_sync.ratelimit.backoff import retry_delay

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying: `attempts` calls in all, waits growing from `base` up to `cap` seconds."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        return retry_delay(attempt, retry_after=retry_after, base=self.base, cap=self.cap, rng=self.rng)

    def retrying(self, what: str, sleep: Callable[[float], None] = time.sleep) -> Retrying:
        """A tenacity controller for one call: `TransientError` only, `attempts` sends at most."""

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return self.delay(state.attempt_number - 1, getattr(error, "retry_after", None))

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            wait_s = state.next_action.sleep if state.next_action else 0.0
            log.info("%s: transient failure (%s), retry %d in %.2fs", what, error, state.attempt_number, wait_s)

        return Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self.attempts),
            wait=wait,
            sleep=sleep,
            before_sleep=before_sleep,
            reraise=True,
        )


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn` until it returns, retrying `TransientError` with backoff; other errors pass at once."""
    try:
        return policy.retrying(what, sleep)(fn)
    except TransientError as exc:
        log.warning("%s: giving up after %d attempts (%s)", what, policy.attempts, exc)
        raise
