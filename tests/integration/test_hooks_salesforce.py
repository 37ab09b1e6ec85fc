"""The Salesforce hook against the HTTPS sandbox: look-ups with awkward values, per-record write results,
session expiry and throttling, through simple-salesforce and the real Redis pool."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from crm_sync.hooks import soql
from crm_sync.hooks.contacts import ContactWrite, LookupKey
from crm_sync.hooks.salesforce import SalesforceContactsHook
from crm_sync.hooks.sf_auth import SalesforceCredentials
from crm_sync.hooks.sf_errors import SalesforceApiError
from include.sync_logic.sides import Action
from sandbox.testing import SandboxProcess
from tests.integration.conftest import wired_sandbox

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
LINK = "HubSpot_Contact_Id__c"
FIELDS = ["Id", "Email", "FirstName", "LastName", "Account.Name", LINK, "SystemModstamp"]


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[SandboxProcess]:
    with wired_sandbox(tmp_path_factory.mktemp("sandbox"), redis_url, 4, NOW) as sandbox:
        yield sandbox


@pytest.fixture
def sf(crm: SandboxProcess) -> SandboxProcess:
    crm.admin("salesforce", "POST", "reset")
    return crm


def _seed(crm: SandboxProcess, contacts: list[dict]) -> list[str]:
    result = crm.admin("salesforce", "POST", "seed", json={"contacts": contacts}).json()
    assert not result["rejected"], result["rejected"]
    return result["ids"]


def _requests(crm: SandboxProcess) -> int:
    return crm.admin("salesforce", "GET", "stats").json()["total"]["requests"]


def _write(hook: SalesforceContactsHook, action: Action, records: list[ContactWrite], *, bulk: bool = False) -> list:
    """Write `records`, each referred to by its position."""
    return hook.write_contacts(action, records, [str(i) for i in range(len(records))], link_field=LINK, bulk=bulk)


def _creates(fields: list[dict]) -> list[ContactWrite]:
    return [ContactWrite(None, item) for item in fields]


AWKWARD = [
    {"Email": "o'brien@example.com", "FirstName": "Seán", "LastName": "O'Brien"},
    {"Email": "back.slash@example.com", "FirstName": "Back\\slash", "LastName": 'Quote"d'},
    {"Email": "zoe.unicode@example.com", "FirstName": "Zoë", "LastName": "Ñandú 漢字"},
    {"Email": "plain@example.com", "FirstName": "Plain", "LastName": "Person"},
]


def test_fetch_by_email_with_quotes_backslashes_and_unicode(sf):
    ids = _seed(sf, [{**c, "AccountName": "O'Hare \\ Sons"} for c in AWKWARD])
    hook = SalesforceContactsHook()
    wanted = [c["Email"] for c in AWKWARD[:3]] + [
        "no'such\\one@example.com",
        "zoë.ünicode@exämple.com",
        "ЖЖЖ@example.com",
        "",
    ]
    frame = hook.fetch_contacts(LookupKey.EMAIL, wanted, FIELDS)
    assert sorted(frame["Id"]) == sorted(ids[:3])
    by_id = frame.set_index("Id")
    assert by_id.loc[ids[1], "FirstName"] == "Back\\slash" and by_id.loc[ids[1], "LastName"] == 'Quote"d'
    assert by_id.loc[ids[2], "LastName"] == "Ñandú 漢字"
    assert (frame["Account.Name"] == "O'Hare \\ Sons").all()
    # Emails match case-insensitively, as in Salesforce.
    assert list(hook.fetch_contacts(LookupKey.EMAIL, ["PLAIN@EXAMPLE.COM"], FIELDS)["Id"]) == [ids[3]]


def test_fetch_many_values_in_several_in_queries(sf):
    contacts = [
        {"Email": f"p{i}.o'neil@example.com", "LastName": f"N{i}", "HubSpot_Contact_Id__c": str(5000 + i)}
        for i in range(1200)
    ]
    ids = _seed(sf, contacts)
    hook = SalesforceContactsHook()
    hook.get_conn()  # the token request
    before = _requests(sf)
    frame = hook.fetch_contacts(LookupKey.EMAIL, [c["Email"] for c in contacts], FIELDS)
    assert sorted(frame["Id"]) == sorted(ids)
    # Cut into IN queries within the URI budget, sent 5 to a composite call.
    queries = len(list(soql.chunk_in_queries(FIELDS, "Email", [c["Email"] for c in contacts])))
    assert queries > 5 and _requests(sf) - before == math.ceil(queries / 5)
    linked = hook.fetch_contacts(
        LookupKey.COUNTERPART_ID, [str(5000 + i) for i in range(0, 1200, 7)], FIELDS, link_field=LINK
    )
    assert len(linked) == len(range(0, 1200, 7))
    assert sorted(hook.fetch_contacts(LookupKey.OWN_ID, ids[:250], FIELDS)["Id"]) == sorted(ids[:250])


def test_count_and_call_estimates_match_the_calls_made(sf):
    contacts = [{"Email": f"c{i}@example.com", "LastName": f"C{i}"} for i in range(1200)]
    ids = _seed(sf, contacts)
    hook = SalesforceContactsHook(chunk_rows=500)
    hook.get_conn()  # the token request
    before = _requests(sf)
    assert hook.count_contacts() == 1200 and _requests(sf) - before == 1
    emails = [c["Email"] for c in contacts]
    estimate = hook.lookup_calls(LookupKey.EMAIL, emails, FIELDS)
    before = _requests(sf)
    assert len(hook.fetch_contacts(LookupKey.EMAIL, emails, FIELDS)) == 1200
    assert _requests(sf) - before == estimate == 1  # its IN queries in one composite call
    before = _requests(sf)
    assert sorted(pd.concat(hook.iter_all_contacts(FIELDS))["Id"]) == sorted(ids)
    # The job, its status polls (at least one) and 3 result pages of 500.
    assert _requests(sf) - before >= hook.whole_read_calls(1200) == 5


def test_collection_writes_return_salesforce_codes_per_record(sf):
    (existing, doomed) = _seed(
        sf, [{"Email": "old@example.com", "LastName": "Old", LINK: "101"}, {"LastName": "Doomed"}]
    )
    hook = SalesforceContactsHook()
    records = _creates(
        [
            {LINK: "101", "LastName": "Renamed"},
            {LINK: "102", "LastName": "New", "Email": "new@example.com"},
            {LINK: "103", "Email": "nolastname@example.com"},
            {LINK: "104", "LastName": "Bad", "Email": "not-an-email"},
        ]
    )
    results = hook.write_contacts(Action.CREATE, records, ["hs101", "hs102", "hs103", "hs104"], link_field=LINK)
    assert [r.ref for r in results] == ["hs101", "hs102", "hs103", "hs104"]
    assert results[0].ok and results[0].target_id == existing and not results[0].created
    assert results[1].ok and results[1].created
    assert (results[2].ok, results[2].error_code) == (False, "REQUIRED_FIELD_MISSING")
    assert (results[3].ok, results[3].error_code) == (False, "INVALID_EMAIL_ADDRESS")
    assert results[2].message

    (again,) = _write(hook, Action.CREATE, _creates([{LINK: "102", "LastName": "New"}]))
    assert again.ok and not again.created and again.target_id == results[1].target_id

    updated = _write(
        hook,
        Action.UPDATE,
        [ContactWrite(existing, {"Title": "CEO"}), ContactWrite("003000000000000AAA", {"Title": "x"})],
    )
    assert updated[0].ok and not updated[1].ok and updated[1].error_code
    deleted = _write(hook, Action.DELETE, [ContactWrite(doomed), ContactWrite(doomed + "x")])
    assert deleted[0].ok and not deleted[1].ok and deleted[1].error_code


def test_collections_are_cut_at_200(sf):
    hook = SalesforceContactsHook()
    before = _requests(sf)
    results = _write(hook, Action.CREATE, _creates([{LINK: str(i), "LastName": f"L{i}"} for i in range(450)]))
    assert all(r.ok and r.created for r in results) and len(results) == 450
    assert _requests(sf) - before == 3 + 1  # token + 200 + 200 + 50


def test_bulk_ingest_results_per_record(sf):
    (existing,) = _seed(sf, [{"LastName": "Old", LINK: "900"}])
    hook = SalesforceContactsHook(bulk_poll_seconds=0.1)
    fields = [{LINK: str(900 + i), "LastName": f"B{i}", "Email": None} for i in range(50)]
    fields[7] = {LINK: "907", "LastName": None, "Email": "seven@example.com"}
    results = hook.write_contacts(
        Action.CREATE, _creates(fields), [f"r{i}" for i in range(50)], link_field=LINK, bulk=True
    )
    by_ref = {r.ref: r for r in results}
    assert len(results) == 50
    assert by_ref["r0"].ok and by_ref["r0"].target_id == existing and not by_ref["r0"].created
    assert by_ref["r1"].ok and by_ref["r1"].created
    assert not by_ref["r7"].ok and by_ref["r7"].error_code == "REQUIRED_FIELD_MISSING"
    updates = _write(hook, Action.UPDATE, [ContactWrite(existing, {"Title": "Bulk"})], bulk=True)
    assert updates[0].ok and updates[0].target_id == existing
    deletes = _write(hook, Action.DELETE, [ContactWrite(existing), ContactWrite(by_ref["r1"].target_id)], bulk=True)
    assert all(r.ok for r in deletes)


def test_expired_session_is_refreshed_once(sf):
    (cid,) = _seed(sf, [{"LastName": "Sess", "Email": "sess@example.com"}])
    hook = SalesforceContactsHook()
    assert list(hook.fetch_contacts(LookupKey.OWN_ID, [cid], FIELDS)["Id"]) == [cid]
    sf.admin("salesforce", "POST", "expire-sessions")
    assert list(hook.fetch_contacts(LookupKey.OWN_ID, [cid], FIELDS)["Id"]) == [cid]
    assert hook.reauthentications == 1
    sf.admin("salesforce", "POST", "expire-sessions")
    assert _write(hook, Action.CREATE, _creates([{LINK: "1", "LastName": "After"}]))[0].ok
    assert hook.reauthentications == 2


def test_throttling_and_server_errors_are_survived(sf):
    ids = _seed(sf, [{"LastName": f"T{i}", "SystemModstamp": "2026-01-01T12:05:00Z"} for i in range(30)])
    hook = SalesforceContactsHook()
    hook.retry_policy = type(hook.retry_policy)(attempts=8, base=0.05, cap=0.5)
    sf.admin("salesforce", "POST", "faults", json={"burst_429": 4})
    window = (datetime(2026, 1, 1, 12, 0, tzinfo=UTC), datetime(2026, 1, 1, 12, 15, tzinfo=UTC))
    frame = pd.concat(list(hook.iter_changed_contacts(FIELDS, *window)))
    assert sorted(frame["Id"]) == sorted(ids)
    sf.admin("salesforce", "POST", "faults", json={"burst_429": 0, "error_rate_5xx": 0.3, "seed": 7})
    try:
        for _ in range(5):
            assert len(hook.fetch_contacts(LookupKey.OWN_ID, ids, FIELDS)) == 30
    finally:
        sf.admin("salesforce", "POST", "faults", json={"error_rate_5xx": 0.0})
    stats = sf.admin("salesforce", "GET", "stats").json()["total"]
    assert stats["5xx"] > 0


def test_permanent_errors_are_not_retried(sf):
    hook = SalesforceContactsHook()
    hook.fetch_contacts(LookupKey.OWN_ID, ["003000000000001AAA"], FIELDS)  # authenticate first
    before = _requests(sf)
    with pytest.raises(SalesforceApiError) as err:
        hook.fetch_contacts(LookupKey.EMAIL, ["secret.person@example.com"], ["Id", "No_Such_Field__c"])
    assert err.value.code == "INVALID_FIELD" and "No_Such_Field__c" in str(err.value)
    assert "secret.person" not in str(err.value)  # no values in the error text (it ends up in logs)
    assert _requests(sf) - before == 1


def test_bad_credentials_fail_with_salesforces_error(sf, monkeypatch):
    creds = SalesforceCredentials.from_connection(
        None, None, {"consumer_key": "wrong", "consumer_secret": "wrong", "login_url": sf.salesforce_url}
    )
    hook = SalesforceContactsHook()
    hook.__dict__["_credentials"] = creds
    with pytest.raises(SalesforceAuthenticationFailed, match=r"invalid_client"):
        hook.get_conn()


def test_window_bounds_must_be_whole_seconds(sf):
    hook = SalesforceContactsHook()
    with pytest.raises(ValueError):
        list(hook.iter_changed_contacts(FIELDS, NOW, NOW + timedelta(milliseconds=1500)))


def test_tls_is_verified(sf, monkeypatch):
    """Without the sandbox CA in REQUESTS_CA_BUNDLE the self-signed sandbox is refused, and not retried."""
    import certifi
    import requests

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    hook = SalesforceContactsHook()
    with pytest.raises(requests.exceptions.SSLError):
        hook.get_conn()
    assert hook.api_calls == 0


def test_username_password_flow_appends_the_security_token(sf, monkeypatch):
    import json

    conn = {
        "conn_type": "salesforce",
        "login": "integration@sandbox.example.com",
        "password": "sandbox-",
        "extra": {
            "login_url": sf.salesforce_url,
            "consumer_key": "sandbox-consumer-key",
            "consumer_secret": "sandbox-consumer-secret",
            "security_token": "password",
            "version": "58.0",
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_PASSWORD_FLOW", json.dumps(conn))
    hook = SalesforceContactsHook(salesforce_conn_id="salesforce_password_flow")
    assert hook._credentials.flow == "password"
    client = hook.get_conn()
    assert client.sf_version == "58.0" and client.base_url.endswith("/services/data/v58.0/")
    assert hook.test_connection()[0]
