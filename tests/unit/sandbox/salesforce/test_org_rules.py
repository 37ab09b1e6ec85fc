"""The sandbox org's own rules: duplicate rules honouring the Sforce-Duplicate-Rule-Header, validation rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sandbox.salesforce.schema import CONTACT
from sandbox.salesforce.store import Store
from sandbox.salesforce.validation import RecordFailed, header_allows_save

NOW = datetime(2026, 4, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        (None, False),
        ("allowSave=true", True),
        ("allowSave=false; includeRecordDetails=true", False),
        ("includeRecordDetails=false, allowSave=TRUE", True),
        ("runAsCurrentUser=true", False),
    ],
)
def test_the_header_defaults_to_false(header, allowed):
    assert header_allows_save(header) is allowed


def test_an_alert_rule_blocks_unless_allowed_and_a_block_rule_always():
    store = Store()
    first = store.create(CONTACT, {"LastName": "A", "Email": "a@example.com"}, NOW)
    store.rules.configure({"duplicate_rules": [{"name": "Email_Alert", "match_fields": ["Email"]}]})
    with pytest.raises(RecordFailed) as refused:
        store.create(CONTACT, {"LastName": "B", "Email": "A@example.com"}, NOW)
    (error,) = refused.value.errors
    body = error.as_result()
    assert body["statusCode"] == "DUPLICATES_DETECTED" and body["fields"] == []
    assert [m["record"]["Id"] for m in body["duplicateResult"]["matchResults"][0]["matchRecords"]] == [first]
    second = store.create(CONTACT, {"LastName": "B", "Email": "a@example.com"}, NOW, allow_save=True)
    with pytest.raises(RecordFailed):  # the rule runs on edit too: the saved duplicate matches the first
        store.update(CONTACT, second, {"Title": "CEO"}, NOW)
    store.rules.configure({"duplicate_rules": [{"name": "Email_Block", "action": "block"}]})
    with pytest.raises(RecordFailed):
        store.create(CONTACT, {"LastName": "C", "Email": "a@example.com"}, NOW, allow_save=True)
    store.delete(CONTACT, second, NOW)
    store.delete(CONTACT, first, NOW)
    store.create(CONTACT, {"LastName": "C", "Email": "a@example.com"}, NOW)  # deleted records match nothing


def test_validation_rules_name_their_field_unless_at_the_top_of_the_page():
    store = Store()
    contact = store.create(CONTACT, {"LastName": "A", "Title": "Boss"}, NOW)
    store.rules.configure(
        {
            "validation_rules": [
                {"name": "No_Interns", "field": "Title", "refused_value": "Intern", "message": "No interns"},
                {"name": "No_Test", "field": "LastName", "refused_value": "Test", "at_top": True},
            ]
        }
    )
    with pytest.raises(RecordFailed) as refused:
        store.update(CONTACT, contact, {"Title": " intern ", "LastName": "test"}, NOW)
    assert [(e.status_code, e.fields) for e in refused.value.errors] == [
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", ["Title"]),
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", []),
    ]
    assert store.get(CONTACT, contact)["Title"] == "Boss"
