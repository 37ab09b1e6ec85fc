"""Retry arithmetic: full jitter within its cap, Retry-After honoured, repeatable with a seed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_sync.ratelimit.backoff import full_jitter, parse_retry_after, retry_delay


@given(attempt=st.integers(0, 10_000), base=st.floats(0.001, 10), cap=st.floats(0, 600), seed=st.integers())
def test_full_jitter_stays_within_exponential_ceiling_and_cap(attempt, base, cap, seed):
    delay = full_jitter(attempt, base=base, cap=cap, rng=random.Random(seed))
    assert 0.0 <= delay <= min(cap, base * 2.0 ** min(attempt, 64))


def test_full_jitter_grows_exponentially_then_caps():
    rng = random.Random(1)
    ceilings = [max(full_jitter(a, base=0.5, cap=8.0, rng=rng) for _ in range(2000)) for a in range(7)]
    assert ceilings[0] <= 0.5 and ceilings[0] > 0.45
    assert ceilings[3] <= 4.0 and ceilings[3] > 3.6
    assert all(c <= 8.0 for c in ceilings) and ceilings[6] > 7.5


def test_full_jitter_is_repeatable_with_a_seed_and_spread_without_one():
    first = [full_jitter(4, rng=random.Random(42)) for _ in range(3)]
    assert first == [full_jitter(4, rng=random.Random(42)) for _ in range(3)]
    rng = random.Random(7)
    spread = {round(full_jitter(5, rng=rng), 6) for _ in range(50)}
    assert len(spread) == 50


def test_full_jitter_rejects_negative_input():
    with pytest.raises(ValueError):
        full_jitter(-1, rng=random.Random())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
    ],
)
def test_parse_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date():
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90.0
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now=now) == 0.0


def test_retry_delay_honours_retry_after_even_past_the_cap():
    rng = random.Random(3)
    delays = [retry_delay(0, retry_after=120.0, base=1.0, cap=30.0, rng=rng) for _ in range(200)]
    assert all(120.0 <= d <= 121.0 for d in delays)


def test_retry_delay_without_retry_after_is_full_jitter():
    assert retry_delay(3, base=1.0, cap=60.0, rng=random.Random(9)) == full_jitter(
        3, base=1.0, cap=60.0, rng=random.Random(9)
    )
