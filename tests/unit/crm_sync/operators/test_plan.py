"""Plan: one side's writes from every decision part, cut into staged batch files, returned as typed shards."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from airflow.sdk import DAG, ObjectStoragePath

from crm_sync.operators.plan import PlanWritesOperator
from crm_sync.staging import read_frame, write_frame
from crm_sync.task_results import BatchDescriptor, ReconcileResult
from include.sync_logic.plan import HUBSPOT_BATCH, SALESFORCE_BULK, SALESFORCE_COLLECTIONS
from include.sync_logic.reconcile import DECISION_COLUMNS
from include.sync_logic.sides import Side


def _decisions(target: Side, action: str, count: int, first: int = 0) -> pd.DataFrame:
    rows = [
        {
            "target": str(target),
            "action": action,
            "source_system": str(target.other),
            "source_id": f"{action}-{first + i:05d}",
            "target_id": None if action == "create" else f"t-{first + i}",
            "payload": "{}",
            "changed_fields": "",
            "reason": "",
            "conflict": False,
            "matched_by": None,
        }
        for i in range(count)
    ]
    return pd.DataFrame(rows, columns=DECISION_COLUMNS)


@pytest.fixture
def reconciled(tmp_path) -> ReconcileResult:
    """Two decision parts (two partitions): Salesforce and HubSpot writes, and skips no plan may take."""
    folder = ObjectStoragePath(f"file://{tmp_path}/try-0")
    parts = [
        pd.concat([_decisions(Side.SALESFORCE, "update", 150), _decisions(Side.HUBSPOT, "create", 120)]),
        pd.concat([_decisions(Side.SALESFORCE, "update", 100, first=150), _decisions(Side.SALESFORCE, "skip", 9)]),
    ]
    urls = [write_frame(folder / "decisions" / f"part-{n:05d}.parquet", part) for n, part in enumerate(parts)]
    return {
        "folder": str(folder),
        "decisions": urls,
        "baseline": [],
        "partitions": 2,
        "counts": {},
        "in_window": {},
        "retries_due": {},
        "snapshots_read": 0,
        "baseline_recorded": 0,
        "known_pairs": 0,
        "tombstones": {"found": [], "restored": [], "api_calls": {}},
        "api": {},
    }


def _plan(side: Any, reconciled: ReconcileResult, **kwargs: Any) -> list[list[BatchDescriptor]]:
    with DAG("crm_contact_sync", schedule=None):
        task = PlanWritesOperator(task_id=f"plan_{side}", side=side, reconcile_result=reconciled, **kwargs)
    return task.execute({})


def _staged_rows(shards: list[list[BatchDescriptor]]) -> list[tuple[str, str, int]]:
    """(action, api, rows) of every batch, each checked against its staged file."""
    found = []
    for shard in shards:
        for batch in shard:
            assert set(batch) == set(BatchDescriptor.__annotations__)
            assert len(read_frame(batch["url"])) == batch["rows"]
            found.append((batch["action"], batch["api"], batch["rows"]))
    return found


def test_a_sides_writes_from_every_part_in_api_sized_batches(reconciled, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_PLAIN", '{"conn_type": "salesforce"}')  # default bulk threshold
    shards = _plan(Side.SALESFORCE, reconciled, max_shards=2, salesforce_conn_id="salesforce_plain")
    assert len(shards) == 2
    assert _staged_rows(shards) == [("update", SALESFORCE_COLLECTIONS, 200), ("update", SALESFORCE_COLLECTIONS, 50)]
    hubspot = _plan(Side.HUBSPOT, reconciled)
    assert _staged_rows(hubspot) == [("create", HUBSPOT_BATCH, 100), ("create", HUBSPOT_BATCH, 20)]
    assert all("/batches/hubspot-create-" in batch["url"] for shard in hubspot for batch in shard)


def test_the_salesforce_bulk_threshold_comes_from_the_connection_extra(reconciled, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_BULKY", '{"conn_type": "salesforce", "extra": {"bulk_threshold": 200}}')
    shards = _plan(Side.SALESFORCE, reconciled, salesforce_conn_id="salesforce_bulky")
    assert _staged_rows(shards) == [("update", SALESFORCE_BULK, 250)]
    assert _staged_rows(_plan(Side.SALESFORCE, reconciled, salesforce_bulk_threshold=1000))[0][1] == (
        SALESFORCE_COLLECTIONS
    )


def test_a_side_that_is_not_a_crm_is_refused_when_the_dag_is_parsed(reconciled) -> None:
    with pytest.raises(ValueError, match="zendesk"):
        _plan("zendesk", reconciled)
