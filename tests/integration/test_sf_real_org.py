"""The Salesforce hook against behaviours of real orgs that the happy path never shows: the org-wide API
budget shared with other integrations, Bulk API jobs that fail mid-poll, late commits, writes that time out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

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
