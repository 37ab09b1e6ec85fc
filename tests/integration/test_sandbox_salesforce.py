"""The Salesforce sandbox as a real process (`python -m sandbox serve`, HTTPS with its own CA trusted
through REQUESTS_CA_BUNDLE), driven by the unmodified simple-salesforce and the provider's SalesforceHook:
OAuth, query/queryAll paging, sObject CRUD and upsert, sObject Collections, Bulk API 2.0, limits, faults,
CLI seeding, and Salesforce's error shapes."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

import pytest
import requests
from airflow.providers.salesforce.hooks.salesforce import SalesforceHook
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.format import format_soql

from sandbox.testing import SandboxProcess, start_sandbox

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
ID_RE = re.compile(r"003[A-Za-z0-9]{12}[A-Z0-5]{3}")
STAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000")
FAST = 0.1  # simple-salesforce sleeps `wait` seconds before its first poll; the sandbox finishes at once


# ---- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    process = start_sandbox(tmp_path_factory.mktemp("salesforce-sandbox"), clock=T0.isoformat(), freeze_clock=True)
    yield process
    process.stop()


@pytest.fixture
def sf_sandbox(sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch) -> SandboxProcess:
    """The module's sandbox, emptied, clock frozen at T0, its CA trusted by requests."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sandbox.ca_bundle)
    sandbox.admin("salesforce", "POST", "reset")
    sandbox.admin("salesforce", "POST", "clock", json={"set": T0.isoformat(), "frozen": True})
    return sandbox


def credentials(sandbox: SandboxProcess) -> tuple[str, str]:
    extra = json.loads(sandbox.env["AIRFLOW_CONN_SALESFORCE_DEFAULT"])["extra"]
    return extra["consumer_key"], extra["consumer_secret"]


def get_token(sandbox: SandboxProcess, **overrides: str) -> requests.Response:
    key, secret = credentials(sandbox)
    data = {"grant_type": "client_credentials", "client_id": key, "client_secret": secret, **overrides}
    return requests.post(f"{sandbox.salesforce_url}/services/oauth2/token", data=data, timeout=10)


@pytest.fixture
def token(sf_sandbox: SandboxProcess) -> dict[str, Any]:
    resp = get_token(sf_sandbox)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture
def sf(token: dict[str, Any]) -> Salesforce:
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"])


def seed(sandbox: SandboxProcess, contacts: list[dict[str, Any]]) -> list[str]:
    result = sandbox.admin("salesforce", "POST", "seed", json={"contacts": contacts}).json()
    assert result["rejected"] == []
    return result["ids"]


def errors_of(exc: pytest.ExceptionInfo) -> list[dict[str, Any]]:
    return exc.value.content


def advance(sandbox: SandboxProcess, seconds: float) -> None:
    sandbox.admin("salesforce", "POST", "clock", json={"advance_seconds": seconds})


# ---- OAuth -----------------------------------------------------------------------------------------
def test_client_credentials_token_shape(sf_sandbox, token):
    assert token["instance_url"] == sf_sandbox.salesforce_url
    assert token["token_type"] == "Bearer"
    assert token["issued_at"] == str(int(T0.timestamp() * 1000))
    assert token["signature"] and token["id"].startswith(sf_sandbox.salesforce_url + "/id/00D")


def test_password_grant(sf_sandbox):
    resp = get_token(
        sf_sandbox, grant_type="password", username="integration@sandbox.example.com", password="sandbox-password"
    )
    assert resp.status_code == 200 and resp.json()["access_token"]


def test_bad_client_credentials_and_grants(sf_sandbox):
    resp = get_token(sf_sandbox, client_secret="wrong")
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_client" and resp.json()["error_description"]
    resp = get_token(sf_sandbox, grant_type="password", username="someone", password="nope")
    assert (resp.status_code, resp.json()["error"]) == (400, "invalid_grant")
    resp = get_token(sf_sandbox, grant_type="authorization_code")
    assert resp.json()["error"] == "unsupported_grant_type"


def test_expired_sessions_answer_invalid_session_id(sf_sandbox, sf):
    sf.query("SELECT Id FROM Contact")
    sf_sandbox.admin("salesforce", "POST", "expire-sessions")
    with pytest.raises(SalesforceExpiredSession) as exc:
        sf.query("SELECT Id FROM Contact")
    assert exc.value.status == 401
    assert errors_of(exc) == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    fresh = get_token(sf_sandbox).json()
    assert Salesforce(instance_url=fresh["instance_url"], session_id=fresh["access_token"]).query(
        "SELECT Id FROM Contact"
    )["done"]


# ---- query ------------------------------------------------------------------------------------------
def test_query_shape_with_relationship_fields(sf_sandbox, sf):
    ids = seed(
        sf_sandbox,
        [
            {"LastName": "Lovelace", "FirstName": "Ada", "Email": "ada@example.com", "AccountName": "Acme"},
            {"LastName": "Hopper", "Email": "grace@example.com"},
        ],
    )
    result = sf.query("SELECT Id, Email, Account.Name, SystemModstamp FROM Contact ORDER BY LastName DESC")
    assert result["totalSize"] == 2 and result["done"] is True and "nextRecordsUrl" not in result
    ada, grace = result["records"]
    assert list(ada) == ["attributes", "Id", "Email", "Account", "SystemModstamp"]
    assert ada["attributes"] == {"type": "Contact", "url": f"/services/data/v59.0/sobjects/Contact/{ids[0]}"}
    assert ada["Account"]["attributes"]["type"] == "Account"
    assert ada["Account"]["Name"] == "Acme"
    assert grace["Account"] is None
    assert ID_RE.fullmatch(ada["Id"]) and STAMP_RE.fullmatch(ada["SystemModstamp"])


