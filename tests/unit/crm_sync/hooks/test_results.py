"""Per-record results: Salesforce collections, Bulk results, HubSpot batch responses."""

from __future__ import annotations

from crm_sync.hooks.hs_batch import match_batch
from crm_sync.hooks.results import RecordResult, existing_id_from_message, results_frame
from crm_sync.hooks.sf_writes import collection_results


def test_salesforce_collection_results_keep_salesforce_codes():
    response = [
        {"id": "003A", "success": True, "errors": [], "created": True},
        {
            "id": None,
            "success": False,
            "errors": [{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]"}],
        },
        {"id": "003C", "success": True, "errors": [], "created": False},
    ]
    results = collection_results(response, ["a", "b", "c"], "upsert")
    assert results[0] == RecordResult("a", "003A", True, created=True)
    assert results[1] == RecordResult(
        "b",
        None,
        False,
        error_code="REQUIRED_FIELD_MISSING",
        message="Required fields are missing: [LastName]",
        permanent=True,  # the record's data: sending it again unchanged cannot pass
    )
    assert results[2].created is False


def test_hubspot_conflict_names_the_existing_contact():
    assert existing_id_from_message("Contact already exists. Existing ID: 12345") == "12345"
    assert existing_id_from_message("something else") is None


def test_hubspot_batch_matches_by_trace_id_and_context():
    body = {
        "results": [
            {"id": "11", "objectWriteTraceId": "0", "properties": {}, "new": True},
            {"id": "13", "properties": {"email": "C@example.com"}, "new": True},
        ],
        "errors": [
            {
                "category": "CONFLICT",
                "message": "Contact already exists. Existing ID: 99",
                "context": {"objectWriteTraceId": ["1"]},
            }
        ],
    }
    results = match_batch(["r0", "r1", "r2"], ["a@example.com", "b@example.com", "c@example.com"], "email", body)
    assert results[0] == RecordResult("r0", "11", True, created=True)
    assert results[1].error_code == "CONFLICT" and results[1].existing_id == "99" and results[1].target_id is None
    assert results[2] == RecordResult("r2", "13", True, created=True)


def test_hubspot_batch_single_unmatched_error_goes_to_the_single_missing_input():
    body = {
        "results": [{"id": "5", "properties": {"salesforce_contact_id": "003A"}, "new": False}],
        "errors": [{"category": "VALIDATION_ERROR", "message": "Property values were not valid", "context": {}}],
    }
    results = match_batch(["x", "y"], ["003A", "003B"], "salesforce_contact_id", body)
    assert results[0] == RecordResult("x", "5", True, created=False)
    assert results[1].error_code == "VALIDATION_ERROR"


def test_hubspot_update_not_found_is_matched_by_id():
    body = {"results": [], "errors": [{"category": "OBJECT_NOT_FOUND", "message": "gone", "context": {"ids": ["7"]}}]}
    (result,) = match_batch(["r"], ["7"], "id", body)
    assert result == RecordResult("r", None, False, error_code="OBJECT_NOT_FOUND", message="gone")


def test_results_frame_has_one_row_per_result():
    frame = results_frame([RecordResult("a", "1", True), RecordResult("b", None, False, error_code="X")])
    assert list(frame["ref"]) == ["a", "b"] and list(frame.columns)[:3] == ["ref", "target_id", "ok"]
    assert frame.to_dict("records")[1]["target_id"] is None  # None, not NaN: JSON-safe
