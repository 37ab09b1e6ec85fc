"""The Salesforce hook against behaviours of real orgs that the happy path never shows: the org-wide API
budget shared with other integrations, Bulk API jobs that fail mid-poll, late commits, writes that time out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from crm_sync.hooks.retry import RetryPolicy
from crm_sync.hooks.salesforce import SalesforceContactsHook
from crm_sync.ratelimit import RateLimitWaitTooLong
from sandbox.testing import SandboxProcess
from tests.integration.conftest import wired_sandbox

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
FIELDS = ["Id", "Email", "LastName", "HubSpot_Contact_Id__c", "SystemModstamp"]
REDIS_DB = 12


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[SandboxProcess]:
    with wired_sandbox(tmp_path_factory.mktemp("sandbox"), redis_url, REDIS_DB, NOW) as sandbox:
        yield sandbox


@pytest.fixture
def sf(crm: SandboxProcess, redis_url: str) -> SandboxProcess:
    crm.admin("salesforce", "POST", "reset")
    crm.admin("salesforce", "POST", "clock", json={"set": NOW.isoformat()})
    redis.Redis.from_url(f"{redis_url.rsplit('/', 1)[0]}/{REDIS_DB}").flushdb()
    return crm


def _seed(crm: SandboxProcess, contacts: list[dict]) -> list[str]:
    result = crm.admin("salesforce", "POST", "seed", json={"contacts": contacts}).json()
    assert not result["rejected"], result["rejected"]
    return result["ids"]


def test_other_integrations_using_most_of_the_budget_leave_the_sync_its_share(sf):
    """The header reports the whole org: 60% used by others is no reason to stop; the reserve is."""
    (cid,) = _seed(sf, [{"LastName": "Budget"}])
    sf.admin("salesforce", "POST", "api-usage", json={"others": 60_000})
    hook = SalesforceContactsHook()
    for _ in range(5):
        assert list(hook.fetch_by_ids([cid], FIELDS)["Id"]) == [cid]
    assert sf.admin("salesforce", "GET", "stats").json()["total"]["requests"] >= 5

    sf.admin("salesforce", "POST", "api-usage", json={"others": 80_000})  # the 20% reserve is reached
    hook.fetch_by_ids([cid], FIELDS)  # granted from the last count; its header shows the reserve reached
    with pytest.raises(RateLimitWaitTooLong, match="reserved for other integrations") as stop:
        hook.fetch_by_ids([cid], FIELDS)
    assert stop.value.wait_seconds > 3600


def _ingest_jobs(hook: SalesforceContactsHook) -> list[dict]:
    return hook.get_conn().restful("jobs/ingest")["records"]


def test_bulk_job_failing_mid_poll_is_polled_again_not_sent_again(sf):
    """5xx and an expired session while a job is InProgress cost a poll; the rows go in one job per batch,
    and the results read are that job's (deletes come back ok, not ENTITY_IS_DELETED from a second job)."""
    (existing,) = _seed(sf, [{"LastName": "Old", "HubSpot_Contact_Id__c": "700"}])
    sf.admin("salesforce", "POST", "bulk", json={"processing_seconds": 0.4, "poll_faults": [503, 401, 500]})
    hook = SalesforceContactsHook(bulk_poll_seconds=0.05, retry_policy=RetryPolicy(attempts=6, base=0.05, cap=0.2))
    records = [{"HubSpot_Contact_Id__c": str(700 + i), "LastName": f"B{i}"} for i in range(30)]
    records[9] = {"HubSpot_Contact_Id__c": "709", "LastName": None, "Email": "nine@example.com"}
    results = {r.ref: r for r in hook.bulk_write("upsert", records, refs=[f"r{i}" for i in range(30)])}
    assert len(_ingest_jobs(hook)) == 1
    assert hook.reauthentications == 1
    assert results["r0"].ok and results["r0"].target_id == existing and not results["r0"].created
    assert all(results[f"r{i}"].ok and results[f"r{i}"].created for i in range(1, 30) if i != 9)
    assert (results["r9"].ok, results["r9"].error_code) == (False, "REQUIRED_FIELD_MISSING")

    sf.admin("salesforce", "POST", "bulk", json={"poll_faults": [500, 401]})
    ids = [results[f"r{i}"].target_id for i in range(10)]
    deletes = hook.bulk_write("delete", [{"Id": i} for i in ids if i])
    assert len(_ingest_jobs(hook)) == 2
    assert [r.error_code for r in deletes if not r.ok] == [] and len(deletes) == 9
    stats = sf.admin("salesforce", "GET", "stats").json()
    polls = sum(v["requests"] for k, v in stats.items() if k.startswith("GET") and k.endswith("{job_id}/?"))
    assert polls >= 2 * 2 + 5  # every poll is a counted API call, faulted ones included
