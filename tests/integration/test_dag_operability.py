"""A run's state tells the truth, and the mass-change gate stops a run before any write (real `airflow dags test`)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from tests.conftest import free_port
from tests.integration.conftest import crm_env
from tests.integration.test_dag_sync import contacts

pytestmark = pytest.mark.integration

T = datetime.fromisoformat("2026-11-28T10:00:00+00:00")
NO_TASK_RETRIES = {"AIRFLOW__CRM_SYNC__TASK_RETRIES": "0"}


def test_a_failed_task_fails_the_run_after_the_report_is_written(airflow_project, sandbox_factory, clean_redis) -> None:
    sandbox = sandbox_factory(contacts=40, seed=3, clock=(T - timedelta(seconds=30)).isoformat(), window_minutes=14)
    env = crm_env(sandbox, clean_redis)
    closed = json.loads(env["AIRFLOW_CONN_HUBSPOT_DEFAULT"])
    closed["host"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env.update(NO_TASK_RETRIES, AIRFLOW_CONN_HUBSPOT_DEFAULT=json.dumps(closed))

    run = airflow_project.dags_test(T.isoformat(), env=env)

    assert run.returncode != 0, run.log[-3000:]
    assert run.report is not None, "the report must still be written when a task failed"
    assert run.report["extracted"]["salesforce"] > 0
    assert "did not succeed: extract_hubspot (failed)" in run.log
    assert "reconcile (upstream_failed)" in run.log
    assert "DagRun Finished" in run.log and "state=failed" in run.log


def test_the_mass_change_gate_stops_a_run_before_any_write_and_the_param_lets_it_through(
    airflow_project, sandbox_factory, clean_redis
) -> None:
    sandbox = sandbox_factory(contacts=150, seed=5, clock=(T - timedelta(seconds=30)).isoformat(), window_minutes=14)
    env = {**crm_env(sandbox, clean_redis), **NO_TASK_RETRIES}
    before = {system: contacts(sandbox, system) for system in ("salesforce", "hubspot")}
    gate = {"max_change_share": 0.2, "mass_change_min_count": 10}

    blocked = airflow_project.dags_test(T.isoformat(), conf=gate, env=env)

    assert blocked.returncode != 0, blocked.log[-3000:]
    assert "mass-change gate:" in blocked.log and "rerun with allow_mass_change=true" in blocked.log
    assert "mass_change_gate (failed)" in blocked.log
    assert {system: contacts(sandbox, system) for system in ("salesforce", "hubspot")} == before
    assert blocked.report is not None and blocked.report["outcomes"] == {}

    allowed = airflow_project.dags_test(T.isoformat(), conf={**gate, "allow_mass_change": True}, env=env)

    assert allowed.returncode == 0, allowed.log[-3000:]
    assert "Let through (allow_mass_change)" in allowed.log
    assert sum(n for key, n in allowed.report["outcomes"].items() if key.endswith(".ok")) > 0
    assert {system: contacts(sandbox, system) for system in ("salesforce", "hubspot")} != before
