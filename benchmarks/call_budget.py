"""The arithmetic of `bench_scale.py`, kept pure: endpoint groups, the theoretical minimum of API calls for a
phase, and the rate-limit floor of the calls made. Definitions in `bench_scale.py`'s docstring.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Records per request, the best each API allows.
SALESFORCE_READ_PAGE = 2000  # a SOQL REST page, or a Bulk API 2.0 result page
HUBSPOT_SEARCH_PAGE = 200
HUBSPOT_BATCH_READ_PAGE = 100
HUBSPOT_LIST_PAGE = 100
WRITE_BATCH = {"salesforce": 200, "hubspot": 100}  # sObject Collections / HubSpot batch endpoints

# Column order of the call groups in the table.
GROUPS = ("sf_reads", "sf_writes", "hs_search", "hs_reads", "hs_list", "hs_writes")
FIXED = "fixed"
GROUP_TITLES = {
    "sf_reads": "SF reads",
    "sf_writes": "SF writes",
    "hs_search": "HS search",
    "hs_reads": "HS batch reads",
    "hs_list": "HS list",
    "hs_writes": "HS writes",
    FIXED: "fixed",
}
# The HubSpot call that counts against no rate limit (HubSpot's token-info call travels without a token).
UNLIMITED_HUBSPOT = ("/oauth/v2/private-apps/get/access-token-info",)


def endpoint_group(system: str, endpoint: str) -> str:
    """The table column of one sandbox stats row: `system` "salesforce"/"hubspot", `endpoint` "METHOD pattern".

    Fixed: Salesforce tokens, limits, describe and sObject metadata, and Bulk API job control (create, poll,
    close: the job's overhead, whatever its size; the stats do not tell query jobs from ingest jobs there);
    HubSpot token info and property definitions. Reads by id (a single GET) count with the batch reads.
    """
    method, _, path = endpoint.partition(" ")
    if system == "salesforce":
        if "/oauth2/" in path or "/limits" in path or "/describe" in path:
            return FIXED
        if "/jobs/query/" in path and path.endswith("/results/?"):
            return "sf_reads"
        if "/jobs/ingest/" in path:  # upload and result files of an ingest job
            return "sf_writes"
        if "/jobs/" in path:
            return FIXED
        if method == "GET" and ("/{kind}/" in path or "/{record_id}" in path or "/{value}" in path):
            return "sf_reads"
        if method == "GET" and "/composite/sobjects/{sobject}" in path:
            return "sf_reads"
        if method == "POST" and path.endswith("/composite/?"):  # the sync's Composite requests carry queries only
            return "sf_reads"
        if method in ("POST", "PATCH", "DELETE", "PUT"):
            return "sf_writes"
        return FIXED  # versions, resources, sObject lists and info
    if path.endswith("/search"):
        return "hs_search"
    if path.endswith("/batch/read") or (method == "GET" and path.endswith("/{contact_id}")):
        return "hs_reads"
    if method == "GET" and path.endswith("/objects/contacts"):
        return "hs_list"
    if "/objects/contacts" in path:
        return "hs_writes"
    return FIXED


@dataclass(frozen=True)
class PhaseReads:
    """Records a phase had to read, per side: its window's records (HubSpot: through search, or the list API
    on a full resync) and the counterparts needed (paired with a window contact, not in that side's window)."""

    salesforce_window: int
    salesforce_counterparts: int
    hubspot_window: int
    hubspot_counterparts: int
    hubspot_listed: int = 0


def minimum_calls(reads: PhaseReads, writes: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """Fewest requests per group: reads ceil(records / page) (Salesforce window and counterparts share a
    2,000-record page; HubSpot's window 200 a search page, counterparts 100 a batch read, listed 100 a
    page); writes ceil(records / batch) per (target, action)."""
    minimum = {
        "sf_reads": _pages(reads.salesforce_window + reads.salesforce_counterparts, SALESFORCE_READ_PAGE),
        "hs_search": _pages(reads.hubspot_window, HUBSPOT_SEARCH_PAGE),
        "hs_reads": _pages(reads.hubspot_counterparts, HUBSPOT_BATCH_READ_PAGE),
        "hs_list": _pages(reads.hubspot_listed, HUBSPOT_LIST_PAGE),
        "sf_writes": 0,
        "hs_writes": 0,
    }
    for (target, _action), records in writes.items():
        minimum["sf_writes" if target == "salesforce" else "hs_writes"] += _pages(records, WRITE_BATCH[target])
    return minimum


def bucket_floor(requests: int, limit: int, window_seconds: float) -> float:
    """Least seconds from the first to the last of `requests` under "at most `limit` in any rolling
    `window_seconds`", a full window's burst allowed at the start: request k (from 0) goes at
    window * floor(k / limit) at the earliest."""
    if requests <= 0:
        return 0.0
    if limit <= 0:
        raise ValueError("a rate limit must allow at least one request")
    return window_seconds * ((requests - 1) // limit)


def hubspot_floor(non_search: int, search: int, *, requests_per_10s: int, search_per_s: int) -> tuple[float, str]:
    """The rate-limit floor of HubSpot calls: the larger of the rolling 10-second bucket (every call but
    search) and the per-second search bucket; returns (seconds, the binding bucket's name)."""
    ten = bucket_floor(non_search, requests_per_10s, 10.0)
    per_second = bucket_floor(search, search_per_s, 1.0)
    return (ten, "10 s") if ten >= per_second else (per_second, "search")


def hubspot_rate_limited(calls: Mapping[str, int]) -> tuple[int, int]:
    """(non-search, search) HubSpot requests from `{"METHOD pattern": requests}`, the unlimited ones left out."""
    search = sum(n for endpoint, n in calls.items() if endpoint.endswith("/search"))
    free = sum(n for endpoint, n in calls.items() if endpoint.endswith(UNLIMITED_HUBSPOT))
    return sum(calls.values()) - search - free, search


def group_calls(rows: Iterable[tuple[str, str, int]]) -> dict[str, int]:
    """Requests per group (fixed included) from (system, endpoint, requests) rows."""
    totals = dict.fromkeys((*GROUPS, FIXED), 0)
    for system, endpoint, requests in rows:
        totals[endpoint_group(system, endpoint)] += requests
    return totals


def _pages(records: int, page: int) -> int:
    return math.ceil(records / page) if records > 0 else 0
