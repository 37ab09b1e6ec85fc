"""The event trigger's firing rule: once per arrival (after the batch delay), again for leftovers, unclaimed or
stale entries, never for entries a run is about to claim."""

from __future__ import annotations

from include.sync_logic.event_backlog import Backlog, FireRule, stream_id


def backlog(oldest: str | None, newest: str | None, delivered: str = "0-0", *, now: int, stale: int = 0) -> Backlog:
    return Backlog(oldest_undelivered=oldest, newest=newest, last_delivered=delivered, stale=stale, now_ms=now)


def rule() -> FireRule:
    return FireRule(batch_ms=2_000, rearm_ms=60_000, stale_ms=300_000)


def test_stream_ids_compare_by_time_then_sequence() -> None:
    assert stream_id("1000-2") > stream_id("1000-1") > stream_id("999-9")
    assert stream_id("1000") == (1000, 0)


def test_an_empty_queue_never_fires() -> None:
    assert not rule().decide(backlog(None, None, now=5_000)).fire


def test_a_new_entry_fires_once_after_the_batch_delay() -> None:
    fire = rule()
    young = fire.decide(backlog("1000-0", "1000-0", now=1_500))
    assert (young.fire, young.wait_ms) == (False, 1_500)
    first = fire.decide(backlog("1000-0", "1500-0", now=3_000))
    assert (first.fire, first.reason) == (True, "new")
    assert not fire.decide(backlog("1000-0", "1500-0", now=4_000)).fire  # the run has not claimed them yet


def test_entries_arriving_after_the_firing_fire_again() -> None:
    fire = rule()
    assert fire.decide(backlog("1000-0", "1000-0", now=3_000)).fire
    after = fire.decide(backlog("1000-0", "3500-0", now=6_000))
    assert (after.fire, after.reason) == (True, "new")


def test_leftovers_of_a_micro_batch_fire_again_once_a_run_has_claimed() -> None:
    fire = rule()
    assert fire.decide(backlog("1000-0", "2000-0", now=5_000)).fire
    left = fire.decide(backlog("1500-0", "2000-0", delivered="1400-0", now=9_000))
    assert (left.fire, left.reason) == (True, "left")
    assert not fire.decide(backlog("1500-0", "2000-0", delivered="1400-0", now=10_000)).fire


def test_entries_nobody_claimed_fire_again_after_the_rearm_delay() -> None:
    fire = rule()
    assert fire.decide(backlog("1000-0", "1000-0", now=5_000)).fire
    assert not fire.decide(backlog("1000-0", "1000-0", now=64_000)).fire
    again = fire.decide(backlog("1000-0", "1000-0", now=65_000))
    assert (again.fire, again.reason) == (True, "unclaimed")


def test_stale_pending_entries_fire_at_most_once_a_lease() -> None:
    fire = rule()
    first = fire.decide(backlog(None, "1000-0", delivered="1000-0", stale=3, now=400_000))
    assert (first.fire, first.reason) == (True, "stale")
    assert not fire.decide(backlog(None, "1000-0", delivered="1000-0", stale=3, now=500_000)).fire
    assert fire.decide(backlog(None, "1000-0", delivered="1000-0", stale=3, now=700_000)).fire


def test_a_restarted_trigger_fires_once_for_what_is_waiting() -> None:
    assert rule().decide(backlog("1000-0", "1000-0", now=900_000)).reason == "new"
