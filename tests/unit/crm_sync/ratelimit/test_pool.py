"""The pool against a real redis-server: exact windows, several limits at once, pause, feedback, failure."""

from __future__ import annotations

import random
import threading
import time
import uuid

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from crm_sync.ratelimit import (
    Limit,
    RateLimitBackendError,
    RateLimitPool,
    RateLimitWaitTooLong,
    hubspot_limits,
    salesforce_limits,
)
from tests.local_services import free_port


@pytest.fixture
def client(redis_url):
    conn = redis.Redis.from_url(redis_url)
    yield conn
    conn.close()


@pytest.fixture
def account():
    """A fresh account per test, so tests never share pool state."""
    return f"test-{uuid.uuid4().hex[:10]}"


def most_in_window(server_times: list[float], window: float) -> int:
    """The most grants in any half-open window [t, t + window), on Redis's clock in whole microseconds."""
    us = sorted(round(t * 1_000_000) for t in server_times)
    span = round(window * 1_000_000)
    return max((sum(1 for s in us[i:] if s - us[i] < span) for i in range(len(us))), default=0)


def drain(pool, kind="default"):
    """Take until the pool refuses without waiting; returns how many were granted."""
    granted = 0
    while True:
        try:
            pool.acquire(kind, max_wait_seconds=0)
        except RateLimitWaitTooLong as exc:
            return granted, exc
        granted += 1


def test_grants_exactly_the_limit_then_reports_the_wait(client, account):
    pool = RateLimitPool(client, account, [Limit("w", 5, 2.0)])
    granted, exc = drain(pool)
    assert granted == 5
    assert 1.9 < exc.wait_seconds <= 2.0
    assert "w" in exc.reason and "full" in str(exc)
    assert pool.usage()["used"] == {"w": 5}


def test_a_waiting_acquire_sleeps_the_reported_time_and_counts_it(client, account):
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        time.sleep(seconds)

    pool = RateLimitPool(client, account, [Limit("w", 2, 0.4)], sleep=sleep)
    started = time.monotonic()
    grants = [pool.acquire() for _ in range(3)]
    elapsed = time.monotonic() - started
    assert len(naps) == 1 and 0.35 < naps[0] < 0.45  # one sleep, no polling
    assert grants[2].waited_seconds == pytest.approx(naps[0])
    assert grants[2].server_time - grants[0].server_time >= 0.4
    assert 0.35 < elapsed < 2.0
    stats = pool.stats.as_dict()
    assert stats["acquires"] == 3 and stats["waited_acquires"] == 1
    assert stats["wait_seconds"] == pytest.approx(naps[0], abs=1e-3)


def test_rolling_window_frees_one_slot_per_expired_request(client, account):
    pool = RateLimitPool(client, account, [Limit("w", 3, 0.6)])
    pool.acquire()
    time.sleep(0.3)
    pool.acquire()
    pool.acquire()
    with pytest.raises(RateLimitWaitTooLong) as exc:
        pool.acquire(max_wait_seconds=0)
    assert 0 < exc.value.wait_seconds <= 0.31  # the first request expires first, not the whole window
    time.sleep(exc.value.wait_seconds + 0.01)
    pool.acquire(max_wait_seconds=0)
    with pytest.raises(RateLimitWaitTooLong):
        pool.acquire(max_wait_seconds=0)


def test_no_rolling_window_ever_holds_more_than_the_limit_under_threads(client, account):
    limit, window = 10, 0.5
    pool = RateLimitPool(client, account, [Limit("w", limit, window)])
    stamps: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 1.6

    def worker() -> None:
        while time.monotonic() < deadline:
            grant = pool.acquire()
            with lock:
                stamps.append(grant.server_time)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most_in_window(stamps, window) == limit
    assert len(stamps) >= limit * 3


def test_arrivals_at_random_moments_never_overfill_a_window(client, account):
    """Callers that give up instead of sleeping arrive at arbitrary moments, also just before
    an entry expires: the window must hold there too (exact expiry, not only exact waits)."""
    limit, window = 5, 0.3
    pool = RateLimitPool(client, account, [Limit("w", limit, window)])
    rng = random.Random(11)
    stamps: list[float] = []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        try:
            stamps.append(pool.acquire(max_wait_seconds=0).server_time)
        except RateLimitWaitTooLong:
            time.sleep(rng.uniform(0, 0.004))
    assert most_in_window(stamps, window) == limit
    assert len(stamps) >= limit * 4


