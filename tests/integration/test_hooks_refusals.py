"""Refusals no retry can pass (issue 18), through the real clients against both sandboxes: Salesforce duplicate
rules and the Sforce-Duplicate-Rule-Header (ignored by Bulk API jobs), validation rules, HubSpot's two 409
shapes, INVALID_OPTION; a refused field leaves the rest of its record written, a taken email links."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
import requests

from crm_sync.hooks.contacts import ContactsHook, ContactWrite
from crm_sync.hooks.hubspot import HubSpotContactsHook
from crm_sync.hooks.results import RecordResult
from crm_sync.hooks.retry import RetryPolicy
from crm_sync.hooks.salesforce import SalesforceContactsHook
from include.sync_logic.sides import Action
from sandbox.testing import SandboxProcess
from tests.integration.conftest import wired_sandbox

pytestmark = pytest.mark.integration

NOW = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
LINK = "salesforce_contact_id"
SF_LINK = "HubSpot_Contact_Id__c"
FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05)
EMAIL_RULE = {"name": "Contact_Email_Alert", "match_fields": ["Email"], "action": "allow"}
INTERN_RULE = {"name": "No_Interns", "field": "Title", "refused_value": "Intern", "message": "Title must not be Intern"}


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[SandboxProcess]:
    with wired_sandbox(tmp_path_factory.mktemp("refusals"), redis_url, 11, NOW) as sandbox:
        yield sandbox


@pytest.fixture
def both(crm: SandboxProcess) -> SandboxProcess:
    """Fresh data, rules and settings in both sandboxes, a fresh pool."""
    redis.Redis.from_url(os.environ["AIRFLOW_CONN_REDIS_DEFAULT"]).flushdb()
    for system in ("salesforce", "hubspot"):
        crm.admin(system, "POST", "reset")
    crm.admin("salesforce", "POST", "rules", json={"duplicate_rules": [], "validation_rules": []})
    crm.admin("hubspot", "POST", "settings", json={"batch_mode": "multi-status", "conflict_shape": "CONFLICT"})
    return crm


def _allow_save(monkeypatch: pytest.MonkeyPatch, value: bool) -> None:
    """The Salesforce connection with the extra `duplicate_rule_allow_save`."""
    conn = json.loads(os.environ["AIRFLOW_CONN_SALESFORCE_DEFAULT"])
    conn["extra"]["duplicate_rule_allow_save"] = value
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps(conn))


def _sf_seed(crm: SandboxProcess, contacts: list[dict[str, Any]]) -> list[str]:
    result = crm.admin("salesforce", "POST", "seed", json={"contacts": contacts}).json()
    assert not result["rejected"], result["rejected"]
    return result["ids"]


def _sf_contact(crm: SandboxProcess, record_id: str) -> dict[str, Any]:
    return next(c for c in crm.admin("salesforce", "GET", "records").json()["contacts"] if c["Id"] == record_id)


def _hs_contacts(crm: SandboxProcess) -> dict[str, dict[str, Any]]:
    return {c["id"]: c["properties"] for c in crm.admin("hubspot", "GET", "records").json()["contacts"]}


def _hs_seed(crm: SandboxProcess, contacts: list[dict[str, Any]]) -> list[str]:
    result = crm.admin("hubspot", "POST", "seed", json={"contacts": [{"properties": c} for c in contacts]}).json()
    assert not result["rejected"], result["rejected"]
    return result["ids"]


def _write(
    hook: ContactsHook,
    action: Action,
    records: list[ContactWrite],
    refs: list[str] | None = None,
    *,
    bulk: bool = False,
) -> list[RecordResult]:
    """Write `records` on the side's link; refs default to the records' positions."""
    link = SF_LINK if isinstance(hook, SalesforceContactsHook) else LINK
    refs = refs or [str(i) for i in range(len(records))]
    return hook.write_contacts(action, records, refs, link_field=link, bulk=bulk)


# -- Salesforce duplicate rules -----------------------------------------------------------------------------


def test_an_alert_only_duplicate_rule_blocks_api_saves_by_default_and_names_the_match(both, monkeypatch):
    (existing,) = _sf_seed(both, [{"Email": "dup@example.com", "LastName": "First"}])
    both.admin("salesforce", "POST", "rules", json={"duplicate_rules": [EMAIL_RULE]})
    record = ContactWrite(None, {"Email": "DUP@example.com", "LastName": "Second", SF_LINK: "501"})

    (refused,) = _write(SalesforceContactsHook(retry_policy=FAST), Action.CREATE, [record], ["501"])
    assert not refused.ok and refused.error_code == "DUPLICATES_DETECTED" and refused.permanent
    assert existing in refused.message and "Contact_Email_Alert" in refused.message
    assert refused.refused_fields is None  # a duplicate is the whole record, no field to leave out

    _allow_save(monkeypatch, True)
    (saved,) = _write(SalesforceContactsHook(retry_policy=FAST), Action.CREATE, [record], ["501"])
    assert saved.ok and saved.created


def test_a_blocking_duplicate_rule_refuses_even_with_allow_save(both, monkeypatch):
    _sf_seed(both, [{"Email": "dup@example.com", "LastName": "First"}])
    both.admin("salesforce", "POST", "rules", json={"duplicate_rules": [{**EMAIL_RULE, "action": "block"}]})
    _allow_save(monkeypatch, True)
    record = ContactWrite(None, {"Email": "dup@example.com", "LastName": "Second", SF_LINK: "502"})
    (refused,) = _write(SalesforceContactsHook(retry_policy=FAST), Action.CREATE, [record])
    assert refused.error_code == "DUPLICATES_DETECTED" and refused.permanent


def test_bulk_api_jobs_ignore_the_header(both, monkeypatch):
    _sf_seed(both, [{"Email": "dup@example.com", "LastName": "First"}])
    both.admin("salesforce", "POST", "rules", json={"duplicate_rules": [EMAIL_RULE]})
    _allow_save(monkeypatch, True)
    records = [
        ContactWrite(None, {"Email": "dup@example.com", "LastName": "Second", SF_LINK: "503"}),
        ContactWrite(None, {"Email": "new@example.com", "LastName": "Third", SF_LINK: "504"}),
    ]
    hook = SalesforceContactsHook(retry_policy=FAST, bulk_poll_seconds=0.01)
    by_ref = {r.ref: r for r in _write(hook, Action.CREATE, records, ["503", "504"], bulk=True)}
    assert by_ref["503"].error_code == "DUPLICATES_DETECTED" and by_ref["503"].permanent
    assert by_ref["504"].ok


# -- Salesforce validation rules ----------------------------------------------------------------------------


def test_a_validation_rule_refuses_its_field_alone_and_the_rest_is_written(both):
    (contact,) = _sf_seed(both, [{"Email": "v@example.com", "LastName": "Val", "Title": "Boss", "Phone": "1"}])
    both.admin("salesforce", "POST", "rules", json={"validation_rules": [INTERN_RULE]})
    hook = SalesforceContactsHook(retry_policy=FAST)
    hook.get_conn()  # the token request
    calls = hook.api_calls
    (result,) = _write(hook, Action.UPDATE, [ContactWrite(contact, {"Title": "Intern", "Phone": "+1 555 0100"})])
    assert result.ok and result.target_id == contact
    assert result.error_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION" and result.permanent
    assert result.refused_fields == "Title" and "Title must not be Intern" in result.message
    stored = _sf_contact(both, contact)
    assert stored["Phone"] == "+1 555 0100" and stored["Title"] == "Boss"
    assert hook.api_calls - calls == 2  # the collection, then the one record again without Title


def test_a_top_of_page_validation_rule_refuses_the_whole_record(both):
    (contact,) = _sf_seed(both, [{"Email": "t@example.com", "LastName": "Top", "Phone": "1"}])
    both.admin("salesforce", "POST", "rules", json={"validation_rules": [{**INTERN_RULE, "at_top": True}]})
    (result,) = _write(
        SalesforceContactsHook(retry_policy=FAST),
        Action.UPDATE,
        [ContactWrite(contact, {"Title": "intern", "Phone": "2"})],
    )
    assert not result.ok and result.permanent and result.refused_fields is None
    assert result.error_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert _sf_contact(both, contact)["Phone"] == "1"


def test_a_rule_naming_a_field_the_record_did_not_send_refuses_it_whole(both):
    """A validation rule sees the whole record: a link-only update of a contact already holding the refused
    title is refused for Title, which leaving nothing out can change."""
    (contact,) = _sf_seed(both, [{"Email": "w@example.com", "LastName": "Whole", "Title": "Intern"}])
    both.admin("salesforce", "POST", "rules", json={"validation_rules": [INTERN_RULE]})
    hook = SalesforceContactsHook(retry_policy=FAST)
    hook.get_conn()  # the token request
    calls = hook.api_calls
    (result,) = _write(hook, Action.UPDATE, [ContactWrite(contact, {SF_LINK: "505"})])
    assert not result.ok and result.permanent and result.refused_fields == "Title"
    assert hook.api_calls - calls == 1  # not sent again


# -- HubSpot: the two 409 shapes, INVALID_OPTION, linking a taken email -------------------------------------


@pytest.mark.parametrize("shape", ["CONFLICT", "OBJECT_ALREADY_EXISTS"])
@pytest.mark.parametrize("mode", ["multi-status", "atomic"])
def test_both_409_shapes_are_record_level_with_the_existing_id(both, shape, mode):
    both.admin("hubspot", "POST", "settings", json={"batch_mode": mode, "conflict_shape": shape})
    (taken,) = _hs_seed(both, [{"email": "taken@example.com", "lastname": "A", LINK: "003OTHER"}])
    records = [ContactWrite(None, {LINK: f"003N{i}", "email": f"n{i}@example.com", "lastname": "N"}) for i in range(3)]
    records.insert(1, ContactWrite(None, {LINK: "003B", "email": "Taken@example.com", "lastname": "B"}))
    results = _write(HubSpotContactsHook(retry_policy=FAST), Action.CREATE, records, ["a", "b", "c", "d"])
    assert [r.ok for r in results] == [True, False, True, True]  # the others still written
    assert results[1].error_code == shape and results[1].existing_id == taken and results[1].permanent


@pytest.mark.parametrize("shape", ["CONFLICT", "OBJECT_ALREADY_EXISTS"])
def test_an_upsert_whose_email_an_unlinked_contact_holds_links_it(both, shape):
    both.admin("hubspot", "POST", "settings", json={"conflict_shape": shape})
    hook = HubSpotContactsHook(retry_policy=FAST)
    unlinked, linked = _hs_seed(
        both,
        [
            {"email": "same@example.com", "firstname": "Hub"},
            {"email": "other@example.com", "firstname": "Hub", LINK: "003OTHER"},
        ],
    )
    records = [
        ContactWrite(None, {LINK: "003NEW1", "email": " SAME@example.com", "firstname": "Sales"}),
        ContactWrite(None, {LINK: "003NEW2", "email": "other@example.com", "firstname": "Sales"}),
        ContactWrite(None, {LINK: "003NEW3", "email": "same@example.com", "firstname": "Twin"}),
    ]
    first, second, third = _write(hook, Action.CREATE, records, ["003NEW1", "003NEW2", "003NEW3"])
    assert first.ok and first.target_id == unlinked and first.existing_id == unlinked
    assert not second.ok and second.existing_id == linked and second.permanent  # linked elsewhere
    assert not third.ok and third.existing_id == unlinked  # the first input took it
    contacts = _hs_contacts(both)
    assert contacts[unlinked][LINK] == "003NEW1"
    assert contacts[unlinked]["firstname"] == "Hub"  # only the link written; values meet next run
    assert contacts[linked][LINK] == "003OTHER"


def test_invalid_option_refuses_its_property_alone(both):
    created = requests.post(
        f"{both.hubspot_url}/crm/v3/properties/contacts",
        json={
            "name": "tier",
            "label": "Tier",
            "type": "enumeration",
            "fieldType": "select",
            "groupName": "contactinformation",
            "options": [{"label": "Gold", "value": "gold"}, {"label": "Silver", "value": "silver"}],
        },
        headers={"Authorization": f"Bearer {both.hubspot_token}"},
        verify=both.ca_bundle,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    (contact,) = _hs_seed(both, [{"email": "opt@example.com", "tier": "gold"}])
    hook = HubSpotContactsHook(retry_policy=FAST)
    (result,) = _write(hook, Action.UPDATE, [ContactWrite(contact, {"tier": "platinum", "jobtitle": "CEO"})])
    assert result.ok and result.refused_fields == "tier" and result.permanent
    assert "INVALID_OPTION" in result.message and result.error_code == "VALIDATION_ERROR"
    stored = _hs_contacts(both)[contact]
    assert stored["jobtitle"] == "CEO" and stored["tier"] == "gold"