def test_paging_follows_next_records_url(sf_sandbox, sf):
    seed(sf_sandbox, [{"LastName": f"n{i}", "HubSpot_Contact_Id__c": str(i)} for i in range(4500)])
    first = sf.query("SELECT Id, HubSpot_Contact_Id__c FROM Contact")
    assert (first["totalSize"], len(first["records"]), first["done"]) == (4500, 2000, False)
    assert re.fullmatch(r"/services/data/v59\.0/query/01g[A-Za-z0-9]+-2000", first["nextRecordsUrl"])
    records = list(sf.query_all_iter("SELECT Id, HubSpot_Contact_Id__c FROM Contact"))
    assert sorted(int(r["HubSpot_Contact_Id__c"]) for r in records) == list(range(4500))
    small = sf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=500"})
    assert len(small["records"]) == 500
    second = sf.query_more(small["nextRecordsUrl"], identifier_is_url=True)
    assert len(second["records"]) == 500 and second["nextRecordsUrl"].endswith("-1000")
    clamped = sf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=5"})
    assert len(clamped["records"]) == 200


def test_query_all_includes_deleted_rows(sf_sandbox, sf):
    keep, gone = seed(sf_sandbox, [{"LastName": "keep"}, {"LastName": "gone"}])
    sf.Contact.delete(gone)
    assert [r["Id"] for r in sf.query("SELECT Id FROM Contact")["records"]] == [keep]
    rows = sf.query_all("SELECT Id, IsDeleted FROM Contact ORDER BY LastName", include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in rows] == [(gone, True), (keep, False)]


def test_count_query_answers_total_size_without_records(sf_sandbox, sf):
    _, gone, _ = seed(sf_sandbox, [{"LastName": "keep"}, {"LastName": "gone"}, {"LastName": "third"}])
    sf.Contact.delete(gone)
    assert sf.query("SELECT COUNT() FROM Contact") == {"totalSize": 2, "done": True, "records": []}
    assert sf.query("SELECT count() FROM Contact WHERE LastName = 'keep'")["totalSize"] == 1
    assert sf.query("SELECT COUNT() FROM Contact", include_deleted=True)["totalSize"] == 3
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT COUNT(), Id FROM Contact")


def test_window_query_as_the_sync_builds_it(sf_sandbox, sf):
    seed(
        sf_sandbox,
        [
            {"LastName": "before", "LastModifiedDate": "2026-11-28T13:59:59.999Z"},
            {"LastName": "start", "LastModifiedDate": "2026-11-28T14:00:00.000Z"},
            {"LastName": "inside", "SystemModstamp": "2026-11-28T14:14:59.999+00:00"},
            {"LastName": "end", "LastModifiedDate": "2026-11-28T14:15:00Z"},
        ],
    )
    soql = format_soql(
        "SELECT LastName FROM Contact WHERE SystemModstamp >= {} AND SystemModstamp < {} ORDER BY SystemModstamp",
        T0,
        T0 + timedelta(minutes=15),
    )
    assert [r["LastName"] for r in sf.query_all(soql)["records"]] == ["start", "inside"]


def test_admin_age_moves_records_out_of_the_window_the_sync_reads(sf_sandbox, sf):
    """Records the admin ages by an hour leave the window query; a later edit puts one back in."""
    first, second = seed(sf_sandbox, [{"LastName": "first"}, {"LastName": "second"}])  # stamped T0 (frozen clock)
    soql = format_soql("SELECT Id FROM Contact WHERE SystemModstamp >= {} ORDER BY SystemModstamp, Id", T0)
    assert {r["Id"] for r in sf.query_all(soql)["records"]} == {first, second}
    assert sf_sandbox.admin("salesforce", "POST", "age", json={"seconds": 3600}).json() == {"aged": 2}
    assert sf.query_all(soql)["records"] == []
    aged = sf.Contact.get(first)
    assert aged["SystemModstamp"] == aged["LastModifiedDate"] == aged["CreatedDate"] == "2026-11-28T13:00:00.000+0000"
    sf.Contact.update(second, {"Title": "CTO"})
    assert [r["Id"] for r in sf.query_all(soql)["records"]] == [second]
    with pytest.raises(requests.HTTPError, match="400"):
        sf_sandbox.admin("salesforce", "POST", "age", json={"seconds": -1})


def test_admin_records_of_some_ids(sf_sandbox):
    first, _, third = seed(sf_sandbox, [{"LastName": n, "AccountName": "Acme"} for n in ("a", "b", "c")])
    some = sf_sandbox.admin("salesforce", "GET", f"records?ids={first},{third},003000000000000AAA").json()
    assert sorted(row["Id"] for row in some["contacts"]) == sorted([first, third]) and some["accounts"] == []
    assert len(sf_sandbox.admin("salesforce", "GET", "records").json()["contacts"]) == 3


def test_format_soql_values_cannot_break_out(sf_sandbox, sf):
    hostile = "o'brien\\\" OR Email != '' ünï 😀\n"
    seed(sf_sandbox, [{"LastName": hostile}, {"LastName": "o'brien"}, {"LastName": "other"}])
    result = sf.query(format_soql("SELECT LastName FROM Contact WHERE LastName = {}", hostile.strip()))
    assert [r["LastName"] for r in result["records"]] == [hostile.strip()]
    like = sf.query(format_soql("SELECT LastName FROM Contact WHERE LastName LIKE '{:like}%'", "o'brien"))
    assert sorted(r["LastName"] for r in like["records"]) == sorted([hostile.strip(), "o'brien"])


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM Contact WHERE", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE LastName = 'unterminated", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE Email = 'a' AND Phone = 'b' OR Title = 'c'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact GROUP BY Id", "MALFORMED_QUERY"),
        ("SELECT Id, Company FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM Contact WHERE SystemModstamp > '2026-11-28'", "INVALID_FIELD"),
        ("SELECT Id FROM Lead", "INVALID_TYPE"),
    ],
)
def test_bad_queries_answer_salesforce_errors(sf, soql, code):
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query(soql)
    assert exc.value.status == 400
    assert errors_of(exc)[0]["errorCode"] == code and errors_of(exc)[0]["message"]


