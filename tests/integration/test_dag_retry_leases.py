"""Retry-queue entries in concurrent DAG runs, one sync state on PostgreSQL, the sandboxes, Redis: each due entry
is taken by one run, and its attempts count the runs that decided on it. Three `airflow dags test` at once, and
a backfill of three windows beside the scheduled run under the scheduler and a Celery worker."""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.airflow_project import AirflowProject, DagRun
from tests.integration.conftest import crm_env
from tests.integration.crm_edits import at
from tests.integration.test_dag_sync_state import store_of, sync
from tests.multiworker.proof import DAG_ID, WINDOW, airflow, airflow_env, quarter_floor, start_airflow, wait_for_runs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T = datetime.fromisoformat("2026-11-28T10:00:00+00:00")
MINUTE = timedelta(minutes=1)
REFUSED = 8  # HubSpot contacts the rules refuse to write to Salesforce (invalid email)
RUNS = 3


def decided_ids(run_folder: Path, target: str) -> set[str]:
    """Source ids a run decided on for `target` (its staged decision parts; none when it had no candidates)."""
    parts = sorted(run_folder.glob("try-*/decisions/part-*.parquet"))
    if not parts:
        return set()
    frame = pd.concat([pd.read_parquet(path) for path in parts], ignore_index=True)
    return set(frame.loc[frame["target"] == target, "source_id"].astype(str))


def refused_contacts(moment: datetime) -> list[dict[str, object]]:
    """HubSpot contacts the rules refuse to write to Salesforce (invalid email), last modified at `moment`."""
    stamp = moment.isoformat()
    return [
        {"properties": {"email": f"p{i}@@example.com", "lastname": f"P{i}"}, "createdAt": stamp, "updatedAt": stamp}
        for i in range(REFUSED)
    ]


def assert_each_entry_tried_by_one_run(decided: dict[str, set[str]], entries: pd.DataFrame) -> None:
    """Every entry was decided on by exactly one of the runs, and its attempts count the runs that did."""
    tried_by = {hs_id: [run for run, ids in decided.items() if hs_id in ids] for hs_id in entries["source_id"]}
    attempts = dict(zip(entries["source_id"], entries["attempts"], strict=True))
    assert attempts == {hs_id: len(runs) for hs_id, runs in tried_by.items()}, tried_by
    assert all(len(runs) == 1 for runs in tried_by.values()), f"entries tried by several runs at once: {tried_by}"
    assert entries["lease_run_id"].isna().all(), "a settled run left its lease"


def test_concurrent_runs_each_take_a_due_entry_once_and_count_only_their_own_tries(
    airflow_project, new_airflow_project, sandbox_factory, clean_redis, state_conn
) -> None:
    sandbox = sandbox_factory(contacts=0, freeze_clock=True, clock=(T - 20 * MINUTE).isoformat())
    env = crm_env(sandbox, clean_redis, state_conn)
    sandbox.admin("hubspot", "POST", "seed", {"contacts": refused_contacts(T - 14 * MINUTE)})
    hs_ids = {c["id"] for c in sandbox.admin("hubspot", "GET", "records").json()["contacts"]}
    first = sync(airflow_project, sandbox, env, T)  # its window holds them: the rules refuse, the queue keeps them
    assert first.returncode == 0, first.log[-5000:]
    store = store_of(state_conn)
    assert set(store.entries()["source_id"]) == hs_ids
    assert store.release() == REFUSED  # due now, attempts back to 0

    # Three later windows at once, none holding the contacts: only the queue brings them to a run.
    projects: list[AirflowProject] = [airflow_project, *(new_airflow_project() for _ in range(RUNS - 1))]
    ends = [T + (15 * (n + 1)) * MINUTE for n in range(RUNS)]
    at(sandbox, ends[-1] + MINUTE)
    runs: dict[datetime, DagRun] = {}

    def go(project: AirflowProject, end: datetime) -> None:
        runs[end] = project.dags_test(end.isoformat(), env=env)

    threads = [threading.Thread(target=go, args=(project, end)) for project, end in zip(projects, ends, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for end, run in runs.items():
        assert run.returncode == 0, (end, [line for line in run.log.splitlines() if "rror" in line or "ailed" in line])

    decided = {
        f"{end:%H:%M}": decided_ids(run.staging / DAG_ID / run_folder_name(run), "salesforce")
        for end, run in runs.items()
    }
    entries = store.entries()
    assert_each_entry_tried_by_one_run(decided, entries)
    assert set(entries["status"]) == {"pending"}
    store.engine.dispose()


def test_a_backfill_beside_the_scheduled_run_takes_each_due_entry_once(
    tmp_path, clean_redis, sandbox_factory, postgres_url, airflow_metadata_template
) -> None:
    end = quarter_floor(datetime.now(UTC))
    first = end - 4 * WINDOW  # backfill: first .. first + 2 windows; the scheduled run: [end - 15 min, end)
    sandbox = sandbox_factory(contacts=0)
    sandbox.admin("hubspot", "POST", "seed", {"contacts": refused_contacts(first - 2 * WINDOW)})  # in no window
    hs_ids = {c["id"] for c in sandbox.admin("hubspot", "GET", "records").json()["contacts"]}
    staging, logs = tmp_path / "staging", tmp_path / "logs"
    logs.mkdir()
    with ExitStack() as stack:
        env = airflow_env(
            tmp_path / "airflow-home",
            postgres_url,
            clean_redis,
            {"AIRFLOW__CRM_SYNC__STAGING_BASE": f"file://{staging}"},
            sandbox,
            db_prefix=f"leases_{uuid.uuid4().hex[:8]}_",
            metadata_template=airflow_metadata_template,
        )
        store = store_of(env["AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT"])
        store.create_schema()
        queued = pd.DataFrame({"target": "salesforce", "source_id": sorted(hs_ids), "target_id": None})
        queued = queued.assign(action="create", data_hash="seeded", code="REJECTED_BY_RULES", message="invalid email")
        store.record_attempts(queued, run_id="seed")
        assert store.release() == REFUSED  # due now, attempts 0

        deadline = time.monotonic() + 900
        start_airflow(stack, env, logs, 1, deadline, migrated=True)  # unpaused: the scheduled run starts
        backfill = ["--from-date", first.isoformat(), "--to-date", (first + 2 * WINDOW).isoformat()]
        airflow(env, "backfill", "create", "--dag-id", DAG_ID, *backfill, "--max-active-runs", "3")
        runs = wait_for_runs(env, {(first + n * WINDOW).isoformat()[:16] for n in range(3)}, deadline)
        assert {run["state"] for run in runs} == {"success"}, runs
        decided = {folder.name: decided_ids(folder, "salesforce") for folder in (staging / DAG_ID).iterdir()}
        assert len(decided) == len(runs) >= 4
        entries = store.entries()
        store.engine.dispose()
    assert set(entries["source_id"]) == hs_ids
    assert_each_entry_tried_by_one_run(decided, entries)


def run_folder_name(run: DagRun) -> str:
    (folder,) = [path.name for path in (run.staging / DAG_ID).iterdir()]
    return folder
