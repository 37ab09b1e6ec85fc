"""`[crm_sync]` settings reach the DAG: its param defaults and task retries; every CRM-facing task takes its
connection ids as templated arguments that render the run's params."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import Environment

ROOT = Path(__file__).resolve().parents[2]
CONN_ARGUMENTS = ("salesforce_conn_id", "hubspot_conn_id", "redis_conn_id", "state_conn_id")


def _dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags["crm_contact_sync"]


def test_a_crm_sync_override_sets_the_param_defaults_and_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__SALESFORCE_CONN_ID", "salesforce_eu")
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__STATE_CONN_ID", "crm_sync_state_eu")
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__ALERT_TO", "ops@example.com")
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__TASK_RETRIES", "5")
    dag = _dag()
    defaults = {name: param.value for name, param in dag.params.items()}
    assert (defaults["salesforce_conn_id"], defaults["state_conn_id"]) == ("salesforce_eu", "crm_sync_state_eu")
    assert defaults["hubspot_conn_id"] == "hubspot_default"
    assert defaults["alert_to"] == "ops@example.com"
    assert {task.retries for task in dag.tasks if task.task_id not in ("preflight", "check_run")} == {5}


def test_crm_tasks_render_their_connection_ids_from_the_runs_params() -> None:
    from crm_sync.operators.base import CrmConnectionsOperator

    dag = _dag()
    run_params = {name: f"{name}_of_this_run" for name in CONN_ARGUMENTS}
    rendered = {}
    for task in dag.tasks:
        if task.is_mapped:  # a load: the operator's defaults apply unless the DAG file overrides them
            assert issubclass(task.operator_class, CrmConnectionsOperator)
            assert not set(task.partial_kwargs) & set(CONN_ARGUMENTS)
            continue
        for name in CONN_ARGUMENTS:
            if hasattr(task, name):
                assert name in task.template_fields, f"{task.task_id}.{name} is not templated"
                template = Environment().from_string(getattr(task, name))
                rendered[task.task_id, name] = template.render(params=run_params)
    assert {key: value for key, value in rendered.items() if value != f"{key[1]}_of_this_run"} == {}
    talking = {task_id for task_id, _ in rendered}
    assert talking == {
        "preflight",
        "extract_salesforce",
        "extract_hubspot",
        "reconcile",
        "plan_hubspot",
        "plan_salesforce",
        "link_back",
        "settle_state",
        "report",
    }
