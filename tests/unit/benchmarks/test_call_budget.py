"""benchmarks.call_budget: the theoretical minimum of API calls and the rate-limit floor bench_scale prints."""

from __future__ import annotations

import pytest

from benchmarks.call_budget import (
    FIXED,
    PhaseReads,
    bucket_floor,
    endpoint_group,
    group_calls,
    hubspot_floor,
    hubspot_rate_limited,
    minimum_calls,
)

API = "/services/data/v{version}"


def test_minimum_of_an_initial_window_is_pages_of_the_window_and_batches_per_target_and_action():
    reads = PhaseReads(
        salesforce_window=20_000, salesforce_counterparts=0, hubspot_window=20_000, hubspot_counterparts=0
    )
    writes = {
        ("hubspot", "create"): 18_000,
        ("hubspot", "update"): 2_000,
        ("salesforce", "create"): 18_000,
        ("salesforce", "link"): 18_001,  # one record past a batch: one more call
    }
    assert minimum_calls(reads, writes) == {
        "sf_reads": 10,
        "hs_search": 100,
        "hs_reads": 0,
        "hs_list": 0,
        "sf_writes": 90 + 91,
        "hs_writes": 180 + 20,
    }


def test_minimum_of_an_incremental_window_reads_counterparts_in_batches_and_lists_on_a_full_resync():
    reads = PhaseReads(
        salesforce_window=1000, salesforce_counterparts=800, hubspot_window=1000, hubspot_counterparts=801
    )
    minimum = minimum_calls(reads, {("hubspot", "update"): 1000, ("salesforce", "update"): 1000})
    assert (minimum["sf_reads"], minimum["hs_search"], minimum["hs_reads"]) == (1, 5, 9)
    assert (minimum["sf_writes"], minimum["hs_writes"]) == (5, 10)
    listed = minimum_calls(PhaseReads(20_000, 0, 0, 0, hubspot_listed=20_000), {})
    assert (listed["hs_list"], listed["hs_search"], listed["sf_reads"]) == (200, 0, 10)
    assert set(minimum_calls(PhaseReads(0, 0, 0, 0), {}).values()) == {0}


@pytest.mark.parametrize(
    ("requests", "limit", "window", "floor"),
    [
        (0, 100, 10.0, 0.0),
        (1, 100, 10.0, 0.0),
        (100, 100, 10.0, 0.0),  # one window's burst at the start
        (101, 100, 10.0, 10.0),
        (200, 100, 10.0, 10.0),
        (201, 100, 10.0, 20.0),
        (40_000, 100, 10.0, 3990.0),
        (26, 5, 1.0, 5.0),
    ],
)
def test_bucket_floor(requests, limit, window, floor):
    assert bucket_floor(requests, limit, window) == floor


def test_hubspot_floor_is_the_larger_bucket():
    assert hubspot_floor(350, 20, requests_per_10s=100, search_per_s=5) == (30.0, "10 s")
    assert hubspot_floor(50, 101, requests_per_10s=100, search_per_s=5) == (20.0, "search")
    with pytest.raises(ValueError):
        bucket_floor(1, 0, 10.0)


def test_endpoint_groups_and_rate_limited_calls():
    rows = [
        ("salesforce", "POST /services/oauth2/token", 3),
        ("salesforce", f"GET {API}/sobjects/{{sobject}}/describe/?", 1),
        ("salesforce", f"GET {API}/limits/?", 1),
        ("salesforce", f"GET {API}/{{kind}}/?", 4),
        ("salesforce", f"GET {API}/{{kind}}/{{locator}}/?", 2),
        ("salesforce", f"POST {API}/composite/?", 3),
        ("salesforce", f"POST {API}/jobs/{{kind}}/?", 1),
        ("salesforce", f"GET {API}/jobs/{{kind}}/{{job_id}}/?", 2),
        ("salesforce", f"GET {API}/jobs/query/{{job_id}}/results/?", 4),
        ("salesforce", f"PATCH {API}/composite/sobjects/{{sobject}}/{{field}}/?", 5),
        ("salesforce", f"PATCH {API}/composite/sobjects/?", 6),
        ("hubspot", "POST /oauth/v2/private-apps/get/access-token-info", 1),
        ("hubspot", "GET /crm/v3/properties/contacts/{name}", 1),
        ("hubspot", "POST /crm/v3/objects/contacts/search", 7),
        ("hubspot", "POST /crm/v3/objects/contacts/batch/read", 8),
        ("hubspot", "GET /crm/v3/objects/contacts/{contact_id}", 2),
        ("hubspot", "GET /crm/v3/objects/contacts", 1),
        ("hubspot", "POST /crm/v3/objects/contacts/batch/upsert", 9),
        ("hubspot", "PATCH /crm/v3/objects/contacts/{contact_id}", 3),
    ]
    assert group_calls(rows) == {
        "sf_reads": 13,
        "sf_writes": 11,
        "hs_search": 7,
        "hs_reads": 10,
        "hs_list": 1,
        "hs_writes": 12,
        FIXED: 3 + 1 + 1 + 1 + 2 + 1 + 1,
    }
    assert endpoint_group("salesforce", f"PUT {API}/jobs/ingest/{{job_id}}/batches/?") == "sf_writes"
    hubspot = {endpoint: n for system, endpoint, n in rows if system == "hubspot"}
    assert hubspot_rate_limited(hubspot) == (1 + 8 + 2 + 1 + 9 + 3, 7)
