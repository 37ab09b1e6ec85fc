"""Sizing from connection extras, limit validation and vendor header parsing (no Redis needed)."""

from __future__ import annotations

import pytest

from crm_sync.ratelimit import Limit, Observation, hubspot_limits, parse_rate_headers, salesforce_limits


def by_name(limits):
    return {lim.name: lim for lim in limits}


def test_hubspot_defaults_follow_the_contract():
    limits = by_name(hubspot_limits({}))
    assert set(limits) == {"requests_per_10s", "search_requests_per_s"}
    general, search = limits["requests_per_10s"], limits["search_requests_per_s"]
    assert (general.limit, general.window_seconds, general.kinds) == (100, 10.0, None)
    assert (search.limit, search.window_seconds, search.kinds) == (5, 1.0, frozenset({"search"}))
    assert general.applies_to("search") and general.applies_to("default")
    assert search.applies_to("search") and not search.applies_to("default")
    assert general.header == "hubspot-interval" and general.bucket_seconds is None


def test_hubspot_extras_may_be_strings_and_add_a_secondly_limit():
    limits = by_name(hubspot_limits({"requests_per_10s": "190", "search_requests_per_s": 4, "requests_per_s": "10"}))
    assert limits["requests_per_10s"].limit == 190
    assert limits["search_requests_per_s"].limit == 4
    assert limits["requests_per_s"].limit == 10 and limits["requests_per_s"].header == "hubspot-secondly"


@pytest.mark.parametrize("bad", ["ten", 0, -5, 1.5j])
def test_bad_extras_are_refused(bad):
    with pytest.raises(ValueError, match="requests_per_10s"):
        hubspot_limits({"requests_per_10s": bad})


def test_salesforce_daily_budget_is_a_bucketed_rolling_day():
    limits = by_name(salesforce_limits({"daily_api_requests": "100000", "requests_per_s": 20}))
    daily = limits["daily_api_requests"]
    assert (daily.limit, daily.window_seconds, daily.header) == (100_000, 86_400.0, "sforce-api-usage")
    assert daily.bucket_seconds is not None and daily.bucket_seconds <= 3600
    assert limits["requests_per_s"].limit == 20
    default = by_name(salesforce_limits({}))["daily_api_requests"]
    assert (default.limit, default.cap, default.reserve_share) == (15000, None, 0.2)
    assert default.ceiling(100_000) == 80_000 and daily.ceiling(200_000) == 100_000
    with pytest.raises(ValueError, match="api_reserve_share"):
        salesforce_limits({"api_reserve_share": "1"})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "pause", "limit": 1, "window_seconds": 1},
        {"name": "a:b", "limit": 1, "window_seconds": 1},
        {"name": "x", "limit": 0, "window_seconds": 1},
        {"name": "x", "limit": 1, "window_seconds": 0},
        {"name": "x", "limit": 1, "window_seconds": 1, "bucket_seconds": 2},
        {"name": "x", "limit": 1, "window_seconds": 1, "guard_seconds": -1},
    ],
)
def test_limit_validation(kwargs):
    with pytest.raises(ValueError):
        Limit(**kwargs)


def test_effective_window_includes_the_guard():
    assert Limit("x", 5, 10.0, guard_seconds=0.1).effective_window_us == 10_100_000


def test_parse_hubspot_headers_any_case():
    found = parse_rate_headers(
        {
            "x-hubspot-ratelimit-max": "100",
            "X-HubSpot-RateLimit-Remaining": "42",
            "X-HUBSPOT-RATELIMIT-INTERVAL-MILLISECONDS": "10000",
            "X-HubSpot-RateLimit-Secondly": "10",
            "X-HubSpot-RateLimit-Secondly-Remaining": "3",
        }
    )
    assert found == [
        Observation("hubspot-interval", maximum=100, remaining=42, window_ms=10000),
        Observation("hubspot-secondly", maximum=10, remaining=3, window_ms=1000),
    ]


@pytest.mark.parametrize(
    ("value", "used", "maximum"),
    [
        ("api-usage=123/15000", 123, 15000),
        ("api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)", 25, 5000),
        ("api-usage=110018/100000; api-bursts=1/750", 110018, 100000),
    ],
)
def test_parse_sforce_limit_info(value, used, maximum):
    assert parse_rate_headers([("Sforce-Limit-Info", value)]) == [
        Observation("sforce-api-usage", maximum=maximum, used=used)
    ]


def test_parse_ignores_missing_and_malformed_figures():
    assert parse_rate_headers({}) == []
    assert parse_rate_headers({"X-HubSpot-RateLimit-Remaining": "lots", "Sforce-Limit-Info": "per-app=1/2"}) == []
