"""Retry of transient failures: backoff, Retry-After as a floor, permanent errors untouched."""

from __future__ import annotations

import random

import pytest

from crm_sync.hooks.errors import TransientError
from crm_sync.hooks.retry import RetryPolicy, call_with_retry


def test_transient_failures_are_retried_then_succeed():
    waits: list[float] = []
    calls = iter([TransientError("503"), TransientError("429", retry_after=2.0), "ok"])

    def fn():
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    policy = RetryPolicy(attempts=5, base=0.1, cap=1.0, rng=random.Random(0))
    assert call_with_retry(fn, policy=policy, what="t", sleep=waits.append) == "ok"
    assert len(waits) == 2 and waits[0] <= 0.1 and waits[1] >= 2.0


def test_gives_up_with_the_last_transient_error():
    waits: list[float] = []

    def fn():
        raise TransientError("503", status=503)

    with pytest.raises(TransientError):
        call_with_retry(fn, policy=RetryPolicy(attempts=3, base=0.0), what="t", sleep=waits.append)
    assert len(waits) == 2


def test_permanent_errors_are_not_retried():
    calls = []

    def fn():
        calls.append(1)
        raise ValueError("MALFORMED_QUERY")

    with pytest.raises(ValueError):
        call_with_retry(fn, policy=RetryPolicy(), what="t", sleep=lambda s: None)
    assert calls == [1]
