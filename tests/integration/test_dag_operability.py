"""Operability of real runs (`airflow dags test`): the run's state, the mass-change gate, metrics and alerts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from tests.integration.conftest import crm_env
from tests.integration.receivers import body_text, smtp_receiver, statsd_receiver
from tests.integration.test_dag_sync import contacts
from tests.local_services import free_port

pytestmark = pytest.mark.integration

T = datetime.fromisoformat("2026-11-28T10:00:00+00:00")
NO_TASK_RETRIES = {"AIRFLOW__CRM_SYNC__TASK_RETRIES": "0"}
ALERTS = {"alert_to": "data-eng@example.test", "alert_conn_id": "smtp_alerts"}


def test_a_failed_task_fails_the_run_after_the_report_is_written_and_alerts(
    airflow_project, sandbox_factory, clean_redis, state_conn
) -> None:
    sandbox = sandbox_factory(contacts=40, seed=3, clock=(T - timedelta(seconds=30)).isoformat(), window_minutes=14)
    env = crm_env(sandbox, clean_redis, state_conn)
    closed = json.loads(env["AIRFLOW_CONN_HUBSPOT_DEFAULT"])
    closed["host"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env.update(NO_TASK_RETRIES, AIRFLOW_CONN_HUBSPOT_DEFAULT=json.dumps(closed))

    with smtp_receiver() as smtp:
        env["AIRFLOW_CONN_SMTP_ALERTS"] = smtp.connection()
        run = airflow_project.dags_test(T.isoformat(), conf=ALERTS, env=env)

    assert run.returncode != 0, run.log[-3000:]
    failed = [mail for mail in smtp.messages if "run failed" in mail["Subject"]]
    assert len(failed) == 1, run.log[run.log.find("Executing on_failure") :][:4000]
    assert failed[0]["To"] == "data-eng@example.test"
    assert run.report is not None, "the report must still be written when a task failed"
    assert run.report["run_id"] in failed[0]["Subject"]
    # preflight reaches HubSpot first and fails; everything that needed it is upstream_failed.
    assert "task(s) did not succeed: " in run.log and "preflight (failed)" in run.log
    assert "extract_hubspot (upstream_failed)" in run.log and "reconcile (upstream_failed)" in run.log
    assert "DagRun Finished" in run.log and "state=failed" in run.log


def test_the_mass_change_gate_stops_a_run_before_any_write_and_the_param_lets_it_through(
    airflow_project, sandbox_factory, clean_redis, state_conn
) -> None:
    sandbox = sandbox_factory(contacts=150, seed=5, clock=(T - timedelta(seconds=30)).isoformat(), window_minutes=14)
    env = {**crm_env(sandbox, clean_redis, state_conn), **NO_TASK_RETRIES}
    before = {system: contacts(sandbox, system) for system in ("salesforce", "hubspot")}
    # Overwriting updates only (link-only updates of email matches overwrite nothing): a low bar for this data.
    gate = {"max_change_share": 0.01, "mass_change_min_count": 1}

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


def test_a_run_sends_its_metrics_to_statsd_and_threshold_alerts_by_smtp(
    airflow_project, sandbox_factory, clean_redis, state_conn
) -> None:
    sandbox = sandbox_factory(contacts=120, seed=4, clock=(T - timedelta(seconds=30)).isoformat(), window_minutes=14)
    env = crm_env(sandbox, clean_redis, state_conn)
    conf = {**ALERTS, "alert_reject_share": 0.001, "alert_api_budget_share": 0.00001}

    with statsd_receiver() as statsd, smtp_receiver() as smtp:
        env.update(
            AIRFLOW_CONN_SMTP_ALERTS=smtp.connection(),
            AIRFLOW__METRICS__STATSD_ON="True",
            AIRFLOW__METRICS__STATSD_HOST="127.0.0.1",
            AIRFLOW__METRICS__STATSD_PORT=str(statsd.port),
            AIRFLOW__METRICS__STATSD_PREFIX="airflow",
        )
        run = airflow_project.dags_test(T.isoformat(), conf=conf, env=env)

    assert run.returncode == 0, run.log[-3000:]
    report = run.report
    for key, count in report["outcomes"].items():
        assert statsd.values(f"airflow.crm_sync.records.{key}") == [count], key
    for key, count in report["decisions"].items():
        assert statsd.values(f"airflow.crm_sync.decisions.{key}") == [count], key
    for crm in ("salesforce", "hubspot"):
        assert statsd.values(f"airflow.crm_sync.api_calls.{crm}") == [report["api"][f"{crm}_api_calls"]]
        assert statsd.values(f"airflow.crm_sync.throttled.{crm}") == [
            report["api"][f"{crm}_rate_limit_throttled_responses"]
        ]
        assert len(statsd.values(f"airflow.crm_sync.rate_limit_wait.{crm}")) == 1
    assert statsd.values("airflow.crm_sync.rejects.run_total") == [report["rejects"]["count"]]
    (lag,) = statsd.values("airflow.crm_sync.run_lag_seconds")
    assert lag == report["lag_seconds"] and lag > 0
    daily = report["rate_limit_pool"]["salesforce"]["limits"]["daily_api_requests"]
    assert statsd.values("airflow.crm_sync.pool_used.salesforce.daily_api_requests") == [daily["used"]]

    (alert,) = [mail for mail in smtp.messages if "threshold" in mail["Subject"]]
    text = body_text(alert)
    assert "rejects:" in text and "salesforce daily API budget" in text, (text, report["rate_limit_pool"])
    assert "@" not in text.replace("data-eng@example.test", ""), "no email addresses in alerts unless log_pii"
