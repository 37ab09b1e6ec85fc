"""The report reads the results wired to it: every task's CRM calls are counted, and a task that failed (its
result None) counts as nothing done instead of costing the run its report."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from airflow.sdk import DAG

from crm_sync.operators.report import SyncReportOperator
from crm_sync.task_results import ExtractResult, LinkBackResult, LoadTotals, ReconcileResult, SettleResult
from include.sync_logic.sides import Side
from tests.task_context import FIRST_TRY

START, END = datetime(2026, 11, 28, 9, 45, tzinfo=UTC), datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
CONTEXT = {
    "params": {},
    "run_id": "manual__test",
    "dag_run": FIRST_TRY,
    "data_interval_start": START,
    "data_interval_end": END,
}


@pytest.fixture(autouse=True)
def staging(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__STAGING_BASE", f"file://{tmp_path}")


def _extract(side: Side, count: int, calls: int) -> ExtractResult:
    return {
        "side": str(side),
        "paths": [],
        "count": count,
        "window_start": START.isoformat(),
        "window_end": END.isoformat(),
        "full_resync": False,
        "api": {f"{side}_api_calls": calls},
    }


def _load(calls: int) -> LoadTotals:
    return {
        "batches": 1,
        "skipped_batches": 0,
        "records": 2,
        "ok": 2,
        "rejected": 0,
        "api": {"hubspot_api_calls": calls},
    }


def _reconciled(folder: str) -> ReconcileResult:
    return {
        "folder": folder,
        "decisions": [],
        "baseline": [],
        "partitions": 1,
        "counts": {"hubspot.create": 2, "salesforce.skip": 1},
        "in_window": {"salesforce": 12, "hubspot": 3},
        "retries_due": {"salesforce": 0, "hubspot": 1},
        "snapshots_read": 4,
        "baseline_recorded": 1,
        "known_pairs": 40,
        "tombstones": {"found": [], "restored": [], "api_calls": {}},
        "api": {"salesforce_api_calls": 1, "hubspot_api_calls": 4},
    }


def _run(**inputs: Any) -> dict[str, Any]:
    with DAG("crm_contact_sync", schedule=None):
        task = SyncReportOperator(
            task_id="report",
            salesforce_conn_id="salesforce_missing",
            hubspot_conn_id="hubspot_missing",
            redis_conn_id="redis_missing",
            state_conn_id="state_missing",
            **inputs,
        )
    result = task.execute(CONTEXT)
    with open(result["report_path"].removeprefix("file://")) as staged:
        assert json.load(staged) == json.loads(json.dumps({k: v for k, v in result.items() if k != "report_path"}))
    return dict(result)


def test_every_wired_result_is_counted(tmp_path) -> None:
    links: LinkBackResult = {"links": {"salesforce": 2, "hubspot": 0}, "api": {"salesforce_api_calls": 1}}
    settled: SettleResult = {"settled": True, "retry_queue": {"pending": 2, "parked": 1}, "snapshots_written": 7}
    report = _run(
        extracts={Side.SALESFORCE: _extract(Side.SALESFORCE, 12, 3), Side.HUBSPOT: _extract(Side.HUBSPOT, 3, 2)},
        reconcile_result=_reconciled(str(tmp_path / "try")),
        loads={Side.HUBSPOT: [_load(5), _load(6)], Side.SALESFORCE: []},
        link_back_result=links,
        settle_result=settled,
    )
    assert report["extracted"] == {"salesforce": 12, "hubspot": 3}
    assert report["decisions"] == {"hubspot.create": 2, "salesforce.skip": 1}
    assert report["api"] == {"salesforce_api_calls": 3 + 1 + 1, "hubspot_api_calls": 2 + 4 + 5 + 6}
    assert report["sync_state"] == {
        "snapshots_read": 4,
        "baseline_recorded": 1,
        "retries_due": {"salesforce": 0, "hubspot": 1},
        "retry_queue": {"pending": 2, "parked": 1},
        "snapshots_written": 7,
        "settled": True,
    }
    assert report["retry_queue"] == {"pending": 2, "parked": 1}
    assert report["staged"] == str(tmp_path / "try")


def test_a_failed_reconcile_still_gets_a_report_with_what_did_happen() -> None:
    report = _run(
        extracts={Side.SALESFORCE: _extract(Side.SALESFORCE, 12, 3), Side.HUBSPOT: None},
        reconcile_result=None,
        loads={Side.HUBSPOT: [], Side.SALESFORCE: []},
        link_back_result=None,
        settle_result=None,
    )
    assert report["extracted"] == {"salesforce": 12, "hubspot": 0}
    assert (report["decisions"], report["outcomes"], report["staged"]) == ({}, {}, None)
    assert report["api"] == {"salesforce_api_calls": 3}
    assert report["sync_state"]["settled"] is False
    assert report["retry_queue"] is None  # the state connection is missing: said in the log, not fatal
    # The pools are looked up on the task's connections (here missing, each named in its error).
    assert "salesforce_missing" in report["rate_limit_pool"]["salesforce"]["error"]
    assert "hubspot_missing" in report["rate_limit_pool"]["hubspot"]["error"]
