"""A long rate-limit wait in a load task gives the worker slot back: the task defers to the triggerer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import TaskDeferred

from crm_sync.operators.load import LoadContactsOperator
from crm_sync.ratelimit import RateLimitWaitTooLong
from crm_sync.staging import write_frame
from tests.task_context import FIRST_TRY


class PausedPoolLoad(LoadContactsOperator):
    """The real operator, with the CRM replaced by a pool that says: wait 300 s."""

    def contacts_hook(self, side: Any, *, max_wait_seconds: float | None = None) -> Any:
        return object()

    def write_batch(self, hook: Any, action: str, api: str, frame: pd.DataFrame) -> list:
        raise RateLimitWaitTooLong(300.0, "hubspot pool paused by a 429")


def test_a_long_pool_wait_defers_the_load_task_to_the_triggerer(tmp_path, monkeypatch) -> None:
    from airflow.sdk import ObjectStoragePath

    monkeypatch.setenv("AIRFLOW__CRM_SYNC__STAGING_BASE", f"file://{tmp_path}")
    batch = write_frame(
        ObjectStoragePath(f"file://{tmp_path}/batches/hubspot-update-00000.parquet"),
        pd.DataFrame({"source_id": ["003A"], "target_id": ["101"], "payload": ['{"firstname": "Ann"}']}),
    )
    with DAG("crm_contact_sync", schedule=None):
        task = PausedPoolLoad(
            task_id="load_hubspot",
            side="hubspot",
            mapping_path="include/mappings/contacts.yaml",
            shard=[{"url": batch, "action": "update", "api": "hubspot_batch"}],
        )
    context = {"params": {"dry_run": False}, "run_id": "manual__test", "dag_run": FIRST_TRY}
    before = datetime.now(UTC)
    with pytest.raises(TaskDeferred) as deferred:
        task.execute(context)
    assert deferred.value.method_name == "resume"
    _, kwargs = deferred.value.trigger.serialize()
    wake = kwargs["moment"]
    assert before + timedelta(seconds=299) <= wake <= datetime.now(UTC) + timedelta(seconds=301)