def test_several_limits_are_taken_all_or_none(client, account):
    pool = RateLimitPool(client, account, hubspot_limits({"requests_per_10s": 8, "search_requests_per_s": 2}))
    granted, exc = drain(pool, "search")
    assert granted == 2 and "search_requests_per_s" in exc.reason
    # the refused search took nothing from the 10-second limit
    assert pool.usage()["used"] == {"requests_per_10s": 2, "search_requests_per_s": 2}
    granted, exc = drain(pool, "default")  # plain calls are not held back by the search limit
    assert granted == 6 and "requests_per_10s" in exc.reason
    with pytest.raises(RateLimitWaitTooLong) as exc:
        pool.acquire("search", max_wait_seconds=0)
    assert "requests_per_10s" in exc.value.reason and exc.value.wait_seconds > 5  # the longest wait wins


def test_search_limit_is_per_second(client, account):
    pool = RateLimitPool(client, account, hubspot_limits({}))
    started = time.monotonic()
    grants = [pool.acquire("search") for _ in range(10)]
    elapsed = time.monotonic() - started
    assert 0.95 < elapsed < 3.0
    times = [g.server_time for g in grants]
    assert times[5] - times[0] >= 1.0 and times[9] - times[4] >= 1.0
    assert pool.usage()["used"]["requests_per_10s"] == 10


def test_unknown_kind_and_impossible_cost_are_refused(client, account):
    pool = RateLimitPool(client, account, hubspot_limits({}))
    with pytest.raises(ValueError, match="unknown request kind"):
        pool.acquire("serach")
    with pytest.raises(ValueError, match="never be granted"):
        pool.acquire("search", cost=6)


def test_cost_takes_several_requests_at_once(client, account):
    pool = RateLimitPool(client, account, [Limit("w", 10, 5.0)])
    pool.acquire(cost=7)
    with pytest.raises(RateLimitWaitTooLong):
        pool.acquire(cost=4, max_wait_seconds=0)
    pool.acquire(cost=3, max_wait_seconds=0)
    assert pool.usage()["used"] == {"w": 10}


def test_pools_of_one_account_share_and_other_accounts_do_not(redis_url, account):
    first = RateLimitPool(redis.Redis.from_url(redis_url), account, [Limit("w", 3, 5.0)])
    second = RateLimitPool(redis.Redis.from_url(redis_url), account, [Limit("w", 3, 5.0)])
    other = RateLimitPool(redis.Redis.from_url(redis_url), account + "-other", [Limit("w", 3, 5.0)])
    first.acquire()
    first.acquire()
    assert drain(second)[0] == 1
    assert drain(other)[0] == 3


def test_pause_stops_every_pool_of_the_account(redis_url, account):
    worker_a = RateLimitPool(redis.Redis.from_url(redis_url), account, hubspot_limits({}))
    worker_b = RateLimitPool(redis.Redis.from_url(redis_url), account, hubspot_limits({}))
    assert worker_a.pause_for(0.6, "HTTP 429 on batch") == pytest.approx(0.6)
    with pytest.raises(RateLimitWaitTooLong) as exc:
        worker_b.acquire("search", max_wait_seconds=0.1)
    assert exc.value.reason == "pool paused: HTTP 429 on batch"
    assert 0.2 < exc.value.wait_seconds <= 0.6
    assert worker_a.pause_for(0.1) > 0.2  # a shorter pause never cuts a longer one
    grant = worker_b.acquire()
    assert grant.waited_seconds > 0.2
    assert worker_b.usage()["paused_seconds"] == 0.0


def test_usage_reports_counts_while_paused(client, account):
    pool = RateLimitPool(client, account, [Limit("w", 5, 5.0)])
    pool.acquire()
    pool.pause_for(2)
    usage = pool.usage()
    assert usage["used"] == {"w": 1} and 1.5 < usage["paused_seconds"] <= 2


def test_429_with_retry_after_pauses_the_pool(client, account):
    pool = RateLimitPool(client, account, hubspot_limits({}))
    assert pool.observe_response(429, {"Retry-After": "3"}) == pytest.approx(3.0)
    with pytest.raises(RateLimitWaitTooLong) as exc:
        pool.acquire(max_wait_seconds=1)
    assert 2.5 < exc.value.wait_seconds <= 3.0 and "429" in exc.value.reason
    stats = pool.stats.as_dict()
    assert stats["throttled_responses"] == 1 and stats["pauses"] == 1 and stats["too_long"] == 1


def test_429_without_retry_after_uses_the_default_pause(client, account):
    pool = RateLimitPool(client, account, hubspot_limits({}), pause_without_retry_after=1.5)
    assert pool.observe_response(429, {}) == pytest.approx(1.5)
    assert pool.observe_response(200, {}) == 0.0


