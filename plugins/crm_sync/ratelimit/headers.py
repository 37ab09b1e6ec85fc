"""Reads the vendors' rate-limit response headers into figures the pool can apply.

HubSpot (developers.hubspot.com, API usage guidelines): `X-HubSpot-RateLimit-Max` requests are
allowed per `X-HubSpot-RateLimit-Interval-Milliseconds` window, `-Remaining` of them are left;
`-Secondly` / `-Secondly-Remaining` give the same for the current second. Search endpoints
return none of these. Salesforce (REST API guide, Limit Info header):
`Sforce-Limit-Info: api-usage=used/limit`, possibly followed by `; per-app-api-usage=...` or
`; api-bursts=...`; used may exceed the limit while a burst allowance is in use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from crm_sync.ratelimit.limits import HeaderSource

_API_USAGE = re.compile(r"(?:^|[;,\s])api-usage\s*=\s*(\d+)\s*/\s*(\d+)")


@dataclass(frozen=True)
class Observation:
    """One server-reported figure: `remaining` of `maximum` left in `window_ms`, or `used`."""

    source: HeaderSource
    maximum: int | None = None
    remaining: int | None = None
    used: int | None = None
    window_ms: int | None = None


def _lowered(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {str(k).lower(): str(v) for k, v in items}


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def parse_rate_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[Observation]:
    """Every rate-limit figure found in `headers`; malformed or partial figures are skipped."""
    h = _lowered(headers)
    found: list[Observation] = []
    remaining = _int(h.get("x-hubspot-ratelimit-remaining"))
    if remaining is not None:
        found.append(
            Observation(
                "hubspot-interval",
                maximum=_int(h.get("x-hubspot-ratelimit-max")),
                remaining=remaining,
                window_ms=_int(h.get("x-hubspot-ratelimit-interval-milliseconds")),
            )
        )
    secondly_remaining = _int(h.get("x-hubspot-ratelimit-secondly-remaining"))
    if secondly_remaining is not None:
        found.append(
            Observation(
                "hubspot-secondly",
                maximum=_int(h.get("x-hubspot-ratelimit-secondly")),
                remaining=secondly_remaining,
                window_ms=1000,
            )
        )
    match = _API_USAGE.search(h.get("sforce-limit-info", ""))
    if match:
        found.append(Observation("sforce-api-usage", maximum=int(match[2]), used=int(match[1])))
    return found
