"""The run check names every failed task, mapped ones by index, and never itself."""

from __future__ import annotations

from crm_sync.operators.check import failed_tasks


def test_failed_and_upstream_failed_tasks_are_named() -> None:
    states = {
        "extract_hubspot": "failed",
        "reconcile": "upstream_failed",
        "load_hubspot_0": "success",
        "load_hubspot_1": "failed",
        "report": "success",
        "check_run": "running",
        "plan_salesforce": "skipped",
    }
    assert failed_tasks(states, "check_run") == {
        "extract_hubspot": "failed",
        "load_hubspot_1": "failed",
        "reconcile": "upstream_failed",
    }


def test_a_clean_run_names_nothing() -> None:
    assert failed_tasks({"report": "success", "check_run": "running", "plan_hubspot": "skipped"}, "check_run") == {}