def test_stale_query_locator(sf_sandbox, sf, token):
    resp = requests.get(
        f"{sf_sandbox.salesforce_url}/services/data/v59.0/query/01gSB0000000000AAA-2000",
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=10,
    )
    assert resp.status_code == 400 and resp.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


# ---- the high-water-mark poll of the event path (no Change Data Capture here) ----------------------------
POLL = "SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp {op} {mark} ORDER BY SystemModstamp ASC, Id ASC"


def at(sandbox: SandboxProcess, moment: datetime) -> None:
    sandbox.admin("salesforce", "POST", "clock", json={"set": moment.isoformat()})


def soql_time(moment: datetime) -> str:
    return (
        moment.strftime("%Y-%m-%dT%H:%M:%S")
        + (f".{moment.microsecond // 1000:03d}" if moment.microsecond else "")
        + "Z"
    )


def test_writes_in_one_second_share_a_modstamp_so_a_poll_must_take_the_marks_second_again(sf_sandbox, sf):
    at(sf_sandbox, T0 + timedelta(milliseconds=200))
    first = sf.Contact.create({"LastName": "first"})["id"]
    at(sf_sandbox, T0 + timedelta(milliseconds=700))
    second = sf.Contact.create({"LastName": "second"})["id"]
    stamps = {r["Id"]: r["SystemModstamp"] for r in sf.query(POLL.format(op=">=", mark=soql_time(T0)))["records"]}
    assert stamps == {first: "2026-11-28T14:00:00.000+0000", second: "2026-11-28T14:00:00.000+0000"}
    assert sf.query(POLL.format(op=">", mark=soql_time(T0)))["records"] == []  # `>` the mark loses the second
    late_literal = soql_time(T0 + timedelta(milliseconds=500))  # accepted, and its milliseconds ignored
    assert len(sf.query(POLL.format(op=">=", mark=late_literal))["records"]) == 2
    assert sf.query(POLL.format(op=">", mark=late_literal))["records"] == []


def test_poll_query_pages_a_busy_second_by_id_and_reads_deletes_and_merges_with_query_all(sf_sandbox, sf):
    ids = seed(sf_sandbox, [{"LastName": f"bulk{i}", "SystemModstamp": "2026-11-28T13:59:00Z"} for i in range(2_500)])
    first = sf.query(POLL.format(op=">=", mark="2026-11-28T13:59:00Z") + " LIMIT 2000")
    assert first["done"] is True and len(first["records"]) == 2_000
    assert [r["Id"] for r in first["records"]] == sorted(ids, key=lambda i: i[:15])[:2_000]
    last = first["records"][-1]["Id"]
    rest = sf.query_all(
        "SELECT Id FROM Contact WHERE SystemModstamp >= 2026-11-28T13:59:00Z"
        f" AND (SystemModstamp > 2026-11-28T13:59:00Z OR Id > '{last}') ORDER BY SystemModstamp ASC, Id ASC LIMIT 2000"
    )
    assert len(rest["records"]) == 500 and {r["Id"] for r in first["records"] + rest["records"]} == set(ids)

    master, loser, gone = ids[:3]
    sf_sandbox.admin("salesforce", "POST", "merge", json={"masterRecord": {"Id": master}, "recordToMergeIds": [loser]})
    sf.Contact.delete(gone)
    soql = (
        "SELECT Id, SystemModstamp, IsDeleted, MasterRecordId FROM Contact WHERE SystemModstamp > 2026-11-28T13:59:59Z"
        " ORDER BY SystemModstamp ASC, Id ASC LIMIT 2000"
    )
    rows = {r["Id"]: (r["IsDeleted"], r["MasterRecordId"]) for r in sf.query_all(soql, include_deleted=True)["records"]}
    assert rows == {master: (False, None), loser: (True, master), gone: (True, None)}
    assert {r["Id"] for r in sf.query(soql)["records"]} == {master}  # query (not queryAll) skips deleted rows


def test_a_long_transaction_shows_up_behind_the_mark(sf_sandbox, sf):
    (slow,) = seed(
        sf_sandbox, [{"LastName": "slow", "SystemModstamp": "2026-11-28T14:00:00Z", "CommitDelaySeconds": 30}]
    )
    poll = POLL.format(op=">=", mark="2026-11-28T14:00:00Z")
    assert sf.query(poll)["records"] == []  # not committed yet
    advance(sf_sandbox, 31)
    assert [r["Id"] for r in sf.query(poll)["records"]] == [slow]  # stamped when it began: a poll needs overlap


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        (POLL.format(op=">", mark="'2026-11-28T14:00:00Z'"), "INVALID_FIELD"),  # quoted
        (POLL.format(op=">", mark="2026-11-28T14:00:00"), "MALFORMED_QUERY"),  # no zone
        (POLL.format(op=">", mark="2026-11-28T14:00:00Z") + " LIMIT 2000 OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE"),
        ("SELECT Id FROM Contact WHERE SystemModstamp > 2026-11-28T14:00:00Z LIMIT 5 ORDER BY Id", "MALFORMED_QUERY"),
        (
            "SELECT Id FROM Contact WHERE SystemModstamp > 2026-11-28T14:00:00Z AND Email = 'x' OR IsDeleted = true",
            "MALFORMED_QUERY",
        ),
        ("SELECT Id FROM Contact WHERE Id > 'not-an-id'", "INVALID_QUERY_FILTER_OPERATOR"),
    ],
)
def test_poll_queries_salesforce_refuses_are_refused(sf, soql, code):
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query_all(soql)
    assert errors_of(exc)[0]["errorCode"] == code


