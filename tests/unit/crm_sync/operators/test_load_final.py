"""A load task stages a batch's results only when every record got the CRM's answer, so a retry resends it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from airflow.sdk import DAG, ObjectStoragePath

from crm_sync.hooks.results import RecordResult
from crm_sync.operators.load import LoadContactsOperator
from crm_sync.staging import write_frame
from tests.task_context import FIRST_TRY


class HalfAnsweredLoad(LoadContactsOperator):
    """The real operator, with a CRM that answered one record and left the other unprocessed."""

    def contacts_hook(self, side: Any, *, max_wait_seconds: float | None = None) -> Any:
        return object()

    def write_batch(self, hook: Any, action: str, api: str, frame: pd.DataFrame) -> list:
        return [
            RecordResult(ref="003A", target_id="101", ok=True),
            RecordResult(ref="003B", target_id=None, ok=False, error_code="UNPROCESSED"),
        ]


def test_a_batch_with_unanswered_records_is_not_staged(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__STAGING_BASE", f"file://{tmp_path}")
    batch = write_frame(
        ObjectStoragePath(f"file://{tmp_path}/batches/hubspot-update-00000.parquet"),
        pd.DataFrame({"source_id": ["003A", "003B"], "target_id": ["101", "102"], "payload": ["{}", "{}"]}),
    )
    with DAG("crm_contact_sync", schedule=None):
        task = HalfAnsweredLoad(
            task_id="load_hubspot",
            side="hubspot",
            mapping_path="include/mappings/contacts.yaml",
            shard=[{"url": batch, "action": "update", "api": "hubspot_batch"}],
        )
    with pytest.raises(RuntimeError, match="1 records got no answer"):
        task.execute({"params": {"dry_run": False}, "run_id": "manual__test", "dag_run": FIRST_TRY})
    assert not list(Path(tmp_path).rglob("results/*.parquet"))


def test_refusals_are_final_and_unanswered_records_are_not() -> None:
    assert RecordResult(ref="a", target_id=None, ok=False, error_code="VALIDATION_ERROR").final
    assert not RecordResult(ref="a", target_id=None, ok=False, error_code="NO_RESULT").final
