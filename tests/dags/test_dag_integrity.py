"""The DAG folder parses cleanly, cheaply and offline, and the DAG matches CONTRACT.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pendulum
import pytest

ROOT = Path(__file__).resolve().parents[2]

HEAVY_MODULES = ["pandas", "pyarrow", "hubspot", "simple_salesforce", "redis", "include.sync_logic.reconcile"]

PARSE_SCRIPT = """
import json, sys, time
started = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
imported = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
parsed = time.perf_counter()
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dag_ids": sorted(bag.dag_ids),
    "heavy": [m for m in sys.argv[2].split(",") if m in sys.modules],
    "airflow_import_s": imported - started,
    "dagbag_parse_s": parsed - imported,
}))
"""


@pytest.fixture(scope="module")
def offline_parse(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Parse dags/ in a fresh interpreter with no connections, no Redis and proxies pointing nowhere."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW_CONN_", "AIRFLOW__", "AIRFLOW_HOME", "SANDBOX_"))
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONPATH=f"{ROOT}:{ROOT / 'plugins'}",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
    )
    out = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, str(ROOT / "dags"), ",".join(HEAVY_MODULES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_dag_file_imports_without_errors(offline_parse: dict) -> None:
    assert offline_parse["errors"] == {}
    assert offline_parse["dag_ids"] == ["crm_contact_sync", "crm_contact_sync_events"]


def test_parsing_does_not_import_heavy_modules(offline_parse: dict) -> None:
    assert offline_parse["heavy"] == [], "heavy imports belong inside tasks, not at parse time"
    parse_ms = offline_parse["dagbag_parse_s"] * 1000
    print(f"dag parse: {parse_ms:.0f} ms (airflow import {offline_parse['airflow_import_s']:.2f} s)")


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    parsed = DagBag(dag_folder=str(ROOT / "dags"))
    assert parsed.import_errors == {}
    return parsed


@pytest.fixture(scope="module")
def dag(bag):
    return bag.dags["crm_contact_sync"]


def test_params_match_the_contract(dag) -> None:
    defaults = {name: param.value for name, param in dag.params.items()}
    assert defaults["direction"] == "both"
    assert defaults["dry_run"] is False
    assert defaults["full_resync"] is False
    assert defaults["salesforce_conn_id"] == "salesforce_default"
    assert defaults["hubspot_conn_id"] == "hubspot_default"
    assert defaults["redis_conn_id"] == "redis_default"
    assert defaults["log_pii"] is False
    assert defaults["allow_mass_change"] is False
    assert defaults["max_change_share"] == 0.5
    assert dag.params.get_param("direction").schema["enum"] == [
        "both",
        "salesforce_to_hubspot",
        "hubspot_to_salesforce",
    ]


@pytest.mark.parametrize("dag_id", ["crm_contact_sync", "crm_contact_sync_events"])
def test_every_param_default_passes_the_trigger_form(bag, dag_id) -> None:
    """The UI's trigger form counts an empty-string default as a missing required value (Trigger and Run
    Backfill stay greyed out): a param that may be empty is nullable with default None, and every default
    validates against its own schema. Both DAGs: the event DAG can be triggered by hand too."""
    dag = bag.dags[dag_id]
    for name, param in dag.params.items():
        assert param.value != "", f"{name}: empty-string default; use type ['null', 'string'] and None"
        if param.value is None:
            assert "null" in param.schema["type"], f"{name}: default None needs a nullable type"
    assert dag.params.validate() == {name: param.value for name, param in dag.params.items()}


def _core_timetable(dag):
    from airflow.serialization.encoders import coerce_to_core_timetable

    return coerce_to_core_timetable(dag.timetable)


def test_scheduled_and_backfill_runs_cover_the_quarter_hour_after_their_logical_date(dag) -> None:
    from airflow.timetables.base import DataInterval, TimeRestriction

    timetable = _core_timetable(dag)
    previous = DataInterval(
        pendulum.datetime(2026, 11, 28, 9, 45, tz="UTC"), pendulum.datetime(2026, 11, 28, 10, 0, tz="UTC")
    )
    info = timetable.next_dagrun_info(
        last_automated_data_interval=previous,
        restriction=TimeRestriction(earliest=dag.start_date, latest=None, catchup=True),
    )
    assert info.logical_date == pendulum.datetime(2026, 11, 28, 10, 0, tz="UTC")
    assert info.data_interval.start == info.logical_date
    assert info.data_interval.end == info.logical_date + timedelta(minutes=15)


def test_manual_run_covers_the_quarter_hour_before_its_logical_date(dag) -> None:
    timetable = _core_timetable(dag)
    run_after = pendulum.datetime(2026, 11, 28, 10, 0, tz="UTC")
    interval = timetable.infer_manual_data_interval(run_after=run_after)
    assert (interval.start, interval.end) == (run_after - timedelta(minutes=15), run_after)


def test_tasks_are_wired_as_the_architecture_says(dag) -> None:
    assert set(dag.task_ids) == {
        "preflight",
        "extract_salesforce",
        "extract_hubspot",
        "reconcile",
        "plan_hubspot",
        "plan_salesforce",
        "load_hubspot",
        "load_salesforce",
        "link_back",
        "settle_state",
        "report",
        "mass_change_gate",
        "check_run",
    }
    assert dag.get_task("reconcile").upstream_task_ids == {"extract_salesforce", "extract_hubspot"}
    for plan in ("plan_hubspot", "plan_salesforce"):
        assert "mass_change_gate" in dag.get_task(plan).upstream_task_ids, "no write may bypass the gate"
    assert dag.get_task("extract_hubspot").upstream_task_ids == {"preflight"}
    settle = dag.get_task("settle_state")
    assert settle.upstream_task_ids == {"link_back", "reconcile"} and settle.trigger_rule == "all_done"
    # The report also follows every task whose result it reads (test_task_results_wiring.py).
    assert "settle_state" in dag.get_task("report").upstream_task_ids
    assert dag.get_task("load_hubspot").pool == "crm_sync_hubspot"
    assert dag.get_task("load_salesforce").pool == "crm_sync_salesforce"
    assert dag.timetable.__class__.__name__ == "CronDataIntervalTimetable"


def test_the_run_ends_with_a_check_that_runs_whatever_happened(dag) -> None:
    leaves = [task.task_id for task in dag.tasks if not task.downstream_task_ids]
    assert leaves == ["check_run"], "the check must be the only leaf: its state becomes the run's"
    check = dag.get_task("check_run")
    assert check.trigger_rule == "all_done"
    assert check.upstream_task_ids == {"report"}
    assert dag.get_task("report").trigger_rule == "all_done"