# ---- sObject CRUD -------------------------------------------------------------------------------------
def test_crud_and_timestamps(sf_sandbox, sf):
    created = sf.Contact.create({"LastName": "Turing", "Email": "alan@example.com"})
    assert created["success"] is True and created["errors"] == [] and ID_RE.fullmatch(created["id"])
    record = sf.Contact.get(created["id"])
    assert record["attributes"]["type"] == "Contact"
    assert record["LastModifiedDate"] == record["SystemModstamp"] == "2026-11-28T14:00:00.000+0000"
    advance(sf_sandbox, 61.5)
    assert sf.Contact.update(created["id"], {"Title": "Mathematician"}) == 204
    record = sf.Contact.get(created["id"])
    assert record["Title"] == "Mathematician"
    assert record["LastModifiedDate"] == record["SystemModstamp"] == "2026-11-28T14:01:01.000+0000"  # no ms kept
    assert record["CreatedDate"] == "2026-11-28T14:00:00.000+0000"
    assert sf.Contact.get(created["id"][:15])["Id"] == created["id"]
    assert sf.Contact.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound) as exc:
        sf.Contact.get(created["id"])
    assert errors_of(exc)[0]["errorCode"] == "NOT_FOUND"
    with pytest.raises(SalesforceResourceNotFound) as exc:
        sf.Contact.update(created["id"], {"Title": "x"})
    assert errors_of(exc)[0] == {"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": []}
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get("003SB0000000999AAA")


@pytest.mark.parametrize(
    ("values", "code", "fields"),
    [
        ({"FirstName": "no last name"}, "REQUIRED_FIELD_MISSING", ["LastName"]),
        ({"LastName": "x", "Email": "not an email"}, "INVALID_EMAIL_ADDRESS", ["Email"]),
        ({"LastName": "x", "Email": "a" * 75 + "@x.com"}, "STRING_TOO_LONG", ["Email"]),
        ({"LastName": "x", "FirstName": "f" * 41}, "STRING_TOO_LONG", ["FirstName"]),
        ({"LastName": "l" * 81}, "STRING_TOO_LONG", ["LastName"]),
        ({"LastName": "x", "Phone": "1" * 41}, "STRING_TOO_LONG", ["Phone"]),
        ({"LastName": "x", "MobilePhone": "1" * 41}, "STRING_TOO_LONG", ["MobilePhone"]),
        ({"LastName": "x", "Title": "t" * 129}, "STRING_TOO_LONG", ["Title"]),
        ({"LastName": "x", "Company": "Acme"}, "INVALID_FIELD", []),
    ],
)
def test_validation_errors(sf, values, code, fields):
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.create(values)
    assert exc.value.status == 400
    assert errors_of(exc)[0]["errorCode"] == code
    assert errors_of(exc)[0]["fields"] == fields


def test_invalid_field_message(sf):
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.create({"LastName": "x", "Company": "Acme"})
    assert errors_of(exc)[0]["message"] == "No such column 'Company' on sobject of type Contact"


def test_upsert_by_external_id(sf_sandbox, sf, token):
    assert sf.Contact.upsert("HubSpot_Contact_Id__c/501", {"LastName": "New"}) == 201
    assert sf.Contact.upsert("HubSpot_Contact_Id__c/501", {"Title": "Changed"}) == 200
    record = sf.Contact.get_by_custom_id("HubSpot_Contact_Id__c", "501")
    assert (record["LastName"], record["Title"]) == ("New", "Changed")
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    url = f"{sf_sandbox.salesforce_url}/services/data/v59.0/sobjects/Contact/HubSpot_Contact_Id__c/502"
    created = requests.patch(url, json={"LastName": "Second"}, headers=headers, timeout=10)
    assert created.status_code == 201 and created.json()["created"] is True
    updated = requests.patch(url, json={"Title": "t"}, headers=headers, timeout=10)
    assert updated.status_code == 200
    assert updated.json() == {"id": created.json()["id"], "success": True, "errors": [], "created": False}
    old_api = url.replace("v59.0", "v45.0")
    assert requests.patch(old_api, json={"Title": "u"}, headers=headers, timeout=10).status_code == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.upsert("Email/a@b.com", {"LastName": "x"})


def test_duplicate_external_id(sf):
    first = sf.Contact.create({"LastName": "a", "HubSpot_Contact_Id__c": "900"})
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.create({"LastName": "b", "HubSpot_Contact_Id__c": "900"})
    assert errors_of(exc)[0]["errorCode"] == "DUPLICATE_VALUE"
    assert errors_of(exc)[0]["message"] == (
        f"duplicate value found: HubSpot_Contact_Id__c duplicates value on record with id: {first['id']}"
    )


def test_describe(sf):
    describe = sf.Contact.describe()
    fields = {f["name"]: f for f in describe["fields"]}
    assert describe["keyPrefix"] == "003"
    assert {
        name: fields[name]["length"] for name in ("Email", "FirstName", "LastName", "Phone", "MobilePhone", "Title")
    } == {"Email": 80, "FirstName": 40, "LastName": 80, "Phone": 40, "MobilePhone": 40, "Title": 128}
    link = fields["HubSpot_Contact_Id__c"]
    assert (link["externalId"], link["unique"], link["type"], link["length"]) == (True, True, "string", 255)
    assert fields["LastName"]["nillable"] is False and fields["SystemModstamp"]["updateable"] is False
    assert fields["AccountId"]["referenceTo"] == ["Account"]
    assert {"name", "type", "length", "nillable", "unique", "externalId", "updateable", "createable"} <= set(link)


# ---- sObject Collections --------------------------------------------------------------------------------
def contact(**values: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Contact"}, **values}


def test_collection_create_partial_success(sf):
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"allOrNone": False, "records": [contact(LastName="ok"), contact(Email="bad")]},
    )
    assert results[0]["success"] is True and ID_RE.fullmatch(results[0]["id"])
    assert results[1]["success"] is False
    assert [e["statusCode"] for e in results[1]["errors"]] == ["REQUIRED_FIELD_MISSING", "INVALID_EMAIL_ADDRESS"]
    assert set(results[1]["errors"][0]) == {"statusCode", "message", "fields"}
    assert sf.query("SELECT Id FROM Contact")["totalSize"] == 1


