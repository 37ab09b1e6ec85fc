"""Clearing a finished run under the real scheduler: the run's next try decides, writes, reports and settles
afresh, with nothing reused from the earlier try's staged batches or results (a cleared run keeps its run id)."""

from __future__ import annotations

import json
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crm_sync.state.engine import create_state_engine
from crm_sync.state.store import SyncStateStore
from sandbox.testing import SandboxProcess
from tests.integration.crm_edits import CrmEditor, at
from tests.integration.test_dag_sync import writes
from tests.multiworker.proof import DAG_ID, airflow, airflow_env, metadata_rows, start_airflow

pytestmark = [pytest.mark.integration, pytest.mark.slow]

W = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)  # the backfilled window [W, W + 15 min)
MINUTE = timedelta(minutes=1)


def seed_salesforce(sandbox: SandboxProcess, moment: datetime, names: list[str]) -> list[str]:
    """New, unlinked Salesforce contacts stamped `moment`; returns their ids."""
    stamp = moment.isoformat()
    contacts = [
        {"FirstName": name, "LastName": "Clear", "Email": f"{name.lower()}.c@example.com", "LastModifiedDate": stamp}
        for name in names
    ]
    seeded = sandbox.admin("salesforce", "POST", "seed", {"contacts": contacts}).json()
    assert not seeded.get("rejected"), seeded
    return list(seeded["ids"])


def run_of_window(env: dict[str, str]) -> tuple[str, str, int]:
    (row,) = metadata_rows(
        env,
        "SELECT run_id, state, clear_number FROM dag_run WHERE dag_id = :dag AND run_type = 'backfill'",
    )
    return str(row[0]), str(row[1]), int(row[2])


def wait_finished(env: dict[str, str], clear_number: int, deadline: float) -> str:
    """Poll until the backfilled run has been cleared `clear_number` times and finished again; its state."""
    while True:
        rows = metadata_rows(env, "SELECT count(*) FROM dag_run WHERE dag_id = :dag AND run_type = 'backfill'")
        if rows[0][0]:
            _, state, clears = run_of_window(env)
            if clears == clear_number and state in ("success", "failed"):
                return state
        if time.monotonic() > deadline:
            raise TimeoutError("the backfilled run did not finish in time")
        time.sleep(1)


def report_of(staging: Path, run_id: str) -> dict[str, Any]:
    (path,) = [p for p in (staging / DAG_ID).glob("*/report.json") if json.loads(p.read_text())["run_id"] == run_id]
    return json.loads(path.read_text())


def hubspot_contacts(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    return [row["properties"] for row in sandbox.admin("hubspot", "GET", "records").json()["contacts"]]


def test_a_cleared_run_decides_writes_and_reports_afresh(
    tmp_path, sandbox_factory, redis_url, postgres_url, airflow_metadata_template
) -> None:
    sandbox = sandbox_factory(contacts=0, freeze_clock=True, clock=(W + MINUTE).isoformat())
    first_ids = seed_salesforce(sandbox, W + 2 * MINUTE, [f"Ann{n}" for n in range(10)])
    at(sandbox, W + 20 * MINUTE)  # the sync's own writes land after the window
    staging = tmp_path / "staging"
    deadline = time.monotonic() + 900
    with ExitStack() as stack:
        env = airflow_env(
            tmp_path / "home",
            postgres_url,
            redis_url,
            {"AIRFLOW__CRM_SYNC__STAGING_BASE": f"file://{staging}"},
            sandbox,
            db_prefix=f"clear_{uuid.uuid4().hex[:8]}_",
            metadata_template=airflow_metadata_template,
        )
        env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
        start_airflow(stack, env, tmp_path, workers=0, deadline=deadline, migrated=True)
        airflow(env, "backfill", "create", "--dag-id", DAG_ID, "--from-date", W.isoformat(), "--to-date", W.isoformat())
        assert wait_finished(env, 0, deadline) == "success"
        run_id, _, _ = run_of_window(env)
        first = report_of(staging, run_id)
        assert writes(first) == {"hubspot.create": 10}, first["decisions"]
        assert first["outcomes"].get("hubspot.create.ok") == 10, first["rejects"]

        # People go on editing in the same window; then the engineer clears the finished run.
        with CrmEditor(sandbox) as editor:
            for contact_id in first_ids[:3]:
                editor.salesforce(W + 5 * MINUTE, contact_id, {"Title": "Director"})
        new_ids = seed_salesforce(sandbox, W + 6 * MINUTE, ["Bob0", "Bob1"])
        at(sandbox, W + 21 * MINUTE)
        airflow(env, "tasks", "clear", DAG_ID, "-s", W.isoformat(), "-e", W.isoformat(), "-y")
        assert wait_finished(env, 1, deadline) == "success"
        second = report_of(staging, run_id)

        state_url = env["AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT"].replace("postgres://", "postgresql+psycopg://", 1)
        store = SyncStateStore(create_state_engine(state_url))
        snapshots = store.read_snapshots(salesforce_ids=first_ids + new_ids)

    # The second try decided on what the CRMs hold now, and its report counts its own writes only.
    assert second["try"] != first["try"] and second["staged"] != first["staged"]
    assert writes(second) == {"hubspot.create": 2, "hubspot.update": 3}, second["decisions"]
    outcomes = second["outcomes"]
    assert (outcomes.get("hubspot.create.ok"), outcomes.get("hubspot.update.ok")) == (2, 3), outcomes
    assert outcomes.get("salesforce.link.ok") == 2, outcomes
    assert second["rejects"]["count"] == 0, second["rejects"]
    # HubSpot holds each Salesforce contact once, with the edits; the state agrees.
    hubspot = hubspot_contacts(sandbox)
    links = sorted(contact["salesforce_contact_id"] for contact in hubspot)
    assert links == sorted(first_ids + new_ids)
    titles = {contact["salesforce_contact_id"]: contact.get("jobtitle") for contact in hubspot}
    assert {titles[contact_id] for contact_id in first_ids[:3]} == {"Director"}
    assert len(snapshots) == 12
    agreed = {row.salesforce_id: json.loads(row.field_values) for row in snapshots.itertuples()}
    assert {agreed[contact_id].get("title") for contact_id in first_ids[:3]} == {"Director"}, agreed
