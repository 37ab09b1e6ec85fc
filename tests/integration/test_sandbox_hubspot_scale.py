"""The HubSpot sandbox holds 200k generated contacts and still answers a sync's calls quickly."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
)

from sandbox.testing import start_sandbox

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CONTACTS = 200_000


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    proc = start_sandbox(
        tmp_path_factory.mktemp("hubspot-scale"),
        timeout=180,
        no_salesforce=True,
        contacts=CONTACTS,
        seed=5,
        window_minutes=60,
        clock=NOW.isoformat(),
        freeze_clock=True,
        hubspot_requests_per_10s=100_000,
        hubspot_search_requests_per_s=100_000,
    )
    yield proc
    proc.stop()


def test_window_search_batch_read_and_upsert_at_200k(big):
    hs = HubSpot(access_token=big.hubspot_token, host=big.hubspot_url)
    low = int((NOW - timedelta(minutes=15)).timestamp() * 1000)
    request = PublicObjectSearchRequest(
        filter_groups=[
            {
                "filters": [
                    {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(low)},
                    {"propertyName": "lastmodifieddate", "operator": "LT", "value": str(low + 15 * 60_000)},
                ]
            }
        ],
        sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        properties=["email", "firstname", "lastname", "lastmodifieddate"],
        limit=200,
    )
    started = time.perf_counter()
    first = hs.crm.contacts.search_api.do_search(request)
    first_page = time.perf_counter() - started
    assert 40_000 < first.total < 60_000  # a quarter of the hour-long spread
    stamps = [r.properties["lastmodifieddate"] for r in first.results]
    assert stamps == sorted(stamps)
    request.after = first.paging.next.after
    started = time.perf_counter()
    hs.crm.contacts.search_api.do_search(request)
    next_page = time.perf_counter() - started
    assert first_page < 2.0, f"first window page took {first_page:.2f}s"
    assert next_page < 0.2, f"a cached next page took {next_page:.2f}s"

    emails = [r.properties["email"] for r in first.results[:100] if r.properties["email"]]
    started = time.perf_counter()
    read = hs.crm.contacts.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": e} for e in emails], id_property="email", properties=["email"], properties_with_history=[]
        )
    )
    assert len(read.results) == len(emails)
    upsert = hs.crm.contacts.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                {"id": f"003{i:015d}", "idProperty": "salesforce_contact_id", "properties": {"lastname": "S"}}
                for i in range(100)
            ]
        )
    )
    assert all(r.new for r in upsert.results)
    assert time.perf_counter() - started < 1.0
