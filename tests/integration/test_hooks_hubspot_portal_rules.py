"""The HubSpot hook against the rules of a real portal (issue 9), through hubspot-api-client and the sandbox:
errors that are not about one record fail the call instead of becoming rejects, one retry layer, search-index
lag, secondary emails, a renamed link property, the link-property and scope preflight, no resent creates."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis
import requests
from airflow.sdk import DAG, ObjectStoragePath

from crm_sync.hooks.contacts import ContactWrite, LookupKey
from crm_sync.hooks.errors import TransientError
from crm_sync.hooks.hs_errors import HubSpotDailyLimitReached, HubSpotError
from crm_sync.hooks.hubspot import HubSpotContactsHook
from crm_sync.hooks.results import RecordResult
from crm_sync.hooks.retry import RetryPolicy
from crm_sync.operators.base import PROJECT_ROOT
from crm_sync.operators.load import LoadContactsOperator
from crm_sync.staging import write_frame
from crm_sync.window import SyncWindow
from include.sync_logic.sides import Action, Side
from sandbox.testing import SandboxProcess
from tests.integration.conftest import wired_sandbox
from tests.task_context import FIRST_TRY

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LINK = "salesforce_contact_id"
PROPS = ["email", "firstname", "lastname", LINK]
FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05)


def hubspot_env(sandbox: SandboxProcess, redis_db: str) -> dict[str, str]:
    """The connections the HubSpot hook reads: the sandbox and a Redis db for its pool."""
    return {
        "AIRFLOW_CONN_HUBSPOT_DEFAULT": sandbox.env["AIRFLOW_CONN_HUBSPOT_DEFAULT"],
        "AIRFLOW_CONN_REDIS_DEFAULT": redis_db,
    }


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[SandboxProcess]:
    """A HubSpot-only sandbox on a frozen clock, wired as `hubspot_default` with its own Redis db."""
    with wired_sandbox(tmp_path_factory.mktemp("portal"), redis_url, 7, NOW, no_salesforce=True) as sandbox:
        yield sandbox


@pytest.fixture
def hs(portal: SandboxProcess) -> SandboxProcess:
    """Fresh data, pool, limits and settings for each test."""
    redis.Redis.from_url(os.environ["AIRFLOW_CONN_REDIS_DEFAULT"]).flushdb()
    portal.admin("hubspot", "POST", "reset")
    portal.admin("hubspot", "POST", "limits", json={"daily": 500_000})
    portal.admin(
        "hubspot",
        "POST",
        "settings",
        json={
            "batch_mode": "multi-status",
            "retry_after_header": False,
            "scopes": [
                "crm.objects.contacts.read",
                "crm.objects.contacts.write",
                "crm.schemas.contacts.read",
                "crm.schemas.contacts.write",
            ],
            "search_index_delay_seconds": 0,
        },
    )
    return portal


def _stats(sandbox: SandboxProcess) -> dict[str, Any]:
    return sandbox.admin("hubspot", "GET", "stats").json()["total"]


def _contacts(sandbox: SandboxProcess) -> list[dict]:
    return sandbox.admin("hubspot", "GET", "records").json()["contacts"]


def _upserts(n: int, link: str = LINK, **extra: str) -> list[ContactWrite]:
    """Creates of `n` contacts, each upserted on `link`."""
    return [ContactWrite(None, {link: f"003U{i:04d}", "email": f"u{i}@example.com", **extra}) for i in range(n)]


def _upsert(hook: HubSpotContactsHook, records: list[ContactWrite], link: str = LINK) -> list[RecordResult]:
    return hook.write_contacts(Action.CREATE, records, [str(i) for i in range(len(records))], link_field=link)


def _api(sandbox: SandboxProcess, method: str, path: str, body: Any = None) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False
        return session.request(
            method,
            f"{sandbox.hubspot_url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {sandbox.hubspot_token}"},
        )


# -- item 3: errors that are not about one record -------------------------------------------------------


@pytest.mark.parametrize("mode", ["multi-status", "atomic"])
def test_a_spent_daily_limit_fails_the_batch_once_and_says_when_it_resets(hs, mode):
    hs.admin("hubspot", "POST", "settings", json={"batch_mode": mode})
    hs.admin("hubspot", "POST", "limits", json={"daily": 0})
    hook = HubSpotContactsHook(retry_policy=FAST)
    with pytest.raises(HubSpotDailyLimitReached, match="daily") as err:
        _upsert(hook, _upserts(100))
    assert "resets" in str(err.value)
    assert hook.api_calls == 1 and _stats(hs)["requests"] == 1  # not halved down to 199 calls
    assert _contacts(hs) == []


@pytest.mark.parametrize(
    "case",
    ["non-unique idProperty", "property that does not exist", "missing write scope"],
)
@pytest.mark.parametrize("mode", ["multi-status", "atomic"])
def test_configuration_errors_fail_the_call_with_the_fix_instead_of_rejecting_every_record(
    hs, sandbox_factory, redis_url, monkeypatch, case, mode
):
    sandbox, inputs, expect = hs, _upserts(100), ""
    if case == "non-unique idProperty":
        # A portal whose link property was created without "Require unique values".
        sandbox = sandbox_factory(no_salesforce=True, hubspot_link_property="")
        for key, value in hubspot_env(sandbox, f"{redis_url.rsplit('/', 1)[0]}/8").items():
            monkeypatch.setenv(key, value)
        created = _api(
            sandbox,
            "POST",
            "/crm/v3/properties/contacts",
            {"name": LINK, "label": "SF id", "type": "string", "fieldType": "text", "groupName": "contactinformation"},
        )
        assert created.status_code == 201
        expect = "not a unique property"
    elif case == "property that does not exist":
        inputs = _upserts(100, no_such_property="x")
        expect = "PROPERTY_DOESNT_EXIST no_such_property"
    else:
        hs.admin("hubspot", "POST", "settings", json={"scopes": ["crm.objects.contacts.read"]})
        expect = "crm.objects.contacts.write"
    sandbox.admin("hubspot", "POST", "settings", json={"batch_mode": mode})
    hook = HubSpotContactsHook(retry_policy=FAST)
    with pytest.raises(HubSpotError, match=expect):
        _upsert(hook, inputs)
    assert hook.api_calls == 1
    assert _contacts(sandbox) == []


def test_a_tls_failure_fails_the_call_once(hs, monkeypatch):
    conn = json.loads(hs.env["AIRFLOW_CONN_HUBSPOT_DEFAULT"])
    conn["host"] = hs.hubspot_url.replace("http://", "https://")  # TLS to a plain-HTTP port: handshake fails
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_TLS", json.dumps(conn))
    hook = HubSpotContactsHook("hubspot_tls", retry_policy=FAST)
    with pytest.raises(HubSpotError) as err:
        _upsert(hook, _upserts(100))
    assert err.value.status == 0 and hook.api_calls == 1


def test_record_level_errors_still_become_rejects_of_those_records_only(hs):
    hs.admin("hubspot", "POST", "settings", json={"batch_mode": "atomic"})
    inputs = _upserts(8)
    inputs[5] = ContactWrite(None, {**inputs[5].fields, "email": "not an email"})
    results = _upsert(HubSpotContactsHook(retry_policy=FAST), inputs)
    assert [r.ok for r in results] == [True] * 5 + [False] + [True] * 2
    assert results[5].error_code == "VALIDATION_ERROR"


def test_a_load_task_stages_no_results_for_a_batch_that_got_no_final_answer(hs, tmp_path, monkeypatch):
    """A 429 DAILY mid-load fails the task; its retry (limit reset) sends the batch instead of skipping it."""
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__STAGING_BASE", f"file://{tmp_path}")
    payloads = [{LINK: f"003L{i}", "email": f"l{i}@example.com", "lastname": "L"} for i in range(3)]
    batch = write_frame(
        ObjectStoragePath(f"file://{tmp_path}/batches/hubspot-create-00000.parquet"),
        pd.DataFrame(
            {"source_id": [p[LINK] for p in payloads], "target_id": [None] * 3, "payload": map(json.dumps, payloads)}
        ),
    )
    with DAG("crm_contact_sync", schedule=None):
        task = LoadContactsOperator(
            task_id="load_hubspot",
            side=Side.HUBSPOT,
            hubspot_conn_id="hubspot_default",
            redis_conn_id="redis_default",
            mapping_path="include/mappings/contacts.yaml",
            shard=[{"url": batch, "action": "create", "api": "hubspot_batch"}],
        )
    context = {"params": {"dry_run": False}, "run_id": "manual__daily", "dag_run": FIRST_TRY}
    hs.admin("hubspot", "POST", "limits", json={"daily": 0})
    with pytest.raises(HubSpotDailyLimitReached):
        task.execute(context)
    assert not list(Path(tmp_path).rglob("results/*.parquet"))
    hs.admin("hubspot", "POST", "limits", json={"daily": 500_000})
    totals = task.execute(context)
    assert (totals["batches"], totals["ok"], totals["rejected"]) == (1, 3, 0)
    assert len(_contacts(hs)) == 3


# -- item 2: one retry layer ---------------------------------------------------------------------------


def test_a_429_is_sent_once_per_attempt_and_counted_once(hs):
    hs.admin("hubspot", "POST", "settings", json={"retry_after_header": True})
    hs.admin("hubspot", "POST", "faults", json={"burst_429": 50})
    hook = HubSpotContactsHook(retry_policy=RetryPolicy(attempts=3, base=0.01, cap=0.05))
    try:
        with pytest.raises(TransientError):
            _upsert(hook, _upserts(10))
    finally:
        hs.admin("hubspot", "POST", "faults", json={"burst_429": 0})
    stats = _stats(hs)
    assert hook.api_calls == 3 and stats["requests"] == 3 and stats["429"] == 3
    assert hook.rate_limit_pool.stats.throttled_responses == 3


def _wire(sandbox: SandboxProcess, redis_url: str, monkeypatch: pytest.MonkeyPatch, db: int = 8) -> None:
    """Make `sandbox` the `hubspot_default` connection, on a fresh Redis db."""
    redis_db = f"{redis_url.rsplit('/', 1)[0]}/{db}"
    redis.Redis.from_url(redis_db).flushdb()
    for key, value in hubspot_env(sandbox, redis_db).items():
        monkeypatch.setenv(key, value)


# -- item 5: secondary emails --------------------------------------------------------------------------


def test_email_look_ups_map_a_secondary_email_back_to_the_email_asked(hs):
    seeded = hs.admin(
        "hubspot",
        "POST",
        "seed",
        json={
            "contacts": [
                {
                    "properties": {
                        "email": "primary@example.com",
                        "hs_additional_emails": "old@example.com;Alias@Example.com",
                    }
                },
                {"properties": {"email": "b@example.com"}},
            ]
        },
    ).json()
    first, second = seeded["ids"]
    hook = HubSpotContactsHook(retry_policy=FAST)
    frame = hook.fetch_contacts(LookupKey.EMAIL, ["alias@example.com", "B@example.com", "nobody@example.com"], PROPS)
    assert dict(zip(frame["lookup_key"], frame["id"], strict=True)) == {
        "alias@example.com": first,
        "B@example.com": second,
    }
    assert frame.set_index("lookup_key").loc["alias@example.com", "email"] == "primary@example.com"
    assert "hs_additional_emails" not in frame.columns  # asked for the mapping, not returned to it
    found = hook._search(
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": "OLD@example.com"}]}]}
    )
    assert [row["id"] for row in found["results"]] == [first]
    clash = _upsert(hook, [ContactWrite(None, {LINK: "003S", "email": "old@example.com"})])
    assert (clash[0].ok, clash[0].error_code, clash[0].existing_id) == (False, "CONFLICT", first)


# -- item 6: the link property comes from the mapping ----------------------------------------------------


def test_a_renamed_link_property_carries_upserts_look_ups_and_the_load_task(
    sandbox_factory, redis_url, monkeypatch, tmp_path
):
    renamed = "sf_link_id"
    sandbox = sandbox_factory(no_salesforce=True, hubspot_link_property=renamed)
    _wire(sandbox, redis_url, monkeypatch)
    hook = HubSpotContactsHook(retry_policy=FAST)
    inputs = _upserts(3, link=renamed)
    first = _upsert(hook, inputs, renamed)
    assert all(r.ok and r.created for r in first)
    again = _upsert(hook, inputs, renamed)
    assert [r.target_id for r in again] == [r.target_id for r in first] and not any(r.created for r in again)
    frame = hook.fetch_contacts(
        LookupKey.COUNTERPART_ID, ["003U0000", "003U0002", "003NONE"], ["email", renamed], link_field=renamed
    )
    assert sorted(frame["lookup_key"]) == ["003U0000", "003U0002"]
    with pytest.raises(HubSpotError, match="not a unique property"):
        _upsert(hook, _upserts(1))  # the default name is no unique property in this portal

    mapping = tmp_path / "renamed.yaml"
    default = (PROJECT_ROOT / "include/mappings/contacts.yaml").read_text()
    mapping.write_text(default.replace("hubspot: salesforce_contact_id", f"hubspot: {renamed}"))
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__STAGING_BASE", f"file://{tmp_path}")
    payload = {renamed: "003R1", "email": "r1@example.com", "lastname": "R"}
    batch = write_frame(
        ObjectStoragePath(f"file://{tmp_path}/batches/hubspot-create-00000.parquet"),
        pd.DataFrame({"source_id": ["003R1"], "target_id": [None], "payload": [json.dumps(payload)]}),
    )
    with DAG("crm_contact_sync", schedule=None):
        task = LoadContactsOperator(
            task_id="load_hubspot",
            side=Side.HUBSPOT,
            hubspot_conn_id="hubspot_default",
            redis_conn_id="redis_default",
            mapping_path=str(mapping),
            shard=[{"url": batch, "action": "create", "api": "hubspot_batch"}],
        )
    assert task.execute({"params": {"dry_run": False}, "run_id": "manual__renamed", "dag_run": FIRST_TRY})["ok"] == 1
    stored = [c["properties"] for c in _contacts(sandbox) if c["properties"].get("email") == "r1@example.com"]
    assert stored and stored[0][renamed] == "003R1"


# -- item 7: preflight -----------------------------------------------------------------------------------


def test_token_scope_problems_read_the_private_app_tokens_scopes(hs):
    hook = HubSpotContactsHook(retry_policy=FAST)
    required = {"crm.objects.contacts.read", "crm.objects.contacts.write", "crm.schemas.contacts.read"}
    assert hook.token_scope_problems(required) == [] and hook.preflight(LINK, writes=True) == []
    hs.admin("hubspot", "POST", "settings", json={"scopes": ["crm.objects.contacts.read"]})
    problems = hook.token_scope_problems(required)
    assert len(problems) == 2
    assert "crm.objects.contacts.write" in problems[0] and "Private Apps" in problems[0]
    assert "crm.schemas.contacts.read" in problems[1]


def test_ensure_link_property_accepts_creates_or_explains(hs, sandbox_factory, redis_url, monkeypatch):
    assert HubSpotContactsHook(retry_policy=FAST).ensure_link_property(LINK) == []  # exists, unique

    bare = sandbox_factory(no_salesforce=True, hubspot_link_property="")
    _wire(bare, redis_url, monkeypatch)
    hook = HubSpotContactsHook(retry_policy=FAST)
    bare.admin(
        "hubspot", "POST", "settings", json={"scopes": ["crm.objects.contacts.read", "crm.schemas.contacts.read"]}
    )
    (problem,) = hook.ensure_link_property(LINK)
    assert "Require unique values" in problem and "crm.schemas.contacts.write" in problem
    bare.admin(
        "hubspot",
        "POST",
        "settings",
        json={"scopes": ["crm.objects.contacts.read", "crm.schemas.contacts.read", "crm.schemas.contacts.write"]},
    )
    assert hook.ensure_link_property(LINK) == []
    created = _api(bare, "GET", f"/crm/v3/properties/contacts/{LINK}").json()
    assert created["hasUniqueValue"] is True
    assert hook.ensure_link_property(LINK) == []  # now found, not created twice

    _api(
        bare,
        "POST",
        "/crm/v3/properties/contacts",
        {
            "name": "plain_key",
            "label": "Plain",
            "type": "string",
            "fieldType": "text",
            "groupName": "contactinformation",
        },
    )
    (problem,) = hook.ensure_link_property("plain_key")
    assert "does not require unique values" in problem and "link.hubspot" in problem


# -- item 4: the search index trails writes --------------------------------------------------------------


def _window_ids(hook: HubSpotContactsHook, interval_start: datetime, lookback: int) -> set[str]:
    window = SyncWindow.from_interval(
        interval_start, interval_start + timedelta(minutes=15), lookback_minutes=lookback, full_resync=False
    )
    return {cid for frame in hook.iter_changed_contacts(PROPS, window.start, window.end) for cid in frame["id"]}


@pytest.mark.parametrize(("lookback", "found"), [(10, True), (2, False)])
def test_a_write_indexed_after_its_window_was_read_is_found_by_the_next_window(hs, lookback, found):
    """Search sees a write 4 minutes late (HubSpot under load); GET and batch read see it at once. The DAG's
    default lookback (10 minutes) brings it in the next window; the old 2 minutes lose it."""
    hs.admin("hubspot", "POST", "settings", json={"search_index_delay_seconds": 240})
    hook = HubSpotContactsHook(retry_policy=FAST)
    first, second = NOW, NOW + timedelta(minutes=15)
    hs.admin("hubspot", "POST", "clock", json={"set": (NOW + timedelta(minutes=12)).isoformat()})
    (written,) = _upsert(hook, _upserts(1))
    assert list(hook.fetch_contacts(LookupKey.OWN_ID, [written.target_id], PROPS)["id"]) == [written.target_id]

    hs.admin("hubspot", "POST", "clock", json={"set": (second + timedelta(seconds=5)).isoformat()})
    assert written.target_id not in _window_ids(hook, first, lookback)  # the first run's search misses it
    hs.admin("hubspot", "POST", "clock", json={"set": (second + timedelta(minutes=15, seconds=5)).isoformat()})
    assert (written.target_id in _window_ids(hook, second, lookback)) is found


# -- item 8: no resend of a write that may have been applied (a merge) ------------------------------------


def test_a_merge_that_timed_out_is_not_resent_while_an_upsert_is(hs):
    """The sandbox answers 1.5 s late and applies the write anyway: the client's 0.5 s read timeout fires."""
    contacts = [{"properties": {"email": "keep@example.com"}}, {"properties": {"email": "gone@example.com"}}]
    primary, merged = hs.admin("hubspot", "POST", "seed", json={"contacts": contacts}).json()["ids"]
    hook = HubSpotContactsHook(retry_policy=RetryPolicy(attempts=4, base=0.01, cap=0.05), request_timeout=(2.0, 0.5))
    hs.admin("hubspot", "POST", "faults", json={"latency_ms": 1500})
    try:
        with pytest.raises(HubSpotError, match="not resent") as err:
            hook.merge_contacts(primary, merged)
        assert err.value.status == 0 and hook.api_calls == 1
        time.sleep(1.5)  # let the sandbox finish the merge it was given
        assert _stats(hs)["requests"] == 1
        assert [c["properties"]["email"] for c in _contacts(hs)] == ["keep@example.com"]  # merged once
        upsert = HubSpotContactsHook(
            retry_policy=RetryPolicy(attempts=2, base=0.01, cap=0.05), request_timeout=(2.0, 0.5)
        )
        with pytest.raises(TransientError):
            _upsert(upsert, _upserts(1))  # idempotent: resent once, then the task's retry takes over
        assert upsert.api_calls == 2
    finally:
        hs.admin("hubspot", "POST", "faults", json={"latency_ms": 0})
    time.sleep(1.5)
    assert len(_contacts(hs)) == 2  # two upsert sends, one contact


# -- the sandbox's answers, as HubSpot documents them ----------------------------------------------------


def test_sandbox_answers_missing_scopes_token_info_and_non_unique_upserts_in_hubspots_shapes(hs):
    hs.admin("hubspot", "POST", "settings", json={"scopes": ["crm.objects.contacts.read"]})
    denied = _api(hs, "POST", "/crm/v3/objects/contacts/batch/upsert", {"inputs": []})
    body = denied.json()
    assert denied.status_code == 403 and body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredScopes"] == ["crm.objects.contacts.write"]
    info = _api(hs, "POST", "/oauth/v2/private-apps/get/access-token-info", {"tokenKey": hs.hubspot_token})
    assert info.status_code == 200 and info.json()["scopes"] == ["crm.objects.contacts.read"]

    hs.admin(
        "hubspot", "POST", "settings", json={"scopes": ["crm.objects.contacts.read", "crm.objects.contacts.write"]}
    )
    upsert = {"inputs": [{"idProperty": "firstname", "id": "Ann", "properties": {"lastname": "A"}}]}
    refused = _api(hs, "POST", "/crm/v3/objects/contacts/batch/upsert", upsert)
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("Unable to perform update/upsert by non-unique 0-1 property firstname")
