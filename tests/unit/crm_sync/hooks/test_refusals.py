"""Which refusals are permanent, which fields they name, and how a refused field's own row is staged."""

from __future__ import annotations

import json

import pytest

from crm_sync.hooks.hs_batch import error_result
from crm_sync.hooks.refusals import duplicate_ids, hubspot_refusal, salesforce_bulk_refusal, salesforce_refusal
from crm_sync.hooks.results import REJECT, RecordResult, results_frame, written_without

DUPLICATE = {
    "statusCode": "DUPLICATES_DETECTED",
    "message": "Use one of these records?",
    "fields": [],
    "duplicateResult": {
        "allowSave": True,
        "duplicateRule": "Contact_Email_Alert",
        "matchResults": [{"matchRecords": [{"record": {"Id": "003A"}}, {"record": {"Id": "003B"}}]}],
    },
}


def _values_message(*problems: dict) -> str:
    return "Property values were not valid: " + json.dumps([{"isValid": False, **p} for p in problems])


def test_a_duplicate_is_permanent_names_its_matches_and_no_field():
    refusal = salesforce_refusal([DUPLICATE])
    assert (refusal.code, refusal.permanent, refusal.fields) == ("DUPLICATES_DETECTED", True, ())
    assert "Contact_Email_Alert" in refusal.message and "003A, 003B" in refusal.message
    assert duplicate_ids({"statusCode": "DUPLICATES_DETECTED"}) == []


@pytest.mark.parametrize(
    ("errors", "permanent", "fields"),
    [
        ([{"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "no", "fields": ["Title"]}], True, ("Title",)),
        ([{"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "top of page", "fields": []}], True, ()),
        ([{"statusCode": "INVALID_FIELD_FOR_INSERT_UPDATE", "message": "fls", "fields": ["Phone"]}], True, ("Phone",)),
        (
            [{"statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "message": "bad: X", "fields": ["Level__c"]}],
            True,
            ("Level__c",),
        ),
        ([{"statusCode": "REQUIRED_FIELD_MISSING", "message": "LastName", "fields": ["LastName"]}], True, ()),
        ([{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "busy", "fields": []}], False, ()),
        (
            [
                {"statusCode": "STRING_TOO_LONG", "message": "long", "fields": ["Title"]},
                {"statusCode": "UNABLE_TO_LOCK_ROW", "message": "busy", "fields": []},
            ],
            False,
            (),
        ),
    ],
)
def test_salesforce_refusals_by_code(errors, permanent, fields):
    refusal = salesforce_refusal(errors)
    assert (refusal.permanent, refusal.fields) == (permanent, fields)


def test_bulk_codes():
    assert salesforce_bulk_refusal("DUPLICATES_DETECTED") and not salesforce_bulk_refusal("UNPROCESSED")


@pytest.mark.parametrize("category", ["CONFLICT", "OBJECT_ALREADY_EXISTS"])
def test_both_409_shapes_are_permanent_conflicts_naming_the_existing_contact(category):
    result = error_result("r", {"category": category, "message": "Contact already exists. Existing ID: 42"})
    assert (result.error_code, result.existing_id, result.permanent, result.refused_fields) == (
        category,
        "42",
        True,
        None,
    )


def test_hubspot_invalid_values_name_their_properties():
    message = _values_message(
        {"error": "INVALID_OPTION", "name": "tier", "message": "x was not one of the allowed options: [a]"},
        {"error": "INVALID_EMAIL", "name": "email", "message": "bad"},
    )
    assert hubspot_refusal("VALIDATION_ERROR", message).fields == ("tier", "email")
    unnamed = _values_message({"error": "INVALID_OPTION", "message": "x was not one of the allowed options: [a]"})
    assert hubspot_refusal("VALIDATION_ERROR", unnamed).permanent
    assert hubspot_refusal("VALIDATION_ERROR", unnamed).fields == ()  # a problem without a name: whole record
    assert not hubspot_refusal("VALIDATION_ERROR", "Duplicate email value in batch input: a").permanent
    assert not hubspot_refusal("OBJECT_NOT_FOUND", "gone").permanent


def test_a_record_written_without_its_refused_field_stages_the_refusal_alone():
    refusal = RecordResult(
        "s1",
        "003A",
        False,
        error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
        message="no",
        permanent=True,
        refused_fields="Title",
    )
    written = written_without(RecordResult("s1", "003A", True), refusal)
    frame = results_frame([written, RecordResult("s2", "003B", True)], {"Title": "title"})
    assert frame[["ref", "ok", "action", "refused_fields", "permanent"]].values.tolist() == [
        ["s1", True, None, None, False],
        ["s1", False, REJECT, "title", True],
        ["s2", True, None, None, False],
    ]
    again_refused = written_without(RecordResult("s1", "003A", False, error_code="X", message="other"), refusal)
    assert not again_refused.ok and again_refused.message == "no; other"
