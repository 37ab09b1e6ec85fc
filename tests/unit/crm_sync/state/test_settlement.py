"""A run's settlement, as the settle task hands it over, is accepted by the store on both databases."""

from __future__ import annotations

import json

import pandas as pd

from crm_sync.state.store import SyncStateStore
from include.sync_logic.decisions import DECISION_COLUMNS
from include.sync_logic.merge import SNAPSHOT_COLUMNS
from include.sync_logic.settle import settle
from tests.unit.include.sync_logic.test_settle import decision, result


def test_a_settlement_lands_in_the_store(store: SyncStateStore) -> None:
    decisions = pd.DataFrame(
        [
            decision("hubspot", "update", "003A", "101", {"title": "CTO"}),
            decision("salesforce", "reject", "102", None, reason="invalid email"),
            decision("salesforce", "update", "103", "003C", {"title": "X"}),
            decision("salesforce", "reject", "103", "003C", reason="FirstName too long (60 > 40)"),
            decision("hubspot", "create", "003D", None, {"title": "Y"}),
        ],
        columns=DECISION_COLUMNS,
    )
    results = pd.DataFrame(
        [
            result("hubspot", "update", "003A", target_id="101"),
            result("salesforce", "update", "103", target_id="003C"),
            result("hubspot", "create", "003D", ok=False, code="VALIDATION_ERROR", message="bad"),
        ]
    )
    # Reconcile records the baseline before any write; settle adds the confirmed writes.
    baseline = pd.DataFrame([["003A", "101", json.dumps({"email": "a@x.com"})]], columns=SNAPSHOT_COLUMNS)
    store.merge_snapshots(baseline, run_id="r1")
    out = settle(decisions, results)
    for frame in out.snapshots:
        if len(frame):
            store.merge_snapshots(frame, run_id="r1")
    store.resolve(out.resolved)
    store.record_attempts(out.attempts, run_id="r1")

    snapshots = store.read_all_snapshots().set_index("salesforce_id")
    assert store.pair_count() == len(snapshots) > 0
    assert json.loads(snapshots.loc["003A", "field_values"]) == {"email": "a@x.com", "title": "CTO"}
    assert json.loads(snapshots.loc["003C", "field_values"]) == {"title": "X"}
    queue = store.entries().set_index("source_id")
    assert queue.loc["102", ["target", "action", "code"]].tolist() == ["salesforce", "create", "REJECTED_BY_RULES"]
    assert queue.loc["103", ["action", "code"]].tolist() == ["update", "REJECTED_BY_RULES"]
    assert queue.loc["003D", ["action", "code"]].tolist() == ["create", "VALIDATION_ERROR"]
    assert store.queue_size() == {"pending": 3, "parked": 0}
