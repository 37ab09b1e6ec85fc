"""sandbox.hubspot.ratelimit: the rolling windows' peaks (the most requests admitted, and asked, in any interval),
and how the HubSpot sandbox shows them in the admin `GET stats`."""

from __future__ import annotations

import random

import pytest

from sandbox.core import Request
from sandbox.hubspot.app import CONTACTS, DEFAULT_TOKEN, HubSpotApp
from sandbox.hubspot.ratelimit import HubSpotLimits, RollingWindow


def brute_force_peak(stamps: list[float], seconds: float) -> int:
    """The most stamps in any interval (t - seconds, t]; the busiest interval ends on a stamp."""
    return max((sum(1 for s in stamps if end - seconds < s <= end) for end in stamps), default=0)


def test_peaks_count_the_busiest_interval_not_the_latest():
    window = RollingWindow(limit=3, seconds=10.0)
    for now in (0.0, 4.0, 9.0):
        assert window.try_acquire(now)
    # 0.0 leaves the window at 10.0 exactly (intervals are open at their start): a fourth fits then.
    assert window.try_acquire(10.0)
    assert window.try_acquire(25.0)
    assert window.peaks() == {"limit": 3, "window_seconds": 10.0, "peak_admitted": 3, "peak_offered": 3}


def test_refused_requests_count_as_offered_not_admitted():
    window = RollingWindow(limit=2, seconds=1.0)
    assert [window.try_acquire(t) for t in (0.0, 0.1, 0.2, 0.3)] == [True, True, False, False]
    assert (window.peak_admitted, window.peak_offered) == (2, 4)
    # Requests an interval apart never share one: the offered peak stays where the burst put it.
    assert window.try_acquire(5.0) and window.try_acquire(7.0)
    assert (window.peak_admitted, window.peak_offered) == (2, 4)


@pytest.mark.parametrize("seed", range(5))
def test_peaks_equal_a_brute_force_count_over_random_traffic(seed):
    rng = random.Random(seed)
    window = RollingWindow(limit=7, seconds=10.0)
    now, offered, admitted = 0.0, [], []
    for _ in range(400):
        now += rng.choice((0.0, rng.expovariate(1.5)))  # bursts of simultaneous requests, then gaps
        offered.append(now)
        if window.try_acquire(now):
            admitted.append(now)
    assert window.peak_admitted == brute_force_peak(admitted, 10.0) == 7
    assert window.peak_offered == brute_force_peak(offered, 10.0) > 7


def test_a_pace_under_the_limit_peaks_below_it():
    window = RollingWindow(limit=10, seconds=10.0)
    for n in range(100):
        assert window.try_acquire(n * 1.25)  # 8 in any 10 s
    assert (window.peak_admitted, window.peak_offered) == (8, 8)


def test_reset_peaks_keeps_the_log_and_clear_drops_both():
    window = RollingWindow(limit=3, seconds=10.0)
    for now in (0.0, 1.0, 2.0, 3.0):
        window.try_acquire(now)
    window.reset_peaks()
    assert (window.peak_admitted, window.peak_offered) == (0, 0)
    assert window.remaining(3.5) == 0  # the limit still counts the earlier requests
    assert not window.try_acquire(4.0)
    assert (window.peak_admitted, window.peak_offered) == (0, 5)
    window.clear()
    assert window.try_acquire(4.5)
    assert (window.peak_admitted, window.peak_offered) == (1, 1)


def test_hubspot_limits_report_both_rolling_windows():
    limits = HubSpotLimits(requests_per_10s=4, search_requests_per_s=2)
    for _ in range(3):
        limits.search.try_acquire(100.0)
    limits.ten_secondly.try_acquire(100.0)
    assert limits.peaks() == {
        "requests_per_10s": {"limit": 4, "window_seconds": 10.0, "peak_admitted": 1, "peak_offered": 1},
        "search_requests_per_s": {"limit": 2, "window_seconds": 1.0, "peak_admitted": 2, "peak_offered": 3},
    }
    limits.configure(requests_per_10s=9)
    assert limits.peaks()["requests_per_10s"]["limit"] == 9
    limits.reset_peaks()
    assert {p["peak_offered"] for p in limits.peaks().values()} == {0}


def _call(app: HubSpotApp, method: str, path: str) -> int:
    headers = {"authorization": f"Bearer {DEFAULT_TOKEN}"} if not path.startswith("/__admin/") else {}
    return app.handle(Request(method, path, {}, headers, b"{}" if method == "POST" else b"")).status


def _stats(app: HubSpotApp) -> dict:
    return app.handle(Request("GET", "/__admin/stats", {}, {}, b"")).body


def test_the_sandbox_shows_the_peaks_in_stats_total_and_resets_them_with_stats():
    app = HubSpotApp(requests_per_10s=3, search_requests_per_s=1)
    assert [_call(app, "GET", CONTACTS) for _ in range(5)] == [200, 200, 200, 429, 429]
    assert [_call(app, "POST", f"{CONTACTS}/search") for _ in range(2)] == [200, 429]
    stats = _stats(app)
    assert stats["total"]["rate_limits"] == {
        "requests_per_10s": {"limit": 3, "window_seconds": 10.0, "peak_admitted": 3, "peak_offered": 5},
        "search_requests_per_s": {"limit": 1, "window_seconds": 1.0, "peak_admitted": 1, "peak_offered": 2},
    }
    assert stats["total"]["429"] == 3
    assert all("requests" in row for key, row in stats.items() if key != "total")  # endpoint rows only
    app.handle(Request("POST", "/__admin/stats/reset", {}, {}, b""))
    peaks = _stats(app)["total"]["rate_limits"]
    assert {p["peak_admitted"] for p in peaks.values()} == {p["peak_offered"] for p in peaks.values()} == {0}
