"""The HubSpot sandbox as a real process, driven by the unmodified hubspot-api-client 12."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    BatchResponseSimplePublicObject,
    BatchResponseSimplePublicObjectWithErrors,
    PublicGdprDeleteInput,
    PublicMergeInput,
    PublicObjectSearchRequest,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.properties import ApiException as PropertiesApiException
from hubspot.crm.properties import PropertyCreate

from sandbox.hubspot.app import ALL_SCOPES
from sandbox.testing import start_sandbox

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    proc = start_sandbox(
        tmp_path_factory.mktemp("hubspot"), no_salesforce=True, clock=T0.isoformat(), freeze_clock=True
    )
    yield proc
    proc.stop()


@pytest.fixture
def hs(sandbox) -> HubSpot:
    sandbox.admin("hubspot", "POST", "reset")
    sandbox.admin("hubspot", "POST", "limits", {"requests_per_10s": 100_000, "search_requests_per_s": 100_000})
    sandbox.admin("hubspot", "POST", "settings", {"batch_mode": "multi-status", "retry_after_header": False})
    sandbox.admin("hubspot", "POST", "clock", {"set": T0.isoformat()})
    return HubSpot(access_token=sandbox.hubspot_token, host=sandbox.hubspot_url)


def create(hs: HubSpot, **props):
    return hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties=props))


def error_body(exc: ApiException) -> dict:
    return json.loads(exc.body)


# ---- basic API -----------------------------------------------------------------------------------
def test_create_get_update_archive_and_timestamps(sandbox, hs):
    created = create(hs, email="Ada@Example.com", firstname="Ada", lastname="Lovelace")
    assert created.id.isdigit()
    assert created.properties["email"] == "ada@example.com"
    assert created.properties["lastmodifieddate"] == "2026-03-01T12:00:00.000Z"
    assert created.created_at == T0

    by_email = hs.crm.contacts.basic_api.get_by_id("ada@example.com", id_property="email", properties=["lastname"])
    assert by_email.id == created.id
    assert by_email.properties["lastname"] == "Lovelace"

    sandbox.admin("hubspot", "POST", "clock", {"advance_seconds": 90})
    updated = hs.crm.contacts.basic_api.update(created.id, SimplePublicObjectInput(properties={"jobtitle": "Analyst"}))
    assert updated.properties["lastmodifieddate"] == "2026-03-01T12:01:30.000Z"
    assert updated.updated_at == T0 + timedelta(seconds=90)
    assert updated.created_at == T0

    hs.crm.contacts.basic_api.archive(created.id)
    with pytest.raises(ApiException) as missing:
        hs.crm.contacts.basic_api.get_by_id(created.id)
    assert missing.value.status == 404
    assert error_body(missing.value)["category"] == "OBJECT_NOT_FOUND"
    archived = hs.crm.contacts.basic_api.get_page(archived=True)
    assert [c.id for c in archived.results] == [created.id]
    assert archived.results[0].archived is True
    assert hs.crm.contacts.basic_api.get_page().results == []


def test_wrong_token_is_401_with_hubspot_body(sandbox, hs):
    bad = HubSpot(access_token="pat-wrong", host=sandbox.hubspot_url)
    with pytest.raises(ApiException) as exc:
        bad.crm.contacts.basic_api.get_page()
    assert exc.value.status == 401
    body = error_body(exc.value)
    assert body["status"] == "error"
    assert body["category"] == "INVALID_AUTHENTICATION"
    assert body["correlationId"]


def test_list_pages_with_after_and_limit_cap(hs):
    ids = [create(hs, email=f"p{i}@example.com").id for i in range(25)]
    seen, after = [], None
    while True:
        page = hs.crm.contacts.basic_api.get_page(limit=10, after=after, properties=["email"])
        seen += [c.id for c in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert seen == ids
    with pytest.raises(ApiException) as exc:
        hs.crm.contacts.basic_api.get_page(limit=101)
    assert exc.value.status == 400


def test_duplicate_email_is_409_conflict(hs):
    first = create(hs, email="dup@example.com")
    with pytest.raises(ApiException) as exc:
        create(hs, email="  DUP@example.com ")
    assert exc.value.status == 409
    body = error_body(exc.value)
    assert body["category"] == "CONFLICT"
    assert body["message"] == f"Contact already exists. Existing ID: {first.id}"


def test_duplicate_unique_property_is_409_conflict(hs):
    first = create(hs, email="a@example.com", salesforce_contact_id="003000000000001AAA")
    other = create(hs, email="b@example.com")
    with pytest.raises(ApiException) as exc:
        create(hs, email="c@example.com", salesforce_contact_id="003000000000001AAA")
    assert exc.value.status == 409
    assert error_body(exc.value)["category"] == "CONFLICT"
    with pytest.raises(ApiException) as exc:
        hs.crm.contacts.basic_api.update(
            other.id, SimplePublicObjectInput(properties={"salesforce_contact_id": "003000000000001AAA"})
        )
    assert exc.value.status == 409
    assert first.id in error_body(exc.value)["message"]


def test_invalid_email_and_unknown_property_are_400_validation_errors(hs):
    with pytest.raises(ApiException) as exc:
        create(hs, email="someone@intranet.corp")
    assert exc.value.status == 400
    body = error_body(exc.value)
    assert body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith("Property values were not valid: ")
    detail = json.loads(body["message"].removeprefix("Property values were not valid: "))
    assert detail[0]["error"] == "INVALID_EMAIL"
    assert detail[0]["name"] == "email"
    with pytest.raises(ApiException) as exc:
        create(hs, email="ok@example.com", favourite_colour="blue")
    assert "PROPERTY_DOESNT_EXIST" in error_body(exc.value)["message"]
    with pytest.raises(ApiException) as exc:
        create(hs, email="ok@example.com", lastmodifieddate="2020-01-01T00:00:00Z")
    assert "READ_ONLY_VALUE" in error_body(exc.value)["message"]


# ---- batch API -----------------------------------------------------------------------------------
def test_batch_create_201_and_207_with_per_input_errors(hs):
    existing = create(hs, email="taken@example.com")
    data, status, _headers = hs.crm.contacts.batch_api.create_with_http_info(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[{"properties": {"email": f"n{i}@example.com", "lastname": "N"}} for i in range(3)]
        )
    )
    assert status == 201
    assert isinstance(data, BatchResponseSimplePublicObject)
    assert data.status == "COMPLETE"
    assert len(data.results) == 3

    mixed = hs.crm.contacts.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[
                {"properties": {"email": "fresh@example.com"}},
                {"properties": {"email": "TAKEN@example.com"}},
                {"properties": {"email": "broken@@example"}},
                {"properties": {"email": "fresh@example.com"}},
            ]
        )
    )
    assert isinstance(mixed, BatchResponseSimplePublicObjectWithErrors)
    assert [r.properties["email"] for r in mixed.results] == ["fresh@example.com"]
    assert mixed.num_errors == 3
    categories = [(e.status, e.category) for e in mixed.errors]
    assert categories == [("error", "CONFLICT"), ("error", "VALIDATION_ERROR"), ("error", "VALIDATION_ERROR")]
    assert mixed.errors[0].message == f"Contact already exists. Existing ID: {existing.id}"
    assert "INVALID_EMAIL" in mixed.errors[1].message


def test_batch_over_100_inputs_is_400(hs):
    with pytest.raises(ApiException) as exc:
        hs.crm.contacts.batch_api.create(
            BatchInputSimplePublicObjectBatchInputForCreate(inputs=[{"properties": {}} for _ in range(101)])
        )
    assert exc.value.status == 400
    assert error_body(exc.value)["category"] == "VALIDATION_ERROR"


def test_batch_unique_conflict_is_a_per_input_error(hs):
    create(hs, email="a@example.com", salesforce_contact_id="003A")
    result = hs.crm.contacts.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[
                {"properties": {"email": "b@example.com", "salesforce_contact_id": "003A"}},
                {"properties": {"email": "c@example.com", "salesforce_contact_id": "003C"}},
            ]
        )
    )
    assert result.num_errors == 1
    assert result.errors[0].category == "CONFLICT"
    assert result.errors[0].context["propertyName"] == ["salesforce_contact_id"]
    assert [r.properties["salesforce_contact_id"] for r in result.results] == ["003C"]


def test_atomic_batch_mode_fails_the_whole_batch(sandbox, hs):
    sandbox.admin("hubspot", "POST", "settings", {"batch_mode": "atomic"})
    existing = create(hs, email="taken@example.com")
    with pytest.raises(ApiException) as exc:
        hs.crm.contacts.batch_api.create(
            BatchInputSimplePublicObjectBatchInputForCreate(
                inputs=[{"properties": {"email": "new@example.com"}}, {"properties": {"email": "taken@example.com"}}]
            )
        )
    assert exc.value.status == 409
    assert error_body(exc.value)["message"] == f"Contact already exists. Existing ID: {existing.id}"
    assert len(hs.crm.contacts.basic_api.get_page().results) == 1  # nothing of the batch was written


def test_batch_read_by_id_and_email_with_missing(hs):
    a = create(hs, email="a@example.com", firstname="A")
    result = hs.crm.contacts.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": a.id}, {"id": "999999"}], properties=["firstname"], properties_with_history=[]
        )
    )
    assert [r.properties["firstname"] for r in result.results] == ["A"]
    assert result.errors[0].category == "OBJECT_NOT_FOUND"
    assert result.errors[0].context == {"ids": ["999999"]}
    by_email = hs.crm.contacts.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": "A@EXAMPLE.COM"}], id_property="email", properties=["email"], properties_with_history=[]
        )
    )
    assert [r.id for r in by_email.results] == [a.id]


def test_batch_upsert_by_email_and_by_unique_property(hs):
    existing = create(hs, email="old@example.com", firstname="Old")
    by_email = hs.crm.contacts.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                {"id": "old@example.com", "idProperty": "email", "properties": {"firstname": "Renewed"}},
                {"id": "new@example.com", "idProperty": "email", "properties": {"firstname": "New"}},
            ]
        )
    )
    flags = {r.properties["email"]: (r.new, r.properties["firstname"]) for r in by_email.results}
    assert flags == {"old@example.com": (False, "Renewed"), "new@example.com": (True, "New")}
    assert next(r.id for r in by_email.results if not r.new) == existing.id

    by_sf = hs.crm.contacts.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                {
                    "id": "003X",
                    "idProperty": "salesforce_contact_id",
                    "properties": {"email": "x@example.com", "lastname": "X"},
                }
            ]
        )
    )
    assert by_sf.results[0].new is True
    again = hs.crm.contacts.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[{"id": "003X", "idProperty": "salesforce_contact_id", "properties": {"lastname": "Y"}}]
        )
    )
    assert (again.results[0].new, again.results[0].id) == (False, by_sf.results[0].id)


def test_batch_update_and_archive(hs):
    a, b = create(hs, email="a@example.com"), create(hs, email="b@example.com")
    updated = hs.crm.contacts.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": a.id, "properties": {"phone": "1"}}, {"id": "424242", "properties": {"phone": "2"}}]
        )
    )
    assert [r.properties["phone"] for r in updated.results] == ["1"]
    assert updated.errors[0].category == "OBJECT_NOT_FOUND"
    _, status, _ = hs.crm.contacts.batch_api.archive_with_http_info(
        BatchInputSimplePublicObjectId(inputs=[{"id": a.id}, {"id": b.id}])
    )
    assert status == 204
    assert hs.crm.contacts.basic_api.get_page().results == []


# ---- search --------------------------------------------------------------------------------------
def seed_window(sandbox, count: int, start: datetime, step: timedelta) -> None:
    contacts = [
        {
            "properties": {"email": f"s{i}@example.com", "lastname": f"L{i % 7}", "jobtitle": "x" if i % 2 else ""},
            "createdAt": (start - timedelta(days=1)).isoformat(),
            "updatedAt": (start + step * i).isoformat(),
        }
        for i in range(count)
    ]
    result = sandbox.admin("hubspot", "POST", "seed", {"contacts": contacts}).json()
    assert result["created"] == count


def search(hs: HubSpot, **kwargs):
    return hs.crm.contacts.search_api.do_search(PublicObjectSearchRequest(**kwargs))


def test_search_window_on_lastmodifieddate_with_paging(sandbox, hs):
    seed_window(sandbox, 50, T0, timedelta(minutes=1))
    window = {
        "filters": [
            {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(ms(T0 + timedelta(minutes=10)))},
            {"propertyName": "lastmodifieddate", "operator": "LT", "value": str(ms(T0 + timedelta(minutes=25)))},
        ]
    }
    emails, after, totals = [], None, set()
    while True:
        page = search(
            hs,
            filter_groups=[window],
            sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            properties=["email", "lastmodifieddate"],
            limit=4,
            after=after,
        )
        totals.add(page.total)
        emails += [r.properties["email"] for r in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert totals == {15}
    assert emails == [f"s{i}@example.com" for i in range(10, 25)]
    first = search(hs, filter_groups=[window], limit=1, properties=["email"])
    assert set(first.results[0].properties) >= {"email", "hs_object_id", "createdate", "lastmodifieddate"}


def test_admin_age_moves_contacts_out_of_the_search_window(sandbox, hs):
    """Contacts the admin ages by an hour leave a lastmodifieddate window search; a later edit puts one back."""
    seed_window(sandbox, 3, T0, timedelta(minutes=1))
    window = [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(ms(T0))}]}]
    oldest_first = [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    found = search(hs, filter_groups=window, sorts=oldest_first, properties=["email"])
    assert found.total == 3
    assert sandbox.admin("hubspot", "POST", "age", {"seconds": 3600}).json() == {"aged": 3}
    assert search(hs, filter_groups=window, properties=["email"]).total == 0
    first = found.results[0].id
    aged = hs.crm.contacts.basic_api.get_by_id(first, properties=["lastmodifieddate", "hs_lastmodifieddate"])
    hour_before = T0 - timedelta(hours=1)
    assert (aged.updated_at, aged.created_at) == (hour_before, hour_before - timedelta(days=1))
    assert aged.properties["lastmodifieddate"] == aged.properties["hs_lastmodifieddate"] == "2026-03-01T11:00:00.000Z"
    hs.crm.contacts.basic_api.update(first, SimplePublicObjectInput(properties={"jobtitle": "CTO"}))
    assert [r.id for r in search(hs, filter_groups=window, properties=["email"]).results] == [first]


def test_admin_records_of_some_ids(sandbox, hs):
    first, _, third = (create(hs, email=f"{n}@example.com").id for n in "abc")
    some = sandbox.admin("hubspot", "GET", f"records?ids={first},{third},999999,x").json()["contacts"]
    assert sorted(row["id"] for row in some) == sorted([first, third])
    assert len(sandbox.admin("hubspot", "GET", "records").json()["contacts"]) == 3


def test_search_operators_and_or_groups(sandbox, hs):
    seed_window(sandbox, 20, T0, timedelta(seconds=1))

    def emails(*groups, sorts=None) -> list[str]:
        result = search(
            hs, filter_groups=list(groups), sorts=sorts or ["hs_object_id"], limit=200, properties=["email"]
        )
        return [r.properties["email"] for r in result.results]

    assert emails({"filters": [{"propertyName": "email", "operator": "EQ", "value": "S3@EXAMPLE.COM"}]}) == [
        "s3@example.com"
    ]
    assert len(emails({"filters": [{"propertyName": "lastname", "operator": "NEQ", "value": "L0"}]})) == 17
    assert len(emails({"filters": [{"propertyName": "lastname", "operator": "IN", "values": ["l1", "l2"]}]})) == 6
    assert len(emails({"filters": [{"propertyName": "lastname", "operator": "NOT_IN", "values": ["l1"]}]})) == 17
    assert len(emails({"filters": [{"propertyName": "jobtitle", "operator": "HAS_PROPERTY"}]})) == 10
    assert len(emails({"filters": [{"propertyName": "jobtitle", "operator": "NOT_HAS_PROPERTY"}]})) == 10
    between = {
        "propertyName": "lastmodifieddate",
        "operator": "BETWEEN",
        "value": (T0 + timedelta(seconds=5)).isoformat(),
        "highValue": str(ms(T0 + timedelta(seconds=7))),
    }
    assert emails({"filters": [between]}) == ["s5@example.com", "s6@example.com", "s7@example.com"]
    either = emails(
        {"filters": [{"propertyName": "email", "operator": "EQ", "value": "s1@example.com"}]},
        {"filters": [{"propertyName": "email", "operator": "EQ", "value": "s2@example.com"}]},
    )
    assert either == ["s1@example.com", "s2@example.com"]
    ids = search(hs, limit=200, properties=["email"]).results
    pivot = ids[10].id
    gt = emails({"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": pivot}]})
    assert len(gt) == 9
    newest = emails(
        {"filters": [{"propertyName": "lastname", "operator": "EQ", "value": "L1"}]}, sorts=["-lastmodifieddate"]
    )
    assert newest == ["s15@example.com", "s8@example.com", "s1@example.com"]


def test_search_limits_are_enforced(hs):
    def status(**kwargs) -> int:
        try:
            search(hs, **kwargs)
        except ApiException as exc:
            assert error_body(exc)["category"] == "VALIDATION_ERROR"
            return exc.status
        return 200

    flt = {"propertyName": "email", "operator": "HAS_PROPERTY"}
    assert status(limit=200) == 200
    assert status(limit=201) == 400
    assert status(filter_groups=[{"filters": [flt]}] * 5) == 200
    assert status(filter_groups=[{"filters": [flt]}] * 6) == 400
    assert status(filter_groups=[{"filters": [flt] * 11}]) == 400
    assert status(sorts=["email", "lastname"]) == 400
    assert status(filter_groups=[{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "1"}]}]) == 400
    assert status(filter_groups=[{"filters": [{"propertyName": "email", "operator": "LIKE", "value": "1"}]}]) == 400


def test_search_stops_at_10000_results(sandbox, hs):
    seed_window(sandbox, 10_050, T0, timedelta(milliseconds=10))
    near_end = search(hs, limit=200, after="9800", sorts=["hs_object_id"])
    assert near_end.total == 10_050
    assert len(near_end.results) == 200
    assert near_end.paging.next.after == "10000"
    with pytest.raises(ApiException) as exc:
        search(hs, limit=200, after=near_end.paging.next.after)
    assert exc.value.status == 400
    assert error_body(exc.value)["category"] == "VALIDATION_ERROR"


def test_search_excludes_archived(hs):
    a = create(hs, email="a@example.com")
    create(hs, email="b@example.com")
    hs.crm.contacts.basic_api.archive(a.id)
    assert [r.properties["email"] for r in search(hs, properties=["email"]).results] == ["b@example.com"]


# ---- properties ----------------------------------------------------------------------------------
def test_properties_api(hs):
    names = {p.name: p for p in hs.crm.properties.core_api.get_all("contacts").results}
    assert names["salesforce_contact_id"].has_unique_value is True
    assert names["email"].type == "string"
    created = hs.crm.properties.core_api.create(
        "contacts",
        PropertyCreate(
            name="legacy_crm_id",
            label="Legacy CRM ID",
            type="string",
            field_type="text",
            group_name="contactinformation",
            has_unique_value=True,
        ),
    )
    assert created.has_unique_value is True
    assert hs.crm.properties.core_api.get_by_name("contacts", "legacy_crm_id").label == "Legacy CRM ID"
    with pytest.raises(PropertiesApiException) as exc:
        hs.crm.properties.core_api.get_by_name("contacts", "nope")
    assert exc.value.status == 404
    create(hs, email="a@example.com", legacy_crm_id="L1")
    with pytest.raises(ApiException) as dup:
        create(hs, email="b@example.com", legacy_crm_id="L1")
    assert dup.value.status == 409


# ---- rate limits and faults ----------------------------------------------------------------------
def test_ten_secondly_limit_answers_429_with_body_and_headers(sandbox, hs):
    sandbox.admin("hubspot", "POST", "limits", {"requests_per_10s": 3})
    _, _, headers = hs.crm.contacts.basic_api.get_page_with_http_info()
    assert headers["X-HubSpot-RateLimit-Max"] == "3"
    assert headers["X-HubSpot-RateLimit-Remaining"] == "2"
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert "X-HubSpot-RateLimit-Daily-Remaining" in headers
    hs.crm.contacts.basic_api.get_page()
    hs.crm.contacts.basic_api.get_page()
    with pytest.raises(ApiException) as exc:
        hs.crm.contacts.basic_api.get_page()
    assert exc.value.status == 429
    body = error_body(exc.value)
    assert (body["policyName"], body["category"], body["errorType"]) == (
        "TEN_SECONDLY_ROLLING",
        "RATE_LIMITS",
        "RATE_LIMIT",
    )
    assert exc.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in exc.value.headers
    stats = sandbox.admin("hubspot", "GET", "stats").json()
    assert stats["GET /crm/v3/objects/contacts"] == {**stats["GET /crm/v3/objects/contacts"], "requests": 4, "429": 1}

    sandbox.admin("hubspot", "POST", "settings", {"retry_after_header": True})
    with pytest.raises(ApiException) as exc:
        search_free = HubSpot(access_token=sandbox.hubspot_token, host=sandbox.hubspot_url, retry=urllib3.Retry(0))
        search_free.crm.contacts.basic_api.get_page()
    assert 1 <= int(exc.value.headers["Retry-After"]) <= 10


def test_search_secondly_limit_and_no_rate_headers_on_search(sandbox, hs):
    sandbox.admin("hubspot", "POST", "limits", {"search_requests_per_s": 2})
    _, _, headers = hs.crm.contacts.search_api.do_search_with_http_info(PublicObjectSearchRequest())
    assert not any(h.lower().startswith("x-hubspot-ratelimit") for h in headers)
    search(hs)
    with pytest.raises(ApiException) as exc:
        search(hs)
    assert exc.value.status == 429
    assert error_body(exc.value)["policyName"] == "SECONDLY"


def test_faults_bursts_errors_and_drops_reach_the_client(sandbox, hs):
    sandbox.admin("hubspot", "POST", "faults", {"burst_429": 2})
    retrying = HubSpot(
        access_token=sandbox.hubspot_token,
        host=sandbox.hubspot_url,
        retry=urllib3.Retry(
            total=5,
            status_forcelist=(429, 500, 503),
            allowed_methods=None,
            backoff_factor=0,
            respect_retry_after_header=False,
        ),
    )
    assert retrying.crm.contacts.search_api.do_search(PublicObjectSearchRequest()).total == 0
    assert sandbox.admin("hubspot", "GET", "stats").json()["total"]["429"] == 2

    sandbox.admin("hubspot", "POST", "faults", {"error_rate_5xx": 1.0, "seed": 1})
    with pytest.raises(ApiException) as exc:
        hs.crm.contacts.basic_api.get_page()
    assert exc.value.status in (500, 503)
    sandbox.admin("hubspot", "POST", "faults", {"error_rate_5xx": 0.0, "drop_rate": 1.0})
    with pytest.raises(urllib3.exceptions.HTTPError):
        HubSpot(
            access_token=sandbox.hubspot_token, host=sandbox.hubspot_url, retry=urllib3.Retry(0)
        ).crm.contacts.basic_api.get_page()
    sandbox.admin("hubspot", "POST", "faults", {"drop_rate": 0.0})
    assert hs.crm.contacts.basic_api.get_page().results == []


def test_admin_records_show_seeded_timestamps(sandbox, hs):
    seed_window(sandbox, 2, T0 - timedelta(hours=1), timedelta(minutes=5))
    records = sandbox.admin("hubspot", "GET", "records").json()["contacts"]
    assert [r["updatedAt"] for r in records] == ["2026-03-01T11:00:00.000Z", "2026-03-01T11:05:00.000Z"]
    assert records[0]["properties"]["lastmodifieddate"] == "2026-03-01T11:00:00.000Z"


def test_search_after_reset_never_serves_stale_results(sandbox, hs):
    seed_window(sandbox, 3, T0, timedelta(minutes=1))
    before = [r.properties["lastmodifieddate"] for r in search(hs, sorts=["hs_object_id"]).results]
    sandbox.admin("hubspot", "POST", "reset")
    seed_window(sandbox, 3, T0 + timedelta(hours=1), timedelta(minutes=1))
    after = [r.properties["lastmodifieddate"] for r in search(hs, sorts=["hs_object_id"]).results]
    assert before == ["2026-03-01T12:00:00.000Z", "2026-03-01T12:01:00.000Z", "2026-03-01T12:02:00.000Z"]
    assert after == ["2026-03-01T13:00:00.000Z", "2026-03-01T13:01:00.000Z", "2026-03-01T13:02:00.000Z"]


# ---- identity changes: merge, GDPR delete, archive and restore ----------------------------------------
def merge(hs: HubSpot, primary: str, secondary: str):
    return hs.crm.contacts.basic_api.merge(PublicMergeInput(primary_object_id=primary, object_id_to_merge=secondary))


def purge(hs: HubSpot, object_id: str, id_property: str | None = None) -> None:
    hs.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id=object_id, id_property=id_property))


def advance(sandbox, seconds: float) -> None:
    sandbox.admin("hubspot", "POST", "clock", {"advance_seconds": seconds})


MERGE_READ = ["email", "firstname", "lastname", "jobtitle", "hs_additional_emails", "hs_merged_object_ids"]


def test_merge_makes_a_new_record_that_both_old_ids_read_as(sandbox, hs):
    ada = create(hs, email="ada@example.com", firstname="Ada", salesforce_contact_id="003A")
    advance(sandbox, 60)
    bea = create(hs, email="bea@example.com", firstname="Bea", lastname="Byron", jobtitle="Analyst")
    advance(sandbox, 60)
    merged = merge(hs, ada.id, bea.id)

    assert merged.id not in (ada.id, bea.id)
    assert merged.created_at == T0  # the older record's
    assert merged.updated_at == T0 + timedelta(seconds=120)
    assert merged.properties["email"] == "ada@example.com"
    assert merged.properties["firstname"] == "Ada"  # the primary's value wins
    assert merged.properties["lastname"] == "Byron"  # a value only the secondary had is kept
    assert merged.properties["jobtitle"] == "Analyst"
    assert merged.properties["salesforce_contact_id"] == "003A"
    assert merged.properties["hs_additional_emails"] == "bea@example.com"
    assert merged.properties["hs_merged_object_ids"] == f"{ada.id};{bea.id}"

    for old in (ada.id, bea.id):
        read = hs.crm.contacts.basic_api.get_by_id(old, properties=MERGE_READ)
        assert read.id == merged.id and read.properties["hs_merged_object_ids"] == f"{ada.id};{bea.id}"
    batch = hs.crm.contacts.batch_api.read(
        BatchReadInputSimplePublicObjectId(inputs=[{"id": ada.id}, {"id": bea.id}], properties=["email"])
    )
    assert [r.id for r in batch.results] == [merged.id, merged.id]
    by_secondary = hs.crm.contacts.basic_api.get_by_id("bea@example.com", id_property="email")
    assert by_secondary.id == merged.id
    assert [c.id for c in hs.crm.contacts.basic_api.get_page().results] == [merged.id]
    window = [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(ms(T0 + timedelta(seconds=120)))}]
    assert [r.id for r in search(hs, filter_groups=[{"filters": window}]).results] == [merged.id]
    with pytest.raises(ApiException) as taken:
        create(hs, email="bea@example.com")
    assert taken.value.status == 409 and f"Existing ID: {merged.id}" in error_body(taken.value)["message"]

    carl = create(hs, email="carl@example.com")
    again = merge(hs, carl.id, ada.id)  # an old id names the merged record
    assert again.properties["hs_merged_object_ids"] == ";".join(sorted([ada.id, bea.id, merged.id, carl.id], key=int))
    assert again.properties["email"] == "carl@example.com"
    assert again.properties["hs_additional_emails"] == "ada@example.com;bea@example.com"
    assert hs.crm.contacts.basic_api.get_by_id(ada.id).id == again.id


def test_merge_refusals(hs):
    one, two = create(hs, email="one@example.com"), create(hs, email="two@example.com")
    merged = merge(hs, one.id, two.id)
    for primary, secondary, status in [(one.id, merged.id, 400), (merged.id, "999999", 404), ("", two.id, 400)]:
        with pytest.raises(ApiException) as exc:
            merge(hs, primary, secondary)
        assert exc.value.status == status
    hs.crm.contacts.basic_api.archive(merged.id)
    with pytest.raises(ApiException) as archived:
        merge(hs, create(hs, email="three@example.com").id, merged.id)
    assert archived.value.status == 404


def test_gdpr_delete_leaves_no_archived_copy(sandbox, hs):
    gone = create(hs, email="gone@example.com")
    other = create(hs, email="other@example.com")
    hs.crm.contacts.basic_api.archive(other.id)
    purge(hs, "gone@example.com", id_property="email")
    purge(hs, other.id)  # an archived contact can be purged by its id
    for contact_id in (gone.id, other.id):
        for archived in (False, True):
            with pytest.raises(ApiException) as exc:
                hs.crm.contacts.basic_api.get_by_id(contact_id, archived=archived)
            assert exc.value.status == 404
    assert hs.crm.contacts.basic_api.get_page(archived=True).results == []
    assert sandbox.admin("hubspot", "GET", "records").json()["contacts"] == []
    read = hs.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(inputs=[{"id": gone.id}]))
    assert read.errors[0].category == "OBJECT_NOT_FOUND"

    with pytest.raises(ApiException) as unknown:
        purge(hs, "424242")
    assert unknown.value.status == 404
    purge(hs, "never@example.com", id_property="email")  # unknown email: blocklisted, still 204
    seeded = sandbox.admin("hubspot", "POST", "seed", {"contacts": [{"properties": {"email": "never@example.com"}}]})
    assert seeded.json()["created"] == 0 and "permanently deleted" in seeded.json()["rejected"][0]["reason"]
    assert create(hs, email="gone@example.com").id  # the API may add a blocklisted email back


def test_gdpr_delete_of_a_merged_record_ends_its_old_ids(hs):
    one, two = create(hs, email="m1@example.com"), create(hs, email="m2@example.com")
    merged = merge(hs, one.id, two.id)
    purge(hs, one.id)
    for contact_id in (one.id, two.id, merged.id):
        with pytest.raises(ApiException) as exc:
            hs.crm.contacts.basic_api.get_by_id(contact_id)
        assert exc.value.status == 404


def test_archive_then_restore_keeps_the_id(sandbox, hs):
    first, second = create(hs, email="first@example.com"), create(hs, email="second@example.com")
    advance(sandbox, 30)
    hs.crm.contacts.basic_api.archive(first.id)
    hs.crm.contacts.batch_api.archive(BatchInputSimplePublicObjectId(inputs=[{"id": second.id}]))
    listed = hs.crm.contacts.basic_api.get_page(archived=True, properties=["email"]).results
    assert [(c.id, c.archived) for c in listed] == [(first.id, True), (second.id, True)]
    assert listed[0].archived_at == T0 + timedelta(seconds=30)
    assert hs.crm.contacts.basic_api.get_by_id(first.id, archived=True).archived is True
    archived_batch = hs.crm.contacts.batch_api.read(
        BatchReadInputSimplePublicObjectId(inputs=[{"id": first.id}, {"id": second.id}]), archived=True
    )
    assert sorted(r.id for r in archived_batch.results) == sorted([first.id, second.id])
    assert hs.crm.contacts.basic_api.get_page().results == []

    advance(sandbox, 30)
    answer = sandbox.admin("hubspot", "POST", "restore", {"ids": [first.id]}).json()
    assert answer == {"restored": [first.id], "failed": []}
    back = hs.crm.contacts.basic_api.get_by_id(first.id, properties=["email"])
    assert back.id == first.id and back.archived is False and back.properties["email"] == "first@example.com"
    assert back.updated_at == T0 + timedelta(seconds=60)  # a restore moves lastmodifieddate
    window = [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(ms(T0 + timedelta(seconds=60)))}]
    assert [r.id for r in search(hs, filter_groups=[{"filters": window}]).results] == [first.id]
    with pytest.raises(ApiException) as taken:
        create(hs, email="first@example.com")
    assert taken.value.status == 409

    taker = create(hs, email="second@example.com")  # an archived contact's email is free to take
    blocked = sandbox.admin("hubspot", "POST", "restore", {"ids": [second.id, first.id, "999"]}).json()
    assert blocked["restored"] == []
    assert [f["id"] for f in blocked["failed"]] == [second.id, first.id, "999"]
    assert blocked["failed"][0]["reason"] == f"Contact already exists. Existing ID: {taker.id}"
    hs.crm.contacts.basic_api.archive(taker.id)
    advance(sandbox, 91 * 86_400)
    late = sandbox.admin("hubspot", "POST", "restore", {"ids": [taker.id]}).json()
    assert "more than 90 days" in late["failed"][0]["reason"]


def test_merge_and_gdpr_delete_need_the_write_scope_and_count_as_calls(sandbox, hs):
    one, two = create(hs, email="s1@example.com"), create(hs, email="s2@example.com")
    _, _, headers = hs.crm.contacts.basic_api.merge_with_http_info(
        PublicMergeInput(primary_object_id=one.id, object_id_to_merge=two.id)
    )
    _, _, after = hs.crm.contacts.basic_api.get_page_with_http_info()
    remaining = int(headers["X-HubSpot-RateLimit-Remaining"])
    assert int(after["X-HubSpot-RateLimit-Remaining"]) == remaining - 1
    stats = sandbox.admin("hubspot", "GET", "stats").json()
    assert stats["POST /crm/v3/objects/contacts/merge"]["requests"] == 1
    sandbox.admin("hubspot", "POST", "settings", {"scopes": ["crm.objects.contacts.read"]})
    try:
        for call in (lambda: merge(hs, one.id, two.id), lambda: purge(hs, one.id)):
            with pytest.raises(ApiException) as exc:
                call()
            assert exc.value.status == 403 and error_body(exc.value)["category"] == "MISSING_SCOPES"
    finally:
        sandbox.admin("hubspot", "POST", "settings", {"scopes": list(ALL_SCOPES)})
