from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_sync.state.policy import RetryPolicy


def test_defaults_double_from_a_quarter_hour_up_to_a_day():
    policy = RetryPolicy()
    assert [policy.delay(n) for n in range(1, 9)] == [
        timedelta(minutes=15),
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(hours=4),
        timedelta(hours=8),
        timedelta(hours=16),
        timedelta(days=1),
    ]
    assert policy.max_attempts == 8
    assert policy.lease == timedelta(hours=2)


def test_huge_attempt_counts_stay_at_the_cap():
    policy = RetryPolicy(base_minutes=1, factor=10, cap_minutes=60)
    assert policy.delay(5000) == timedelta(hours=1)


@given(
    base=st.floats(min_value=0.01, max_value=1e4),
    factor=st.floats(min_value=1, max_value=100),
    extra=st.floats(min_value=0, max_value=1e6),
    attempts=st.integers(min_value=1, max_value=2000),
)
def test_delay_grows_and_never_passes_the_cap(base, factor, extra, attempts):
    policy = RetryPolicy(base_minutes=base, factor=factor, cap_minutes=base + extra)
    assert timedelta(minutes=base) - timedelta(microseconds=1) <= policy.delay(attempts)
    assert policy.delay(attempts) <= timedelta(minutes=base + extra)
    assert policy.delay(attempts) <= policy.delay(attempts + 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_minutes": 0}, "base_minutes"),
        ({"base_minutes": float("nan")}, "base_minutes"),
        ({"factor": 0.5}, "factor"),
        ({"cap_minutes": 10}, "cap_minutes"),
        ({"cap_minutes": float("inf")}, "cap_minutes"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"lease_minutes": 0}, "lease_minutes"),
        ({"lease_minutes": float("nan")}, "lease_minutes"),
        ({"lease_minutes": float("inf")}, "lease_minutes"),
    ],
)
def test_bad_values_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)


def test_attempts_count_from_one():
    with pytest.raises(ValueError, match="from 1"):
        RetryPolicy().delay(0)


def test_steps_list_the_waits_until_they_stop_changing():
    assert RetryPolicy().steps() == [timedelta(minutes=15 * 2**n) for n in range(7)] + [timedelta(days=1)]
    assert RetryPolicy(factor=1, max_attempts=10_000).steps() == [timedelta(minutes=15)]
    assert RetryPolicy(max_attempts=3).steps() == [timedelta(minutes=15), timedelta(minutes=30), timedelta(hours=1)]


def test_a_schedule_of_too_many_distinct_waits_is_refused():
    with pytest.raises(ValueError, match="distinct waits"):
        RetryPolicy(factor=1.001, max_attempts=10_000)
