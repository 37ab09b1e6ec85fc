"""When the event run claims a micro-batch: a full batch waits, or the oldest waiting event is old enough."""

from __future__ import annotations

import pytest

from include.sync_logic.event_batch_close import Waiting, batch_close

MAX, AGE_MS = 500, 20_000


def close(undelivered: int, oldest_age_ms: int = 0, stale: int = 0):
    return batch_close(Waiting(undelivered, oldest_age_ms, stale), max_batch=MAX, batch_ms=AGE_MS)


def test_nothing_waiting_means_wait_for_an_event() -> None:
    decision = close(0)
    assert (decision.claim, decision.wait_ms) == (False, None)


@pytest.mark.parametrize(("undelivered", "age_ms", "wait_ms"), [(1, 0, 20_000), (1, 5_000, 15_000), (499, 19_999, 1)])
def test_a_young_small_batch_waits_until_its_oldest_event_is_old_enough(
    undelivered: int, age_ms: int, wait_ms: int
) -> None:
    decision = close(undelivered, age_ms)
    assert (decision.claim, decision.wait_ms) == (False, wait_ms)


def test_the_oldest_events_age_closes_the_batch() -> None:
    assert (close(1, 20_000).claim, close(1, 20_000).reason) == (True, "age")
    assert close(3, 90_000).claim


def test_a_full_batch_is_claimed_at_once_however_young() -> None:
    assert (close(500, 0).claim, close(500, 0).reason) == (True, "full")
    assert close(2_000, 10).claim


def test_entries_a_dead_run_left_are_taken_over_at_once() -> None:
    assert (close(0, 0, stale=3).claim, close(0, 0, stale=3).reason) == (True, "stale")


def test_no_age_limit_claims_whatever_waits() -> None:
    decision = batch_close(Waiting(1, 0, 0), max_batch=MAX, batch_ms=0)
    assert decision.claim and decision.reason == "age"