def test_collection_all_or_none_rolls_back(sf):
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"allOrNone": True, "records": [contact(LastName="ok"), contact(LastName="x" * 81)]},
    )
    assert results[0] == {
        "success": False,
        "errors": [
            {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request was using "
                "AllOrNone header",
                "fields": [],
            }
        ],
    }
    assert results[1]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert sf.query("SELECT Id FROM Contact")["totalSize"] == 0


def test_collection_update_upsert_delete(sf_sandbox, sf):
    ids = seed(sf_sandbox, [{"LastName": "a", "HubSpot_Contact_Id__c": "1"}, {"LastName": "b"}])
    updated = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={"records": [contact(id=ids[0], Title="T1"), contact(id="003SB0000000999AAA", Title="x")]},
    )
    assert updated[0] == {"id": ids[0], "success": True, "errors": []}
    assert updated[1]["success"] is False and updated[1]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    upserted = sf.restful(
        "composite/sobjects/Contact/HubSpot_Contact_Id__c",
        method="PATCH",
        json={
            "allOrNone": False,
            "records": [
                contact(HubSpot_Contact_Id__c="1", Title="T2"),
                contact(HubSpot_Contact_Id__c="2", LastName="new"),
            ],
        },
    )
    assert [(r["success"], r["created"]) for r in upserted] == [(True, False), (True, True)]
    assert upserted[0]["id"] == ids[0]
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": f"{ids[1]},{ids[1]}"})
    assert deleted[0] == {"id": ids[1], "success": True, "errors": []}
    assert deleted[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    titles = {r["Id"]: r["Title"] for r in sf.query("SELECT Id, Title FROM Contact")["records"]}
    assert titles == {ids[0]: "T2", upserted[1]["id"]: None}


def test_collection_limit_and_non_external_field(sf):
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.restful("composite/sobjects", method="POST", json={"records": [contact(LastName="x")] * 201})
    assert errors_of(exc)[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.restful("composite/sobjects/Contact/Email", method="PATCH", json={"records": [contact(Email="a@b.co")]})
    assert errors_of(exc)[0]["errorCode"] == "INVALID_FIELD"


def composite_query(sf: Salesforce, *queries: str, kind: str = "query") -> list[dict[str, Any]]:
    base = f"/services/data/v{sf.sf_version}/{kind}/?q="
    body = {
        "allOrNone": False,
        "compositeRequest": [
            {"method": "GET", "url": base + quote_plus(q), "referenceId": f"q{i}"} for i, q in enumerate(queries)
        ],
    }
    return sf.restful("composite", method="POST", json=body)["compositeResponse"]


def test_composite_queries_count_as_one_call(sf):
    """POST composite: up to 25 subrequests, at most 5 of them queries, answered in order with their own
    status and body; the whole request is one call against the daily budget (Salesforce's REST API guide)."""
    ids = [sf.Contact.create(contact(LastName=f"L{i}", Email=f"p{i}@example.com"))["id"] for i in range(3)]
    sf.query("SELECT COUNT() FROM Contact")
    used = sf.api_usage["api-usage"].used
    answers = composite_query(
        sf,
        f"SELECT Id, Email FROM Contact WHERE Id IN ('{ids[0]}', '{ids[2]}')",
        "SELECT Id FROM Contact WHERE Nope__c = 'x'",
        "SELECT COUNT() FROM Contact",
    )
    assert sf.api_usage["api-usage"].used == used + 1
    assert [(a["referenceId"], a["httpStatusCode"]) for a in answers] == [("q0", 200), ("q1", 400), ("q2", 200)]
    assert sorted(r["Email"] for r in answers[0]["body"]["records"]) == ["p0@example.com", "p2@example.com"]
    assert answers[0]["body"]["done"] is True
    assert answers[1]["body"][0]["errorCode"] == "INVALID_FIELD"
    assert answers[2]["body"]["totalSize"] == 3
    sf.Contact.delete(ids[1])
    (deleted,) = composite_query(sf, f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{ids[1]}'", kind="queryAll")
    assert deleted["body"]["records"][0]["IsDeleted"] is True
    with pytest.raises(SalesforceMalformedRequest):
        composite_query(sf, *["SELECT Id FROM Contact"] * 6)


# ---- limits and faults ------------------------------------------------------------------------------------
def test_limits_and_usage_header(sf_sandbox, sf):
    sf.query("SELECT Id FROM Contact")
    used = sf.api_usage["api-usage"].used
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == sf.api_usage["api-usage"].total == 100_000
    assert limits["DailyApiRequests"]["Remaining"] == 100_000 - (used + 1)
    assert sf.api_usage["api-usage"].used == used + 1


def test_daily_limit_exhausted(sf_sandbox, sf):
    sf_sandbox.admin("salesforce", "POST", "api-usage", json={"used": 99_999})
    sf.query("SELECT Id FROM Contact")
    with pytest.raises(SalesforceRefusedRequest) as exc:
        sf.query("SELECT Id FROM Contact")
    assert exc.value.status == 403
    assert errors_of(exc) == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert sf_sandbox.admin("salesforce", "GET", "records").json()["contacts"] == []
    advance(sf_sandbox, 24 * 3600 + 1)
    sf_sandbox.admin("salesforce", "POST", "api-usage", json={"used": 0})
    assert sf.query("SELECT Id FROM Contact")["done"]


def test_fault_burst_and_server_errors(sf_sandbox, sf):
    sf_sandbox.admin("salesforce", "POST", "faults", json={"burst_429": 1})
    with pytest.raises(SalesforceRefusedRequest) as exc:
        sf.query("SELECT Id FROM Contact")
    assert errors_of(exc)[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert "ConcurrentPerOrgLongTxn" in errors_of(exc)[0]["message"]
    sf_sandbox.admin("salesforce", "POST", "faults", json={"burst_429": 0, "error_rate_5xx": 1.0, "seed": 1})
    with pytest.raises(SalesforceGeneralError) as exc:
        sf.query("SELECT Id FROM Contact")
    assert exc.value.status in (500, 503)
    assert errors_of(exc)[0]["errorCode"] in ("UNKNOWN_EXCEPTION", "SERVER_UNAVAILABLE")


# ---- Bulk API 2.0, the provider hook, CLI seeding, scale ----------------------------------------------


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_bulk_insert_reports_successes_and_failures(sf):
    results = sf.bulk2.Contact.insert(
        records=[
            {"LastName": "Ok", "Email": "ok@example.com"},
            {"LastName": "", "Email": "fine@example.com"},
            {"LastName": "Bad", "Email": "nope"},
        ],
        wait=FAST,
    )
    assert results == [
        {"numberRecordsFailed": 2, "numberRecordsProcessed": 3, "numberRecordsTotal": 3, "job_id": results[0]["job_id"]}
    ]
    job_id = results[0]["job_id"]
    successes = rows(sf.bulk2.Contact.get_successful_records(job_id))
    assert [(r["sf__Created"], r["LastName"]) for r in successes] == [("true", "Ok")]
    assert successes[0]["sf__Id"].startswith("003")
    failures = rows(sf.bulk2.Contact.get_failed_records(job_id))
    assert [r["sf__Error"] for r in failures] == [
        "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --",
        "INVALID_EMAIL_ADDRESS:Email: invalid email address: nope:Email --",
    ]
    assert rows(sf.bulk2.Contact.get_unprocessed_records(job_id)) == []


def test_bulk_upsert_update_delete(sf_sandbox, sf):
    (existing,) = seed(sf_sandbox, [{"LastName": "Old", "HubSpot_Contact_Id__c": "10"}])
    result = sf.bulk2.Contact.upsert(
        records=[{"HubSpot_Contact_Id__c": "10", "Title": "Updated"}, {"HubSpot_Contact_Id__c": "11", "LastName": "N"}],
        external_id_field="HubSpot_Contact_Id__c",
        wait=FAST,
    )
    successes = rows(sf.bulk2.Contact.get_successful_records(result[0]["job_id"]))
    assert {r["HubSpot_Contact_Id__c"]: r["sf__Created"] for r in successes} == {"10": "false", "11": "true"}
    assert next(r["sf__Id"] for r in successes if r["HubSpot_Contact_Id__c"] == "10") == existing
    created = next(r["sf__Id"] for r in successes if r["HubSpot_Contact_Id__c"] == "11")

    sf.bulk2.Contact.update(records=[{"Id": existing, "Title": "Again"}], wait=FAST)
    sf.bulk2.Contact.delete(records=[{"Id": created}], wait=FAST)
    current = sf.query("SELECT Id, LastName, Title FROM Contact")["records"]
    assert [(r["Id"], r["LastName"], r["Title"]) for r in current] == [(existing, "Old", "Again")]


def test_bulk_query_pages_with_locator(sf_sandbox, sf):
    seed(sf_sandbox, [{"LastName": f"n{i}", "AccountName": "Acme" if i % 2 else None} for i in range(5)])
    pages = list(sf.bulk2.Contact.query("SELECT Id, LastName, Account.Name FROM Contact", max_records=2, wait=FAST))
    assert len(pages) == 3
    parsed = [row for page in pages for row in rows(page)]
    assert [r["LastName"] for r in parsed] == [f"n{i}" for i in range(5)]
    assert [r["Account.Name"] for r in parsed] == ["", "Acme", "", "Acme", ""]
    assert pages[0].startswith('"Id","LastName","Account.Name"\n')


def test_bulk_query_all_includes_deleted(sf_sandbox, sf):
    keep, gone = seed(sf_sandbox, [{"LastName": "keep"}, {"LastName": "gone"}])
    sf.Contact.delete(gone)
    live = [r["Id"] for page in sf.bulk2.Contact.query("SELECT Id FROM Contact", wait=FAST) for r in rows(page)]
    every = [
        r["Id"]
        for page in sf.bulk2.Contact.query_all("SELECT Id, IsDeleted FROM Contact", wait=FAST)
        for r in rows(page)
    ]
    assert live == [keep] and every == [keep, gone]


def test_bulk_job_lifecycle_over_http(sf_sandbox, token):
    base = f"{sf_sandbox.salesforce_url}/services/data/v59.0/jobs"
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    job = requests.post(
        f"{base}/ingest",
        json={"object": "Contact", "operation": "insert", "contentType": "CSV"},
        headers=headers,
        timeout=10,
    ).json()
    assert (job["state"], job["object"], job["operation"], job["id"][:3]) == ("Open", "Contact", "insert", "750")
    assert job["contentUrl"] == f"services/data/v59.0/jobs/ingest/{job['id']}/batches"
    upload = requests.put(
        f"{base}/ingest/{job['id']}/batches",
        data="LastName,Email\nA,a@example.com\n",
        headers={**headers, "Content-Type": "text/csv"},
        timeout=10,
    )
    assert upload.status_code == 201
    closed = requests.patch(f"{base}/ingest/{job['id']}", json={"state": "UploadComplete"}, headers=headers, timeout=10)
    assert closed.json()["state"] == "UploadComplete"
    info = requests.get(f"{base}/ingest/{job['id']}", headers=headers, timeout=10).json()
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == ("JobComplete", 1, 0)

    query = requests.post(
        f"{base}/query", json={"operation": "query", "query": "SELECT Id FROM Contact"}, headers=headers, timeout=10
    ).json()
    assert query["state"] == "UploadComplete"
    results = requests.get(f"{base}/query/{query['id']}/results", headers=headers, timeout=10)
    assert results.headers["Sforce-NumberOfRecords"] == "1" and results.headers["Sforce-Locator"] == "null"
    bad = requests.post(
        f"{base}/query", json={"operation": "query", "query": "SELECT Nope FROM Contact"}, headers=headers, timeout=10
    )
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"


def test_bulk_job_with_unknown_column_fails(sf):
    with pytest.raises(SalesforceOperationError, match="Field name not found : Company"):
        sf.bulk2.Contact.insert(records=[{"LastName": "x", "Company": "Acme"}], wait=FAST)


def test_provider_hook_against_the_sandbox(sf_sandbox, token, monkeypatch):
    seed(sf_sandbox, [{"LastName": f"h{i}", "AccountName": "Acme"} for i in range(2500)])
    conn = {"conn_type": "salesforce", "extra": {"instance_url": token["instance_url"]}}
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_SANDBOX", json.dumps(conn))
    hook = SalesforceHook(salesforce_conn_id="salesforce_sandbox", session_id=token["access_token"])
    client = hook.get_conn()
    records = list(client.query_all_iter("SELECT Id, Account.Name FROM Contact"))
    assert len(records) == 2500 and {r["Account"]["Name"] for r in records} == {"Acme"}
    assert hook.make_query("SELECT Id FROM Contact WHERE LastName = 'h7'")["totalSize"] == 1
    created = client.restful(
        "composite/sobjects",
        method="POST",
        json={"records": [{"attributes": {"type": "Contact"}, "LastName": "via hook"}]},
    )
    assert created[0]["success"] is True
    assert (
        client.bulk2.Contact.insert(records=[{"LastName": "bulk via hook"}], wait=FAST)[0]["numberRecordsFailed"] == 0
    )


def test_cli_seeds_generated_contacts(tmp_path, monkeypatch):
    with start_sandbox(tmp_path / "seeded", contacts=300, seed=7, clock=T0.isoformat(), freeze_clock=True) as box:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", box.ca_bundle)
        tok = get_token(box).json()
        client = Salesforce(instance_url=tok["instance_url"], session_id=tok["access_token"])
        seeded = box.admin("salesforce", "GET", "records").json()["contacts"]
        assert len(seeded) > 0
        window = format_soql(
            "SELECT Id, Email, LastModifiedDate FROM Contact WHERE SystemModstamp >= {} AND SystemModstamp <= {}",
            T0 - timedelta(minutes=15),
            T0,
        )
        assert client.query_all(window)["totalSize"] == len(seeded)


def test_window_query_over_many_contacts_is_fast(sf_sandbox, sf):
    contacts = [
        {"LastName": f"c{i}", "Email": f"c{i}@example.com", "LastModifiedDate": (T0 + timedelta(seconds=i)).isoformat()}
        for i in range(20_000)
    ]
    for start in range(0, len(contacts), 5000):
        seed(sf_sandbox, contacts[start : start + 5000])
    soql = format_soql(
        "SELECT Id FROM Contact WHERE SystemModstamp >= {} AND SystemModstamp < {}",
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=1, minutes=15),
    )
    started = time.perf_counter()
    assert len(list(sf.query_all_iter(soql))) == 900
    by_id = sf.query(format_soql("SELECT Id FROM Contact WHERE Email IN {}", ["c1@example.com", "c19999@example.com"]))
    assert by_id["totalSize"] == 2
    assert time.perf_counter() - started < 2


# ---- identity changes: merge, delete and undelete, Get Deleted ----------------------------------------
def merge(sandbox: SandboxProcess, master: dict[str, Any], losers: list[str]) -> requests.Response:
    return sandbox.admin("salesforce", "POST", "merge", json={"masterRecord": master, "recordToMergeIds": losers})


def undelete(sandbox: SandboxProcess, *ids: str) -> list[dict[str, Any]]:
    return sandbox.admin("salesforce", "POST", "undelete", json={"ids": list(ids)}).json()


def query_all(sf: Salesforce, soql: str) -> list[dict[str, Any]]:
    return sf.query_all(soql, include_deleted=True)["records"]


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+0000"


def test_merge_deletes_losers_with_master_record_id(sf_sandbox, sf):
    master, tall, small = seed(
        sf_sandbox,
        [
            {"LastName": "Master", "Email": "m@example.com", "HubSpot_Contact_Id__c": "101"},
            {"LastName": "Loser", "Title": "CTO", "HubSpot_Contact_Id__c": "102"},
            {"LastName": "Other", "HubSpot_Contact_Id__c": "103"},
        ],
    )
    advance(sf_sandbox, 60)
    request = {"Id": master, "Title": "CTO", "HubSpot_Contact_Id__c": "102"}  # values taken from a loser
    result = merge(sf_sandbox, request, [tall, small]).json()
    assert result == {
        "id": master,
        "success": True,
        "errors": [],
        "mergedRecordIds": [tall, small],
        "updatedRelatedIds": [],
    }

    assert [r["Id"] for r in sf.query("SELECT Id FROM Contact")["records"]] == [master]
    kept = sf.Contact.get(master)
    assert (kept["Title"], kept["HubSpot_Contact_Id__c"], kept["Email"]) == ("CTO", "102", "m@example.com")
    assert kept["SystemModstamp"] == stamp(T0 + timedelta(seconds=60)) and kept["MasterRecordId"] is None
    assert sf.Contact.get_by_custom_id("HubSpot_Contact_Id__c", "102")["Id"] == master
    merged = query_all(
        sf,
        "SELECT Id, MasterRecordId, MasterRecord.LastName, SystemModstamp FROM Contact "
        f"WHERE IsDeleted = true AND MasterRecordId != null AND SystemModstamp > {T0.isoformat()}",
    )
    assert [(r["Id"], r["MasterRecordId"], r["MasterRecord"]["LastName"]) for r in merged] == [
        (tall, master, "Master"),
        (small, master, "Master"),
    ]
    for loser in (tall, small):
        with pytest.raises(SalesforceResourceNotFound):
            sf.Contact.get(loser)
    advance(sf_sandbox, 60)  # Get Deleted covers whole minutes up to the current one
    deleted = sf.Contact.deleted(T0, T0 + timedelta(minutes=5))["deletedRecords"]
    assert deleted == [{"id": i, "deletedDate": stamp(T0 + timedelta(seconds=60))} for i in sorted([tall, small])]

    undone = undelete(sf_sandbox, tall, small)  # tall's unique value moved to the master
    assert undone[0]["success"] is False and undone[0]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    assert undone[1] == {"id": small, "success": True, "errors": []}
    assert sf.Contact.get(small)["IsDeleted"] is False


def test_merge_refusals(sf_sandbox, sf):
    master, loser, gone = seed(sf_sandbox, [{"LastName": "M"}, {"LastName": "L"}, {"LastName": "G"}])
    sf.Contact.delete(gone)
    malformed = [
        ({"Id": master}, losers) for losers in ([], [loser, gone, "003SB0000000999AAA"], [master], [loser] * 2)
    ]
    for request, losers in [*malformed, ({"LastName": "no id"}, [loser])]:
        with pytest.raises(requests.HTTPError) as refused:
            merge(sf_sandbox, request, losers)
        assert refused.value.response.status_code == 400 and refused.value.response.json()["error"]
    for request, losers, code in [
        ({"Id": master}, [gone], "ENTITY_IS_DELETED"),
        ({"Id": gone}, [loser], "ENTITY_IS_DELETED"),
        ({"Id": master}, ["003SB0000000999AAA"], "INVALID_CROSS_REFERENCE_KEY"),
        ({"Id": master}, ["not-an-id"], "MALFORMED_ID"),
        ({"Id": master, "Company": "Acme"}, [loser], "INVALID_FIELD"),
        ({"Id": master, "MasterRecordId": loser}, [loser], "INVALID_FIELD_FOR_INSERT_UPDATE"),
    ]:
        result = merge(sf_sandbox, request, losers).json()
        assert (result["success"], result["errors"][0]["statusCode"]) == (False, code)
    assert len(sf.query("SELECT Id FROM Contact")["records"]) == 2  # nothing changed
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.create({"LastName": "x", "MasterRecordId": master})
    assert errors_of(exc)[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_delete_then_undelete_within_the_recycle_bins_15_days(sf_sandbox, sf):
    kept, gone = seed(sf_sandbox, [{"LastName": "Kept"}, {"LastName": "Gone", "Email": "g@example.com"}])
    advance(sf_sandbox, 60)
    assert sf.Contact.delete(gone) == 204
    assert [r["Id"] for r in sf.query("SELECT Id FROM Contact")["records"]] == [kept]
    assert [
        (r["Id"], r["IsDeleted"]) for r in query_all(sf, f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{gone}'")
    ] == [(gone, True)]
    advance(sf_sandbox, 14 * 86_400)
    assert undelete(sf_sandbox, gone, kept, "003SB0000000999AAA", "nope") == [
        {"id": gone, "success": True, "errors": []},
        {
            "id": kept,
            "success": False,
            "errors": [{"statusCode": "UNDELETE_FAILED", "message": "Entity is not in the recycle bin", "fields": []}],
        },
        {
            "id": "003SB0000000999AAA",
            "success": False,
            "errors": [
                {"statusCode": "INVALID_CROSS_REFERENCE_KEY", "message": "invalid cross reference id", "fields": []}
            ],
        },
        {
            "id": "nope",
            "success": False,
            "errors": [
                {"statusCode": "MALFORMED_ID", "message": "Contact ID: id value of incorrect type: nope", "fields": []}
            ],
        },
    ]
    back = sf.Contact.get(gone)
    assert (back["Id"], back["IsDeleted"], back["Email"]) == (gone, False, "g@example.com")
    assert back["SystemModstamp"] == stamp(T0 + timedelta(days=14, seconds=60))  # an undelete moves it
    assert back["LastModifiedDate"] == stamp(T0)

    assert sf.Contact.delete(gone) == 204
    advance(sf_sandbox, 15 * 86_400 - 1)
    assert len(query_all(sf, f"SELECT Id FROM Contact WHERE Id = '{gone}'")) == 1  # still in the Recycle Bin
    advance(sf_sandbox, 1)
    assert query_all(sf, f"SELECT Id FROM Contact WHERE Id = '{gone}'") == []  # physically deleted
    assert sf.query("SELECT COUNT() FROM Contact WHERE Email = 'g@example.com'")["totalSize"] == 0
    assert undelete(sf_sandbox, gone)[0]["errors"][0]["statusCode"] == "UNDELETE_FAILED"


def test_get_deleted_rules(sf_sandbox, sf):
    _, gone = seed(sf_sandbox, [{"LastName": "Kept"}, {"LastName": "Gone"}])
    advance(sf_sandbox, 90)
    sf.Contact.delete(gone)
    contacts = sf.Contact  # one SFType keeps its last answer's Sforce-Limit-Info
    body = contacts.deleted(T0, T0 + timedelta(minutes=5))
    assert body == {  # the current minute (14:01) is not covered yet; the deletion at 14:01:30 waits for it
        "deletedRecords": [],
        "earliestDateAvailable": stamp(T0 + timedelta(seconds=60) - timedelta(days=15)),
        "latestDateCovered": stamp(T0 + timedelta(minutes=1)),
    }
    advance(sf_sandbox, 90)
    used = contacts.api_usage["api-usage"].used
    body = contacts.deleted(T0 + timedelta(seconds=119), T0 + timedelta(minutes=5))  # seconds are ignored
    assert body["deletedRecords"] == [{"id": gone, "deletedDate": stamp(T0 + timedelta(seconds=90))}]
    assert body["latestDateCovered"] == stamp(T0 + timedelta(minutes=3))
    assert contacts.api_usage["api-usage"].used == used + 1  # one API call
    for start, end in [
        (T0, T0 + timedelta(seconds=119)),  # not more than a minute apart once seconds are dropped
        (T0 - timedelta(days=15), T0),  # before the earliest date available
    ]:
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Contact.deleted(start, end)
        assert errors_of(exc)[0]["errorCode"] == "INVALID_REPLICATION_DATE"
    advance(sf_sandbox, 15 * 86_400)
    assert sf.Contact.deleted(T0 + timedelta(days=1), T0 + timedelta(days=2))["deletedRecords"] == []
