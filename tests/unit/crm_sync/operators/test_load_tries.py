"""A batch is sent once per try of a run: a task retry skips what its try staged, a cleared run sends again."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd
from airflow.sdk import DAG, ObjectStoragePath

from crm_sync.hooks.results import RecordResult
from crm_sync.operators.load import LoadContactsOperator, results_path
from crm_sync.staging import read_frame, write_frame
from tests.task_context import FIRST_TRY, dag_run


class CountingLoad(LoadContactsOperator):
    """The real operator with the CRM replaced by a list of the batches sent."""

    sent: list[str]

    def contacts_hook(self, side: Any, *, max_wait_seconds: float | None = None) -> Any:
        return SimpleNamespace(api_stats=lambda: {"hubspot_api_calls": len(self.sent)})

    def write_batch(self, hook: Any, action: str, api: str, frame: pd.DataFrame) -> list[RecordResult]:
        self.sent.append(action)
        return [RecordResult(ref=str(ref), target_id="101", ok=True) for ref in frame["source_id"]]


def _load(tmp_path) -> tuple[CountingLoad, str]:
    batch = write_frame(
        ObjectStoragePath(f"file://{tmp_path}/run/try-0/batches/hubspot-update-00000.parquet"),
        pd.DataFrame({"source_id": ["003A"], "target_id": ["101"], "payload": ['{"firstname": "Ann"}']}),
    )
    with DAG("crm_contact_sync", schedule=None):
        task = CountingLoad(
            task_id="load_hubspot",
            side="hubspot",
            mapping_path="include/mappings/contacts.yaml",
            shard=[{"url": batch, "action": "update", "api": "hubspot_batch"}],
        )
    task.sent = []
    return task, batch


def _context(run: Any) -> dict[str, Any]:
    return {"params": {"dry_run": False}, "run_id": "scheduled__2026-11-28T10:00:00+00:00", "dag_run": run}


def test_results_sit_beside_the_batches_of_the_try_that_planned_them(tmp_path) -> None:
    _, batch = _load(tmp_path)
    assert str(results_path(batch)) == f"file://{tmp_path}/run/try-0/results/hubspot-update-00000.parquet"


def test_a_task_retry_in_the_same_try_does_not_send_a_staged_batch_again(tmp_path) -> None:
    task, _ = _load(tmp_path)
    first = task.execute(_context(FIRST_TRY))
    again = task.execute(_context(FIRST_TRY))
    assert task.sent == ["update"]
    assert (first["batches"], again["batches"], again["skipped_batches"]) == (1, 0, 1)


def test_a_cleared_run_sends_the_batch_again_and_stages_its_own_answer(tmp_path) -> None:
    task, batch = _load(tmp_path)
    task.execute(_context(FIRST_TRY))
    cleared = task.execute(_context(dag_run(clear_number=1)))
    assert task.sent == ["update", "update"]
    assert (cleared["batches"], cleared["skipped_batches"]) == (1, 0)
    staged = read_frame(str(results_path(batch)))
    assert staged["try"].tolist() == [f"1-{FIRST_TRY.start_date:%Y%m%dT%H%M%S%f}"]


def test_a_run_replaced_under_the_same_id_sends_again(tmp_path) -> None:
    """`airflow dags test` replaces an earlier run of its date: same run id, clear number 0, a new start."""
    task, _ = _load(tmp_path)
    task.execute(_context(FIRST_TRY))
    task.execute(_context(dag_run(start_date=pd.Timestamp("2026-11-28T11:00:00Z").to_pydatetime())))
    assert task.sent == ["update", "update"]
