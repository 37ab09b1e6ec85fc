"""The contact history's retry-queue events: a write a CRM refused for good (parked) or one waiting for its next
try, from a real SQLite sync state; an unreadable state leaves them out and the history stands."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from crm_sync.health.contact import contact_history, queue_events
from crm_sync.health.page import contact_page
from crm_sync.pii import EMAIL_MARK
from crm_sync.state.engine import create_state_engine
from crm_sync.state.store import SyncStateStore

RUN = "scheduled__2026-11-28T10:00:00+00:00"
WINDOW = "[2026-11-28T09:45:00+00:00, 2026-11-28T10:00:00+00:00)"
DUPLICATE = "Use one of these records? Contact_Email_Rule matched 003OLD (ann@example.com)"


@pytest.fixture
def state_url(tmp_path) -> str:
    """A SQLite sync state holding a parked refusal of 003A (to HubSpot) and a pending retry of 101 (to Salesforce)."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = SyncStateStore(create_state_engine(url))
    store.create_schema()
    refused = pd.DataFrame(
        [
            ("hubspot", "003A", None, "create", "h1", "DUPLICATES_DETECTED", DUPLICATE, True),
            ("salesforce", "101", "003A", "update", "h2", "UNABLE_TO_LOCK_ROW", "row locked", False),
            ("hubspot", "003Z", None, "create", "h3", "INVALID_EMAIL", "other contact", True),
        ],
        columns=["target", "source_id", "target_id", "action", "data_hash", "code", "message", "permanent"],
    )
    store.record_attempts(refused, run_id=RUN)
    return url


def test_parked_and_pending_entries_are_events_with_the_crms_code_and_a_masked_message(state_url) -> None:
    store = SyncStateStore(create_state_engine(state_url))
    entries = store.entries(source_ids=["003A", "101"])
    masked = queue_events(entries, {RUN: {"run_id": RUN, "window": WINDOW}})
    assert [(e["target"], e["action"], e["source"], e["target_id"], e["window"]) for e in masked] == [
        ("hubspot", "parked", "salesforce:003A", None, WINDOW),
        ("salesforce", "retrying", "hubspot:101", "003A", WINDOW),
    ]
    parked, retrying = masked
    assert parked["reason"].startswith("parked after 1 attempt:")
    assert retrying["reason"].startswith("1 attempt, next try 20")
    (answer,) = parked["answers"]
    assert (answer["action"], answer["ok"], answer["code"]) == ("create", False, "DUPLICATES_DETECTED")
    assert "ann@example.com" not in answer["message"] and EMAIL_MARK in answer["message"]
    shown = queue_events(entries, {RUN: {"run_id": RUN, "window": WINDOW, "log_pii": True}})
    assert shown[0]["answers"][0]["message"] == DUPLICATE  # the run that queued it had log_pii on
    unknown_run = queue_events(entries, {})
    assert unknown_run[0]["window"] == "" and EMAIL_MARK in unknown_run[0]["answers"][0]["message"]


def test_the_history_holds_the_queue_of_the_contacts_ids_and_survives_an_unreadable_state(
    tmp_path, monkeypatch, state_url, caplog
) -> None:
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__STAGING_BASE", f"file://{tmp_path / 'staging'}")
    folder = tmp_path / "staging" / "crm_contact_sync" / "run1"
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"run_id": RUN, "window": WINDOW, "staged": None}))
    monkeypatch.setenv("AIRFLOW_CONN_CRM_SYNC_STATE_TEST", state_url)

    history = contact_history("003A", state_conn_id="crm_sync_state_test")
    assert [(e["action"], e["source"], e["window"]) for e in history["events"]] == [
        ("parked", "salesforce:003A", WINDOW)
    ]
    html = contact_page(history, None)
    assert 'data-key="decision" class="l bad">parked<' in html
    assert (
        "refused DUPLICATES_DETECTED: Use one of these records? Contact_Email_Rule matched 003OLD (&lt;email&gt;)"
        in html
    )

    monkeypatch.setenv("AIRFLOW_CONN_CRM_SYNC_STATE_TEST", f"sqlite:///{tmp_path / 'no-such-dir' / 'state.db'}")
    with caplog.at_level(logging.WARNING, logger="crm_sync.health.queue"):
        history = contact_history("003A", state_conn_id="crm_sync_state_test")
    assert history["events"] == [] and history["ids"] == ["003A"]
    assert "retry queue left out" in caplog.text
