"""The Salesforce hook against behaviours of real orgs that the happy path never shows: the org-wide API
budget shared with other integrations, Bulk API jobs that fail mid-poll, late commits, writes that time out."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from crm_sync.hooks.contacts import ContactWrite, LookupKey
from crm_sync.hooks.errors import TransientError
from crm_sync.hooks.results import RecordResult
from crm_sync.hooks.retry import RetryPolicy
from crm_sync.hooks.salesforce import SalesforceContactsHook
from crm_sync.params import RunParams
from crm_sync.ratelimit import RateLimitWaitTooLong
from crm_sync.window import SyncWindow
from include.sync_logic.sides import Action
from sandbox.testing import SandboxProcess
from tests.integration.conftest import wired_sandbox

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
LINK = "HubSpot_Contact_Id__c"
FIELDS = ["Id", "Email", "LastName", LINK, "SystemModstamp"]
REDIS_DB = 12
INTERVAL = timedelta(minutes=15)


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[SandboxProcess]:
    with wired_sandbox(tmp_path_factory.mktemp("sandbox"), redis_url, REDIS_DB, NOW) as sandbox:
        yield sandbox


@pytest.fixture
def sf(crm: SandboxProcess, clean_redis: str) -> SandboxProcess:
    """The sandbox reset, and a fresh pool (RedisHook reads the db from the `db` extra, not the URL path,
    so the pool lives in the session Redis's db 0, which `clean_redis` empties)."""
    crm.admin("salesforce", "POST", "reset")
    crm.admin("salesforce", "POST", "clock", json={"set": NOW.isoformat()})
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
        assert list(hook.fetch_contacts(LookupKey.OWN_ID, [cid], FIELDS)["Id"]) == [cid]
    assert sf.admin("salesforce", "GET", "stats").json()["total"]["requests"] >= 5

    sf.admin("salesforce", "POST", "api-usage", json={"others": 80_000})  # the 20% reserve is reached
    # Granted from the last count; its header shows the reserve reached.
    hook.fetch_contacts(LookupKey.OWN_ID, [cid], FIELDS)
    with pytest.raises(RateLimitWaitTooLong, match="reserved for other integrations") as stop:
        hook.fetch_contacts(LookupKey.OWN_ID, [cid], FIELDS)
    assert stop.value.wait_seconds > 3600


def _ingest_jobs(hook: SalesforceContactsHook) -> list[dict]:
    return hook.get_conn().restful("jobs/ingest")["records"]


def _write(
    hook: SalesforceContactsHook, action: Action, records: list[ContactWrite], *, bulk: bool = False
) -> list[RecordResult]:
    """Write `records`, referred to as r0, r1, ... by position."""
    return hook.write_contacts(action, records, [f"r{i}" for i in range(len(records))], link_field=LINK, bulk=bulk)


def test_bulk_job_failing_mid_poll_is_polled_again_not_sent_again(sf):
    """5xx and an expired session while a job is InProgress cost a poll; the rows go in one job per batch,
    and the results read are that job's (deletes come back ok, not ENTITY_IS_DELETED from a second job)."""
    (existing,) = _seed(sf, [{"LastName": "Old", "HubSpot_Contact_Id__c": "700"}])
    sf.admin("salesforce", "POST", "bulk", json={"processing_seconds": 0.4, "poll_faults": [503, 401, 500]})
    hook = SalesforceContactsHook(bulk_poll_seconds=0.05, retry_policy=RetryPolicy(attempts=6, base=0.05, cap=0.2))
    records = [ContactWrite(None, {LINK: str(700 + i), "LastName": f"B{i}"}) for i in range(30)]
    records[9] = ContactWrite(None, {LINK: "709", "LastName": None, "Email": "nine@example.com"})
    results = {r.ref: r for r in _write(hook, Action.CREATE, records, bulk=True)}
    assert len(_ingest_jobs(hook)) == 1
    assert hook.reauthentications == 1
    assert results["r0"].ok and results["r0"].target_id == existing and not results["r0"].created
    assert all(results[f"r{i}"].ok and results[f"r{i}"].created for i in range(1, 30) if i != 9)
    assert (results["r9"].ok, results["r9"].error_code) == (False, "REQUIRED_FIELD_MISSING")

    sf.admin("salesforce", "POST", "bulk", json={"poll_faults": [500, 401]})
    ids = [results[f"r{i}"].target_id for i in range(10)]
    deletes = _write(hook, Action.DELETE, [ContactWrite(i) for i in ids if i], bulk=True)
    assert len(_ingest_jobs(hook)) == 2
    assert [r.error_code for r in deletes if not r.ok] == [] and len(deletes) == 9
    stats = sf.admin("salesforce", "GET", "stats").json()
    polls = sum(v["requests"] for k, v in stats.items() if k.startswith("GET") and k.endswith("{job_id}/?"))
    assert polls >= 2 * 2 + 5  # every poll is a counted API call, faulted ones included


def _changed_ids(hook: SalesforceContactsHook, interval_start: datetime, lookback_minutes: int) -> set[str]:
    window = SyncWindow.from_interval(
        interval_start, interval_start + INTERVAL, lookback_minutes=lookback_minutes, full_resync=False
    )
    return {i for frame in hook.iter_changed_contacts(FIELDS, window.start, window.end) for i in frame["Id"]}


def test_a_late_commit_is_found_by_the_next_window_with_the_default_lookback(sf):
    """SystemModstamp is stamped when a transaction starts; a long one commits minutes later. The row then
    carries a stamp inside a window that was already extracted: only the next window's lookback sees it."""
    boundary = NOW
    late, prompt = _seed(
        sf,
        [
            {
                "LastName": "Late",
                "SystemModstamp": (boundary - timedelta(minutes=5)).isoformat(),
                "CommitDelaySeconds": 420,
            },
            {"LastName": "Prompt", "SystemModstamp": (boundary - timedelta(minutes=4)).isoformat()},
        ],
    )
    hook = SalesforceContactsHook()
    lookback = RunParams().lookback_minutes
    sf.admin("salesforce", "POST", "clock", json={"set": (boundary + timedelta(seconds=30)).isoformat()})
    assert _changed_ids(hook, boundary - INTERVAL, lookback) == {prompt}  # `late` is not committed yet
    sf.admin("salesforce", "POST", "clock", json={"set": (boundary + INTERVAL + timedelta(seconds=30)).isoformat()})
    assert late in _changed_ids(hook, boundary, lookback)
    assert late not in _changed_ids(hook, boundary, 2)  # the old 2-minute default lost it


def _upserts(crm: SandboxProcess) -> int:
    stats = crm.admin("salesforce", "GET", "stats").json()
    return sum(row["requests"] for key, row in stats.items() if key.startswith("PATCH") and "composite/sobjects" in key)


def _settled(read: Callable[[], int], seconds: float = 10.0) -> int:
    """`read()` once it has stopped changing (the sandbox finishes requests the client gave up on)."""
    last, deadline = read(), time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = read()
        if now == last:
            return now
        last = now
    return last


def test_an_upsert_that_times_out_or_fails_with_5xx_is_sent_again_without_a_duplicate(sf):
    """Every write of the sync is idempotent (creates upsert on the link), so a read timeout after the request
    went out, or a 5xx, is sent again: the same contact is written, never a second one."""
    hook = SalesforceContactsHook(request_timeout=(5.0, 0.5))
    hook.retry_policy = RetryPolicy(attempts=3, base=0.01, cap=0.05)
    hook.get_conn()
    slow = [ContactWrite(None, {LINK: "42", "LastName": "Slow"})]
    sf.admin("salesforce", "POST", "faults", json={"latency_ms": 1200})
    try:
        with pytest.raises(TransientError, match="ReadTimeout"):
            _write(hook, Action.CREATE, slow)
    finally:
        sf.admin("salesforce", "POST", "faults", json={"latency_ms": 0})
    assert _settled(lambda: _upserts(sf)) == 3
    assert [c["LastName"] for c in sf.admin("salesforce", "GET", "records").json()["contacts"]] == ["Slow"]

    sf.admin("salesforce", "POST", "faults", json={"error_rate_5xx": 1.0})
    try:
        with pytest.raises(TransientError, match="HTTP 50"):
            _write(hook, Action.CREATE, slow)
    finally:
        sf.admin("salesforce", "POST", "faults", json={"error_rate_5xx": 0.0})
    assert _upserts(sf) == 3 + 3
    sf.admin("salesforce", "POST", "faults", json={"burst_429": 2})
    assert _write(hook, Action.CREATE, [ContactWrite(None, {LINK: "42", "LastName": "Upserted"})])[0].ok
    assert [c["LastName"] for c in sf.admin("salesforce", "GET", "records").json()["contacts"]] == ["Upserted"]


def test_one_retry_layer_counts_every_send_once(sf):
    """A transient refusal that never clears is sent `attempts` times in all, not attempts x adapter resends."""
    hook = SalesforceContactsHook(retry_policy=RetryPolicy(attempts=3, base=0.01, cap=0.05))
    hook.get_conn()
    before = sf.admin("salesforce", "GET", "stats").json()["total"]["requests"]
    sf.admin("salesforce", "POST", "faults", json={"burst_429": 50})
    try:
        with pytest.raises(TransientError, match="REQUEST_LIMIT_EXCEEDED"):
            hook.fetch_contacts(LookupKey.OWN_ID, ["003000000000001AAA"], FIELDS)
    finally:
        sf.admin("salesforce", "POST", "faults", json={"burst_429": 0})
    assert sf.admin("salesforce", "GET", "stats").json()["total"]["requests"] - before == 3
