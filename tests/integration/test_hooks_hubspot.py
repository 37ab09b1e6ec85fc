"""The HubSpot hook against the HTTP sandbox: batch writes with per-record results (207, 409, atomic
batches), look-ups, archived contacts and throttling, through hubspot-api-client and the Redis pool."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import redis

from crm_sync.hooks.contacts import ContactWrite, LookupKey
from crm_sync.hooks.hs_errors import HubSpotError
from crm_sync.hooks.hubspot import HubSpotContactsHook
from crm_sync.hooks.retry import RetryPolicy
from include.sync_logic.sides import Action
from sandbox.testing import SandboxProcess
from tests.integration.conftest import crm_env, wired_sandbox

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
LINK = "salesforce_contact_id"
PROPS = ["email", "firstname", "lastname", "company", LINK]


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[SandboxProcess]:
    with wired_sandbox(tmp_path_factory.mktemp("sandbox"), redis_url, 5, NOW) as sandbox:
        yield sandbox


@pytest.fixture(params=["multi-status", "atomic"])
def hs(crm: SandboxProcess, request: pytest.FixtureRequest) -> SandboxProcess:
    """HubSpot either answers 207 with per-input errors, or rejects a whole batch for one bad input."""
    _fresh_pool()
    crm.admin("hubspot", "POST", "reset")
    crm.admin("hubspot", "POST", "settings", json={"batch_mode": request.param, "retry_after_header": False})
    return crm


@pytest.fixture
def hs_plain(crm: SandboxProcess) -> SandboxProcess:
    _fresh_pool()
    crm.admin("hubspot", "POST", "reset")
    crm.admin("hubspot", "POST", "settings", json={"batch_mode": "multi-status", "retry_after_header": False})
    return crm


def _fresh_pool() -> None:
    """Each test starts with an empty pool: no pause or count left over from the test before."""
    redis.Redis.from_url(os.environ["AIRFLOW_CONN_REDIS_DEFAULT"]).flushdb()


def _seed(crm: SandboxProcess, contacts: list[dict]) -> list[str]:
    result = crm.admin("hubspot", "POST", "seed", json={"contacts": [{"properties": c} for c in contacts]}).json()
    assert not result["rejected"], result["rejected"]
    return result["ids"]


def _contacts(crm: SandboxProcess) -> list[dict]:
    return crm.admin("hubspot", "GET", "records").json()["contacts"]


def _write(hook: HubSpotContactsHook, action: Action, records: list[ContactWrite], link: str = LINK) -> list:
    """Write `records`, each referred to by its position."""
    return hook.write_contacts(action, records, [str(i) for i in range(len(records))], link_field=link)


def _creates(fields: list[dict]) -> list[ContactWrite]:
    return [ContactWrite(None, item) for item in fields]


def test_creates_report_taken_emails_with_the_existing_id_and_bad_values_per_record(hs):
    (existing,) = _seed(hs, [{"email": "taken@example.com", "lastname": "Taken", LINK: "003OLD"}])
    hook = HubSpotContactsHook()
    results = _write(
        hook,
        Action.CREATE,
        _creates(
            [
                {LINK: "003A", "email": "fresh1@example.com", "lastname": "One"},
                {LINK: "003B", "email": "TAKEN@example.com", "lastname": "Dup"},
                {LINK: "003C", "email": "fresh2@example.com", "lastname": "Two"},
                {LINK: "003D", "email": "not an email", "lastname": "Bad"},
            ]
        ),
    )
    assert [r.ref for r in results] == ["0", "1", "2", "3"]
    assert results[0].ok and results[0].created and results[2].ok
    assert (results[1].ok, results[1].error_code, results[1].existing_id) == (False, "CONFLICT", existing)
    assert "Existing ID" in results[1].message  # its holder is linked elsewhere: not linked to it
    assert (results[3].ok, results[3].error_code) == (False, "VALIDATION_ERROR")
    assert len(_contacts(hs)) == 3  # nothing created twice, nothing bad created


def test_creates_upsert_on_the_link_idempotently_and_report_new_or_updated(hs):
    (existing,) = _seed(hs, [{"email": "a@example.com", LINK: "003A"}])
    hook = HubSpotContactsHook()
    records = _creates(
        [
            {LINK: "003A", "lastname": "Updated"},
            {LINK: "003B", "email": "b@example.com", "lastname": "New"},
            {LINK: "003C", "email": "a@example.com", "lastname": "Clash"},  # email taken
        ]
    )
    first = _write(hook, Action.CREATE, records)
    assert first[0].ok and first[0].target_id == existing and not first[0].created
    assert first[1].ok and first[1].created
    assert not first[2].ok and first[2].error_code == "CONFLICT" and first[2].existing_id == existing
    second = _write(hook, Action.CREATE, records[:2])
    assert [r.target_id for r in second] == [existing, first[1].target_id]
    assert not any(r.created for r in second)
    by_email = _write(hook, Action.CREATE, _creates([{"email": "b@example.com", "firstname": "Bee"}]), link="email")
    assert by_email[0].ok and by_email[0].target_id == first[1].target_id
    assert len(_contacts(hs)) == 2
    with pytest.raises(ValueError, match="bulk"):
        hook.write_contacts(Action.CREATE, records, ["a", "b", "c"], link_field=LINK, bulk=True)


def test_update_and_archive_per_record(hs):
    ids = _seed(hs, [{"email": "u1@example.com"}, {"email": "u2@example.com"}])
    hook = HubSpotContactsHook()
    results = _write(
        hook,
        Action.UPDATE,
        [
            ContactWrite(ids[0], {"firstname": "Ann"}),
            ContactWrite("999999", {"firstname": "Ghost"}),
            ContactWrite(ids[1], {"email": "broken"}),
        ],
    )
    assert results[0].ok and results[0].target_id == ids[0]
    assert (results[1].ok, results[1].error_code) == (False, "OBJECT_NOT_FOUND")
    assert (results[2].ok, results[2].error_code) == (False, "VALIDATION_ERROR")
    archived = _write(hook, Action.DELETE, [ContactWrite(ids[1])])
    assert archived[0].ok
    window = (NOW - timedelta(minutes=1), NOW + timedelta(minutes=1))
    frame = pd.concat(list(hook.iter_changed_contacts(PROPS, *window, include_deleted=True)))
    assert list(frame.loc[frame["archived"], "id"]) == [ids[1]]  # the archived follow the search's live ones
    everyone = pd.concat(list(hook.iter_all_contacts(PROPS, include_deleted=True)))
    assert everyone.set_index("id")["archived"].to_dict() == {ids[0]: False, ids[1]: True}
    both = hook.fetch_contacts(LookupKey.OWN_ID, [*ids, "123456789"], PROPS, include_deleted=True)
    assert both.set_index("id")["archived"].to_dict() == {ids[0]: False, ids[1]: True}


def test_fetch_by_ids_emails_and_link_with_awkward_values(hs_plain):
    contacts = [
        {"email": "o'brien@example.com", "lastname": "O'Brien", "company": 'Quote"d \\ Co'},
        {"email": "zoe@example.com", "firstname": "Zoë", "lastname": "Ñandú 漢字"},
    ]
    ids = _seed(hs_plain, contacts)
    hook = HubSpotContactsHook()
    by_email = hook.fetch_contacts(
        LookupKey.EMAIL, ["O'Brien@Example.com", "zoe@example.com", "missing'\\@example.com"], PROPS
    )
    assert sorted(by_email["id"]) == sorted(ids)
    assert by_email.set_index("id").loc[ids[0], "company"] == 'Quote"d \\ Co'
    by_id = hook.fetch_contacts(LookupKey.OWN_ID, [*ids, "123456789"], PROPS)
    assert by_id.set_index("id").loc[ids[1], "lastname"] == "Ñandú 漢字"
    many = _seed(hs_plain, [{"email": f"m{i}@example.com", LINK: f"003M{i}"} for i in range(250)])
    assert len(hook.fetch_contacts(LookupKey.OWN_ID, many, PROPS)) == 250  # three batch calls of <= 100
    linked = hook.fetch_contacts(LookupKey.COUNTERPART_ID, ["003M7", "003NONE"], PROPS, link_field=LINK)
    assert list(linked["lookup_key"]) == ["003M7"] and list(linked["email"]) == ["m7@example.com"]


def test_list_api_reads_everything_for_a_full_resync(hs_plain):
    ids = _seed(hs_plain, [{"email": f"l{i}@example.com"} for i in range(230)])
    hook = HubSpotContactsHook(chunk_rows=150)
    frames = list(hook.iter_all_contacts(PROPS))
    assert [len(f) for f in frames] == [150, 80]
    assert hook.api_calls == 3  # 100 a page
    assert set(pd.concat(frames)["id"]) == set(ids)


def test_count_and_call_estimates_match_the_calls_made(hs_plain):
    ids = _seed(hs_plain, [{"email": f"e{i}@example.com"} for i in range(230)])
    hook = HubSpotContactsHook()
    assert hook.count_contacts() == 230 and hook.api_calls == 1
    assert hook.lookup_calls(LookupKey.OWN_ID, ids, PROPS) == 3 and hook.lookup_calls(LookupKey.EMAIL, [], PROPS) == 0
    hook.fetch_contacts(LookupKey.OWN_ID, ids, PROPS)
    assert hook.api_calls == 1 + 3
    list(hook.iter_all_contacts(PROPS))
    assert hook.api_calls == 1 + 3 + hook.whole_read_calls(230) == 1 + 3 + 3


def test_429_with_retry_after_pauses_the_whole_pool(hs_plain):
    ids = _seed(hs_plain, [{"email": f"r{i}@example.com"} for i in range(20)])
    hs_plain.admin("hubspot", "POST", "settings", json={"retry_after_header": True})
    hook = HubSpotContactsHook(retry_policy=RetryPolicy(attempts=8, base=0.05, cap=1.0))
    other_worker = HubSpotContactsHook()  # same connection, so the same Redis pool
    hs_plain.admin("hubspot", "POST", "faults", json={"burst_429": 3})
    began = time.monotonic()
    assert len(hook.fetch_contacts(LookupKey.OWN_ID, ids, PROPS)) == 20
    assert time.monotonic() - began >= 3 * 0.95  # Retry-After: 1, three times
    assert hook.rate_limit_pool.stats.throttled_responses == 3
    hook.rate_limit_pool.pause_for(1.0, "test: a 429 seen by one worker")
    began = time.monotonic()
    other_worker.fetch_contacts(LookupKey.OWN_ID, ids[:1], PROPS)
    assert time.monotonic() - began >= 0.9  # the pause held the other worker too


@pytest.mark.slow
def test_429_without_retry_after_waits_out_the_ten_second_window(hs_plain):
    (cid,) = _seed(hs_plain, [{"email": "w@example.com"}])
    hook = HubSpotContactsHook(retry_policy=RetryPolicy(attempts=4, base=0.05, cap=0.5))
    hs_plain.admin("hubspot", "POST", "faults", json={"burst_429": 1})
    began = time.monotonic()
    assert list(hook.fetch_contacts(LookupKey.OWN_ID, [cid], PROPS)["id"]) == [cid]
    assert time.monotonic() - began >= 9.5
    assert hook.api_calls == 2


@pytest.mark.slow
def test_a_smaller_server_limit_is_survived(sandbox_factory, redis_url, monkeypatch):
    """The pool is sized for 100/10 s but the account allows 8: the X-HubSpot-RateLimit-* headers (and
    429s, should one slip through) slow the pool down; every call still completes."""
    own = sandbox_factory(no_salesforce=True, hubspot_requests_per_10s=8)
    redis_db = redis_url.rsplit("/", 1)[0] + "/6"
    redis.Redis.from_url(redis_db).flushdb()
    for key, value in crm_env(own, redis_db).items():
        monkeypatch.setenv(key, value)
    conn = json.loads(own.env["AIRFLOW_CONN_HUBSPOT_DEFAULT"])
    conn["extra"]["requests_per_10s"] = 100  # the pool believes the account allows 100
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", json.dumps(conn))
    ids = _seed(own, [{"email": f"s{i}@example.com"} for i in range(5)])
    hook = HubSpotContactsHook(retry_policy=RetryPolicy(attempts=6, base=0.1, cap=1.0))
    assert hook.rate_limit_pool.limits[0].limit == 100
    for _ in range(12):
        assert len(hook.fetch_contacts(LookupKey.OWN_ID, ids, PROPS)) == 5
    stats = own.admin("hubspot", "GET", "stats").json()["total"]
    assert stats["requests"] - stats["429"] == 12
    assert stats["429"] <= 2


def test_server_errors_and_dropped_connections_are_retried(hs_plain):
    ids = _seed(hs_plain, [{"email": f"e{i}@example.com"} for i in range(50)])
    hook = HubSpotContactsHook(retry_policy=RetryPolicy(attempts=10, base=0.02, cap=0.2))
    hs_plain.admin("hubspot", "POST", "faults", json={"error_rate_5xx": 0.3, "drop_rate": 0.2, "seed": 3})
    try:
        for _ in range(5):
            assert len(hook.fetch_contacts(LookupKey.OWN_ID, ids, PROPS)) == 50
        results = _write(
            hook, Action.CREATE, _creates([{LINK: f"003X{i}", "email": f"x{i}@example.com"} for i in range(30)])
        )
        assert all(r.ok for r in results)
    finally:
        hs_plain.admin("hubspot", "POST", "faults", json={"error_rate_5xx": 0.0, "drop_rate": 0.0})
    stats = hs_plain.admin("hubspot", "GET", "stats").json()["total"]
    assert stats["5xx"] > 0
    assert len(_contacts(hs_plain)) == 80  # retried upserts created no duplicates


def test_permanent_errors_raise_with_hubspots_category(hs_plain):
    hook = HubSpotContactsHook()
    with pytest.raises(HubSpotError) as err:
        hook._search(
            {"filterGroups": [{"filters": [{"propertyName": "no_such_prop", "operator": "EQ", "value": "1"}]}]}
        )
    assert err.value.status == 400 and err.value.code == "VALIDATION_ERROR"
    assert hook.api_calls == 1


def test_spent_daily_limit_fails_at_once(hs_plain):
    hook = HubSpotContactsHook()
    hs_plain.admin("hubspot", "POST", "limits", json={"daily": 0})
    try:
        with pytest.raises(HubSpotError) as err:
            hook.fetch_contacts(LookupKey.OWN_ID, ["1"], PROPS)
    finally:
        hs_plain.admin("hubspot", "POST", "limits", json={"daily": 500_000})
    assert err.value.status == 429 and hook.api_calls == 1
