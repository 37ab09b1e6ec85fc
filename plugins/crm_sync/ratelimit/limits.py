"""What the pool enforces: one `Limit` per vendor limit, sized from connection extras."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, overload

#: Header figures a limit can be corrected from (see `headers.parse_rate_headers`).
HeaderSource = Literal["hubspot-interval", "hubspot-secondly", "sforce-api-usage"]

DEFAULT_KIND = "default"
SEARCH_KIND = "search"
DEFAULT_DAILY_API_REQUESTS = 15000  # Salesforce: requests allowed before the first Limit Info header
DEFAULT_API_RESERVE_SHARE = 0.2  # Salesforce: share of the org's daily maximum left to other integrations


@dataclass(frozen=True)
class Limit:
    """At most `limit` requests in any rolling `window_seconds`.

    `kinds=None` means every request counts; otherwise only requests of those kinds.
    `bucket_seconds=None` keeps an exact log of every request (right for short windows);
    a bucket span keeps per-bucket counters instead (for a daily budget, where a log
    would hold hundreds of thousands of entries); a bucket counts until its end is a
    whole window old, so counting is conservative by at most one bucket.
    `guard_seconds` widens the window a little so that network jitter between us and the
    vendor cannot make the vendor see `limit + 1` requests in its own window.
    `header` names the response-header figure that corrects this limit's count.
    For a header that reports the whole account's usage and maximum (Salesforce's org-wide daily
    budget), `ceiling` says how far that usage may go: the reported maximum less `reserve_share`
    of it (left to the account's other clients), never above `cap` when one is set. `limit` is
    then the count allowed before the first header arrives.
    """

    name: str
    limit: int
    window_seconds: float
    kinds: frozenset[str] | None = None
    bucket_seconds: float | None = None
    guard_seconds: float = 0.0
    header: HeaderSource | None = None
    reserve_share: float = 0.0
    cap: int | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum() or self.name == "pause":
            raise ValueError(f"limit name must be a plain word other than 'pause': {self.name!r}")
        if self.limit < 1:
            raise ValueError(f"limit {self.name}: limit must be at least 1, got {self.limit}")
        if self.window_seconds <= 0 or self.guard_seconds < 0:
            raise ValueError(f"limit {self.name}: window must be positive and guard not negative")
        if self.bucket_seconds is not None and not 0 < self.bucket_seconds <= self.window_seconds:
            raise ValueError(f"limit {self.name}: bucket must be positive and no longer than the window")
        if not 0 <= self.reserve_share < 1:
            raise ValueError(f"limit {self.name}: reserve share must be in [0, 1), got {self.reserve_share}")

    def ceiling(self, server_maximum: int | None) -> int:
        """The account-wide usage this limit lets us reach, given the server-reported maximum."""
        if server_maximum is None:
            return self.limit
        share = math.floor(server_maximum * (1 - self.reserve_share))
        return share if self.cap is None else min(share, self.cap)

    def full_reason(self) -> str:
        """Why a caller waits when this limit is full (in `RateLimitWaitTooLong` and the logs)."""
        if self.header == "sforce-api-usage":
            cap = f", at most {self.cap}" if self.cap is not None else ""
            return (
                f"limit {self.name} is full: the org's API usage reached {1 - self.reserve_share:.0%} of its "
                f"daily maximum{cap}; the rest is reserved for other integrations"
            )
        return f"limit {self.name} ({self.limit} per {self.window_seconds:g}s) is full"

    def applies_to(self, kind: str) -> bool:
        return self.kinds is None or kind in self.kinds

    @property
    def effective_window_us(self) -> int:
        """The window the script enforces, guard included, in microseconds."""
        return math.ceil((self.window_seconds + self.guard_seconds) * 1_000_000)


def _guard(window_seconds: float) -> float:
    """A 5% guard on a 1 s window, 100 ms on longer ones: enough for loopback-to-cloud jitter."""
    return min(0.1, window_seconds * 0.05)


@overload
def _positive_int(extras: Mapping[str, Any], key: str, default: int) -> int: ...
@overload
def _positive_int(extras: Mapping[str, Any], key: str, default: None) -> int | None: ...
def _positive_int(extras: Mapping[str, Any], key: str, default: int | None) -> int | None:
    """Extras may hold numbers or strings (the Airflow UI stores what was typed)."""
    raw = extras.get(key, default)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"connection extra {key!r} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"connection extra {key!r} must be at least 1, got {value}")
    return value


def _share(extras: Mapping[str, Any], key: str, default: float) -> float:
    raw = extras.get(key, default)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"connection extra {key!r} must be a number, got {raw!r}") from None
    if not 0 <= value < 1:
        raise ValueError(f"connection extra {key!r} must be at least 0 and below 1, got {value}")
    return value


def hubspot_limits(extras: Mapping[str, Any]) -> list[Limit]:
    """HubSpot: the rolling 10-second app limit for every call, plus the per-second search limit.

    Extras: `requests_per_10s` (default 100), `search_requests_per_s` (default 5) and, optionally,
    `requests_per_s` for accounts that also enforce a per-second limit on every call.
    Search calls must be acquired with kind `"search"`; they count against both limits.
    """
    per_10s = _positive_int(extras, "requests_per_10s", 100)
    search = _positive_int(extras, "search_requests_per_s", 5)
    limits = [
        Limit("requests_per_10s", per_10s, 10.0, guard_seconds=_guard(10.0), header="hubspot-interval"),
        Limit("search_requests_per_s", search, 1.0, kinds=frozenset({SEARCH_KIND}), guard_seconds=_guard(1.0)),
    ]
    per_s = _positive_int(extras, "requests_per_s", None)
    if per_s is not None:
        limits.append(Limit("requests_per_s", per_s, 1.0, guard_seconds=_guard(1.0), header="hubspot-secondly"))
    return limits


def salesforce_limits(extras: Mapping[str, Any]) -> list[Limit]:
    """Salesforce: the org's rolling 24-hour API request budget, plus an optional per-second cap.

    `Sforce-Limit-Info: api-usage=N/M` reports the whole org's usage N and maximum M (REST API
    Developer Guide, "Limit Info Header"), all integrations included. The sync may take the org
    up to M less `api_reserve_share` of it (default 0.2, left to other integrations), and never
    past `daily_api_requests` when that extra is set. Before the first header, 15000 (or
    `daily_api_requests`) requests are allowed. `requests_per_s` is optional.
    """
    cap = _positive_int(extras, "daily_api_requests", None)
    limits = [
        Limit(
            "daily_api_requests",
            cap or DEFAULT_DAILY_API_REQUESTS,
            86_400.0,
            bucket_seconds=600.0,
            guard_seconds=_guard(86_400.0),
            header="sforce-api-usage",
            reserve_share=_share(extras, "api_reserve_share", DEFAULT_API_RESERVE_SHARE),
            cap=cap,
        )
    ]
    per_s = _positive_int(extras, "requests_per_s", None)
    if per_s is not None:
        limits.append(Limit("requests_per_s", per_s, 1.0, guard_seconds=_guard(1.0)))
    return limits
