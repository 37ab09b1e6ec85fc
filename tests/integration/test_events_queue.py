"""The contact-event queue on a real redis-server: dedupe, claims, leases after a consumer dies, acks, the cap."""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Iterator

import pytest
import redis

from crm_sync.events import queue_names
from crm_sync.events.queue import ContactEventQueue
from include.sync_logic.events import ContactEvent, EventKind
from include.sync_logic.sides import Side

pytestmark = pytest.mark.integration

T = 1_790_000_000_000


def events(n: int, start: int = 0, side: Side = Side.HUBSPOT) -> list[ContactEvent]:
    return [ContactEvent(side, str(1000 + i), EventKind.CHANGED, T + i, f"e{i}") for i in range(start, start + n)]


@pytest.fixture
def client(clean_redis: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(clean_redis) as conn:
        yield conn


@pytest.fixture
def queue(client: redis.Redis) -> ContactEventQueue:
    return ContactEventQueue(client, lease_ms=300)


def test_events_come_out_as_they_went_in_and_leave_once_acked(queue: ContactEventQueue) -> None:
    merged = ContactEvent(Side.HUBSPOT, "305", EventKind.MERGED, T, "m1", ("150", "201"))
    assert queue.add([*events(3), merged]) == 4
    claimed = queue.claim("run-1", count=10)
    assert [c.event for c in claimed] == [*events(3), merged]
    figures = queue.figures()
    assert {k: figures[k] for k in ("length", "lag", "pending", "pending_by_consumer")} == {
        "length": 4,
        "lag": 0,
        "pending": 4,
        "pending_by_consumer": {"run-1": 4},
    }
    assert 0 <= figures["oldest_entry_age_seconds"] < 5 and 0 <= figures["oldest_pending_idle_ms"] < 5000
    assert queue.ack([c.entry_id for c in claimed[:3]]) == 3
    assert queue.ack([claimed[0].entry_id]) == 0, "a second ack of the same entry does nothing"
    assert (queue.pending()["count"], queue.client.xlen(queue.stream)) == (1, 1)
    queue.ack([claimed[3].entry_id])
    assert queue.claim("run-2", count=10) == [] and queue.figures()["length"] == 0


def test_a_repeated_event_id_is_queued_once_per_side_while_remembered(client: redis.Redis) -> None:
    queue = ContactEventQueue(client, dedupe_ttl_seconds=1)
    assert queue.add_counted(events(5)).added == 5
    result = queue.add_counted([*events(5), *events(2, start=5)])  # HubSpot delivers five again, two are new
    assert (result.added, result.duplicates) == (2, 5)
    assert queue.add(events(1, side=Side.SALESFORCE)) == 1, "another side's event with the same id is its own"
    ttl = client.ttl(queue_names.SEEN_KEY_PREFIX + "hubspot:e0")
    assert 0 < ttl <= 1
    time.sleep(1.2)
    assert queue.add(events(1)) == 1, "after the TTL the id is forgotten"
    assert queue.lag() == 9


def _add_in_process(url: str, start: int) -> int:
    with redis.Redis.from_url(url) as conn:
        return ContactEventQueue(conn).add(events(200, start=start))


def test_concurrent_producers_queue_each_event_exactly_once(clean_redis: str, queue: ContactEventQueue) -> None:
    # Four processes deliver overlapping batches at once (HubSpot's retries racing the first delivery).
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        added = pool.starmap(
            _add_in_process, [(clean_redis, 0), (clean_redis, 100), (clean_redis, 0), (clean_redis, 50)]
        )
    assert sum(added) == 300
    claimed = queue.claim("run", count=1000)
    assert sorted(int(c.event.event_id[1:]) for c in claimed) == list(range(300))


def test_two_consumers_never_get_the_same_entry(queue: ContactEventQueue) -> None:
    queue.add(events(10))
    first = queue.claim("run-a", count=6)
    second = queue.claim("run-b", count=6)
    assert len(first) == 6 and len(second) == 4
    assert not {c.entry_id for c in first} & {c.entry_id for c in second}


LEASE_MS = 1500


def _claim_and_die(url: str) -> None:
    with redis.Redis.from_url(url) as conn:
        ContactEventQueue(conn, lease_ms=LEASE_MS).claim("crashing-run", count=3)
    # exits without acking: the run crashed after taking its events


def test_a_crashed_consumers_entries_return_after_the_lease(clean_redis: str, client: redis.Redis) -> None:
    queue = ContactEventQueue(client, lease_ms=LEASE_MS)
    queue.add(events(5))
    process = multiprocessing.get_context("spawn").Process(target=_claim_and_die, args=(clean_redis,))
    process.start()
    process.join(30)
    assert process.exitcode == 0
    assert queue.pending()["consumers"] == {"crashing-run": 3}
    early = queue.claim("next-run", count=10)
    assert [c.event.event_id for c in early] == ["e3", "e4"], "held entries stay with their consumer in the lease"
    time.sleep(LEASE_MS / 1000)
    late = queue.claim("next-run", count=10)
    assert [c.event.event_id for c in late] == ["e0", "e1", "e2", "e3", "e4"], "after the lease they are re-delivered"
    queue.ack([c.entry_id for c in late])
    assert queue.pending()["count"] == 0


def test_claim_on_an_empty_queue_answers_at_once(queue: ContactEventQueue) -> None:
    started = time.monotonic()
    assert queue.claim("run", count=5) == []
    assert time.monotonic() - started < 1


def test_an_unreadable_entry_is_dropped_with_an_error_not_handed_out_forever(
    queue: ContactEventQueue, caplog: pytest.LogCaptureFixture
) -> None:
    queue.add(events(1))
    queue.client.xadd(queue.stream, {"side": "hubspot", "contact_id": "1"})  # written by something else
    with caplog.at_level(logging.ERROR):
        claimed = queue.claim("run", count=5)
    assert [c.event.event_id for c in claimed] == ["e0"]
    assert "is not a contact event" in caplog.text
    assert queue.pending()["count"] == 1 and queue.client.xlen(queue.stream) == 1


def test_the_cap_trims_unacknowledged_entries_loudly(client: redis.Redis, caplog: pytest.LogCaptureFixture) -> None:
    queue = ContactEventQueue(client, max_length=100)
    assert queue.add_counted(events(100)).trimmed == 0
    with caplog.at_level(logging.ERROR):
        result = queue.add_counted(events(300, start=100))
    assert result.added == 300 and result.trimmed > 0
    assert client.xlen(queue.stream) == 400 - result.trimmed
    assert client.xlen(queue.stream) >= 100, "approximate: never below the cap"
    assert f"{result.trimmed} unacknowledged events trimmed" in caplog.text


def test_the_group_comes_back_after_redis_lost_its_data(client: redis.Redis, queue: ContactEventQueue) -> None:
    queue.add(events(2))
    client.flushdb()
    assert queue.claim("run", count=5) == []
    assert queue.add(events(2)) == 2
    assert len(queue.claim("run", count=5)) == 2


def test_enqueue_latency_of_a_full_delivery(queue: ContactEventQueue) -> None:
    # One HubSpot delivery (100 events) is one script call: its time is most of what the webhook adds to an answer.
    timings = []
    for n in range(200):
        batch = events(100, start=100 * n)
        started = time.perf_counter()
        assert queue.add(batch) == 100
        timings.append(time.perf_counter() - started)
    timings.sort()
    p50, p95 = timings[len(timings) // 2], timings[int(0.95 * len(timings)) - 1]
    print(f"\nenqueue of 100 events: p50 {1000 * p50:.1f} ms, p95 {1000 * p95:.1f} ms, max {1000 * timings[-1]:.1f} ms")
    assert p95 < 0.5, "well within HubSpot's 5 s"
    assert queue.lag() == 20_000


def test_waiting_counts_undelivered_entries_their_oldest_age_and_stale_pending(queue: ContactEventQueue) -> None:
    empty = queue.waiting()
    assert (empty.undelivered, empty.oldest_age_ms, empty.stale) == (0, 0, 0)
    queue.add(events(2))
    time.sleep(0.2)
    queue.add(events(1, start=2))
    first = queue.waiting()
    assert first.undelivered == 3 and 200 <= first.oldest_age_ms < 5_000 and first.stale == 0
    queue.claim("run-1", count=2)
    left = queue.waiting()
    assert left.undelivered == 1 and left.oldest_age_ms < first.oldest_age_ms and left.stale == 0
    time.sleep(0.4)  # past the fixture's 300 ms lease: the claimed two are a dead run's now
    assert queue.waiting().stale == 2


def test_wait_for_entry_wakes_on_a_new_entry_and_times_out_without_one(queue: ContactEventQueue) -> None:
    queue.add(events(1))
    queue.claim("run", count=5)  # delivered: nothing undelivered is left
    started = time.monotonic()
    assert queue.wait_for_entry(300) is False
    assert time.monotonic() - started >= 0.25
    queue.add(events(1, start=1))
    assert queue.wait_for_entry(300) is True  # undelivered already: no wait needed to know
