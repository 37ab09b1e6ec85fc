"""Settling a run: snapshots only for what both CRMs hold, queue attempts for everything that did not land."""

from __future__ import annotations

import json

import pandas as pd

from include.sync_logic.decisions import DECISION_COLUMNS
from include.sync_logic.settle import NO_ANSWER_CODE, RULES_CODE, settle


def decision(target, action, source_id, target_id=None, agreed=None, reason="", data_hash="h1") -> dict:
    return {
        "target": target,
        "action": action,
        "source_system": "salesforce" if target == "hubspot" else "hubspot",
        "source_id": source_id,
        "target_id": target_id,
        "payload": "{}",
        "changed_fields": "",
        "reason": reason,
        "conflict": False,
        "matched_by": "link",
        "agreed": json.dumps(agreed or {}),
        "data_hash": data_hash,
    }


def result(target, action, ref, ok=True, target_id=None, code=None, message=None) -> dict:
    return {
        "target": target,
        "action": action,
        "ref": ref,
        "ok": ok,
        "target_id": target_id,
        "error_code": code,
        "message": message,
        "dry_run": False,
    }


def test_confirmed_writes_move_the_snapshot_and_failures_become_attempts():
    decisions = pd.DataFrame(
        [
            decision("hubspot", "update", "003A", "101", {"title": "CTO"}),
            decision("salesforce", "update", "101", "003A", {"phone": "+1"}),
            decision("hubspot", "create", "003B", None, {"email": "b@x.com", "title": None}),
            decision("hubspot", "update", "003C", "103", {"title": "X"}),
            decision("salesforce", "update", "104", "003D", {"title": "Y"}),
            decision("salesforce", "reject", "105", None, reason="invalid email"),
            decision("hubspot", "skip", "003E", "106"),
        ],
        columns=DECISION_COLUMNS,
    )
    results = pd.DataFrame(
        [
            result("hubspot", "update", "003A", target_id="101"),
            result("salesforce", "update", "101", target_id="003A"),
            result("hubspot", "create", "003B", target_id="107"),
            result("hubspot", "update", "003C", ok=False, code="VALIDATION_ERROR", message="bad"),
            result("hubspot", "link", "003A", target_id="101"),
        ]
    )
    out = settle(decisions, results)

    by_target = {side: frame for side, frame in zip(("salesforce", "hubspot"), out.snapshots, strict=True)}
    assert by_target["salesforce"][["salesforce_id", "hubspot_id"]].values.tolist() == [["003A", "101"]]
    assert json.loads(by_target["salesforce"]["field_values"].iloc[0]) == {"phone": "+1"}
    hubspot = {(r.salesforce_id, r.hubspot_id): json.loads(r.field_values) for r in by_target["hubspot"].itertuples()}
    assert hubspot == {("003A", "101"): {"title": "CTO"}, ("003B", "107"): {"email": "b@x.com", "title": None}}

    attempts = out.attempts.set_index("source_id")
    assert attempts.loc["003C", ["code", "message"]].tolist() == ["VALIDATION_ERROR", "bad"]
    assert attempts.loc["104", "code"] == NO_ANSWER_CODE  # its load task never answered
    assert attempts.loc["105", ["action", "code", "message"]].tolist() == ["create", RULES_CODE, "invalid email"]
    resolved = set(map(tuple, out.resolved.values.tolist()))
    assert resolved == {("hubspot", "003A"), ("salesforce", "101"), ("hubspot", "003B"), ("hubspot", "003E")}


def test_a_partly_refused_update_stays_in_the_queue():
    """The update of the valid fields landed; the refused field is still owed, so the entry stays open."""
    decisions = pd.DataFrame(
        [
            decision("salesforce", "update", "101", "003A", {"title": "CTO"}),
            decision("salesforce", "reject", "101", "003A", reason="FirstName too long (60 > 40)"),
        ],
        columns=DECISION_COLUMNS,
    )
    out = settle(decisions, pd.DataFrame([result("salesforce", "update", "101")]))
    assert out.resolved.empty
    assert out.attempts[["target", "source_id", "action", "code"]].values.tolist() == [
        ["salesforce", "101", "update", RULES_CODE]
    ]


def test_dry_run_results_and_no_results_change_nothing_but_queue_the_unanswered():
    decisions = pd.DataFrame([decision("hubspot", "update", "003A", "101", {"title": "CTO"})], columns=DECISION_COLUMNS)
    dry = pd.DataFrame([{**result("hubspot", "update", "003A"), "dry_run": True}])
    for results in (dry, None):
        out = settle(decisions, results)
        assert all(frame.empty for frame in out.snapshots)
        assert out.attempts["code"].tolist() == [NO_ANSWER_CODE]


def test_permanent_refusals_are_marked_and_a_refused_field_stays_out_of_the_snapshot():
    decisions = pd.DataFrame(
        [
            decision("salesforce", "update", "101", "003A", {"title": "Intern", "phone": "+1"}),
            decision("salesforce", "create", "102", None, {"email": "d@x.com"}),
            decision("salesforce", "update", "103", "003C", {"phone": "+2"}),
        ],
        columns=DECISION_COLUMNS,
    )
    refused_title = {
        **result("salesforce", "reject", "101", ok=False, target_id="003A", code="FIELD_CUSTOM_VALIDATION_EXCEPTION"),
        "message": "Title must not be Intern",
        "permanent": True,
        "refused_fields": "title",
    }
    results = pd.DataFrame(
        [
            {**result("salesforce", "update", "101", target_id="003A"), "permanent": False},
            refused_title,
            {**result("salesforce", "create", "102", ok=False, code="DUPLICATES_DETECTED"), "permanent": True},
            {**result("salesforce", "update", "103", ok=False, code="UNABLE_TO_LOCK_ROW"), "permanent": False},
        ]
    )
    out = settle(decisions, results)

    salesforce = out.snapshots[0]
    assert json.loads(salesforce.set_index("hubspot_id").loc["101", "field_values"]) == {"phone": "+1"}
    attempts = out.attempts.set_index("source_id")
    assert attempts.loc["101", ["action", "code", "message", "permanent"]].tolist() == [
        "update",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "Title must not be Intern",
        True,
    ]
    assert attempts.loc["102", ["code", "permanent"]].tolist() == ["DUPLICATES_DETECTED", True]
    assert attempts.loc["103", "permanent"] is False  # a locked row passes later
    assert out.resolved.empty  # the title is still owed


def test_a_create_answered_by_linking_an_existing_contact_moves_no_snapshot():
    decisions = pd.DataFrame(
        [decision("hubspot", "create", "003A", None, {"email": "same@x.com", "firstname": "Sales"})],
        columns=DECISION_COLUMNS,
    )
    linked = {**result("hubspot", "create", "003A", target_id="900"), "existing_id": "900"}
    out = settle(decisions, pd.DataFrame([linked]))
    assert all(frame.empty for frame in out.snapshots)  # its values were not written: the next run merges them
    assert out.resolved.values.tolist() == [["hubspot", "003A"]]
    assert out.attempts.empty