def test_hubspot_headers_fill_the_window_when_fewer_remain(client, account):
    pool = RateLimitPool(client, account, hubspot_limits({"requests_per_10s": 100}))
    pool.acquire()
    headers = {
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "3",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }
    pool.observe_headers(headers)
    assert pool.usage()["used"]["requests_per_10s"] == 97
    assert drain(pool)[0] == 3
    pool.observe_headers({**headers, "X-HubSpot-RateLimit-Remaining": "90"})  # never speeds up
    assert pool.usage()["used"]["requests_per_10s"] == 100


def test_hubspot_headers_for_another_window_are_ignored(client, account):
    pool = RateLimitPool(client, account, hubspot_limits({}))
    pool.observe_headers({"X-HubSpot-RateLimit-Remaining": "0", "X-HubSpot-RateLimit-Interval-Milliseconds": "60000"})
    assert pool.usage()["used"]["requests_per_10s"] == 0


def test_hubspot_secondly_headers(client, account):
    tracked = RateLimitPool(client, account, hubspot_limits({"requests_per_s": 10}))
    tracked.observe_headers({"X-HubSpot-RateLimit-Secondly": "10", "X-HubSpot-RateLimit-Secondly-Remaining": "4"})
    assert tracked.usage()["used"]["requests_per_s"] == 6
    untracked = RateLimitPool(client, account + "-b", hubspot_limits({}))
    untracked.observe_headers({"X-HubSpot-RateLimit-Secondly-Remaining": "0"})
    assert 0.3 < untracked.usage()["paused_seconds"] <= 1.0


def test_salesforce_usage_syncs_the_daily_count_both_ways(client, account):
    pool = RateLimitPool(client, account, salesforce_limits({"daily_api_requests": 15000, "api_reserve_share": 0}))
    pool.observe_headers({"Sforce-Limit-Info": "api-usage=14990/15000"})
    granted, exc = drain(pool)
    assert granted == 10
    assert "daily_api_requests" in exc.reason and exc.wait_seconds > 86_000
    pool.observe_headers({"Sforce-Limit-Info": "api-usage=123/15000"})
    assert pool.usage()["used"] == {"daily_api_requests": 123}


def test_salesforce_smaller_org_limit_shrinks_the_budget(client, account):
    pool = RateLimitPool(client, account, salesforce_limits({"daily_api_requests": 15000, "api_reserve_share": 0}))
    pool.observe_headers({"Sforce-Limit-Info": "api-usage=100/1000"})
    assert pool.usage()["used"] == {"daily_api_requests": 14100}
    assert drain(pool)[0] == 900


def test_salesforce_ceiling_follows_the_orgs_maximum_less_the_reserve(client, account):
    """Other integrations at 60% of a 100,000 budget: the sync still has 20,000 (80% less 60%)."""
    pool = RateLimitPool(client, account, salesforce_limits({}))
    pool.observe_headers({"Sforce-Limit-Info": "api-usage=60000/100000"})
    assert pool.usage()["used"]["daily_api_requests"] == 0  # 60,000 is 20,000 below the 80,000 ceiling
    assert pool.reported() == {"daily_api_requests": {"used": 60000, "maximum": 100000}}  # for budget alerts
    pool.observe_headers({"Sforce-Limit-Info": "api-usage=79990/100000"})
    granted, exc = drain(pool)
    assert granted == 10
    assert "reserved for other integrations" in exc.reason and "80%" in exc.reason


def test_salesforce_explicit_daily_requests_still_caps(client, account):
    pool = RateLimitPool(client, account, salesforce_limits({"daily_api_requests": 50000, "api_reserve_share": "0.1"}))
    pool.observe_headers({"Sforce-Limit-Info": "api-usage=49995/100000"})
    granted, exc = drain(pool)
    assert granted == 5 and "at most 50000" in exc.reason


def test_bucketed_limit_is_never_looser_than_the_window(client, account):
    pool = RateLimitPool(client, account, [Limit("day", 4, 0.8, bucket_seconds=0.2)])
    stamps = []
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        stamps.append(pool.acquire().server_time)
    assert most_in_window(stamps, 0.8) <= 4
    assert len(stamps) >= 8  # conservative by at most one bucket, so still about 4 per 1.0 s


def test_redis_down_raises_and_never_lets_a_request_through():
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0))
    pool = RateLimitPool(dead, "down", hubspot_limits({}))
    with pytest.raises(RateLimitBackendError) as exc:
        pool.acquire()
    assert isinstance(exc.value.__cause__, redis.ConnectionError)
    with pytest.raises(RateLimitBackendError):
        pool.pause_for(5)
    with pytest.raises(RateLimitBackendError):
        pool.observe_headers({"X-HubSpot-RateLimit-Remaining": "0"})
    assert pool.stats.as_dict()["acquires"] == 0


def test_building_a_pool_needs_no_redis():
    RateLimitPool(redis.Redis(port=free_port()), "parse-time", hubspot_limits({}))
