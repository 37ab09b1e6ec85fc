"""The sync state in real DAG runs (`airflow dags test`, sandboxes, Redis, PostgreSQL): backfills after newer
edits, edits to different fields, refused values, the retry queue, and two runs at once."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

from crm_sync.state.engine import create_state_engine
from crm_sync.state.store import SyncStateStore
from sandbox.testing import SandboxProcess
from tests.integration.airflow_project import AirflowProject, DagRun
from tests.integration.conftest import crm_env
from tests.integration.crm_edits import (
    at,
    edit_hubspot,
    edit_salesforce,
    hubspot_contact,
    salesforce_contact,
    seed_pair,
)
from tests.integration.test_dag_sync import assert_linked_both_ways, load_rejects, planned_write_ids, writes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T = datetime.fromisoformat("2026-11-28T10:00:00+00:00")
MINUTE = timedelta(minutes=1)
ANN_SF = {
    "Email": "ann@example.com",
    "FirstName": "Ann",
    "LastName": "Lee",
    "Title": "Engineer",
    "Phone": "+14155550100",
}
ANN_HS = {
    "email": "ann@example.com",
    "firstname": "Ann",
    "lastname": "Lee",
    "jobtitle": "Engineer",
    "phone": "+14155550100",
}


@pytest.fixture
def world(airflow_project, sandbox_factory, clean_redis, state_conn):
    """An empty pair of sandboxes on a frozen clock, wired to Redis and a fresh sync-state database."""
    sandbox = sandbox_factory(contacts=0, freeze_clock=True, clock=(T - 20 * MINUTE).isoformat())
    return airflow_project, sandbox, crm_env(sandbox, clean_redis, state_conn)


def sync(
    project: AirflowProject,
    sandbox: SandboxProcess,
    env: dict[str, str],
    window_end: datetime,
    conf: dict[str, Any] | None = None,
) -> DagRun:
    """A manual run for ``window_end`` syncs [window_end - 15 min, window_end); its writes are stamped 1 min later."""
    at(sandbox, window_end + MINUTE)
    run = project.dags_test(window_end.isoformat(), conf=conf, env=env)
    assert run.report is not None, run.log[-5000:]
    return run


def written(run: DagRun) -> int:
    return sum(writes(run.report).values())


def store_of(state_conn: str) -> SyncStateStore:
    """The test's own look at the sync-state database the DAG runs use."""
    return SyncStateStore(
        create_state_engine(state_conn.split("?")[0].replace("postgres://", "postgresql+psycopg://", 1))
    )


def test_a_backfill_of_an_older_window_keeps_newer_edits_and_the_newer_window_converges(world) -> None:
    project, sandbox, env = world
    sf_id, hs_id = seed_pair(sandbox, T - 14 * MINUTE, ANN_SF, ANN_HS)
    assert sync(project, sandbox, env, T).returncode == 0  # links the pair, records what both hold

    at(sandbox, T + 16 * MINUTE)  # window [T+15, T+30): Salesforce edits title and phone
    edit_salesforce(sandbox, sf_id, {"Title": "Manager", "Phone": "+14155550199"})
    at(sandbox, T + 35 * MINUTE)  # window [T+30, T+45): HubSpot edits the title later
    edit_hubspot(sandbox, hs_id, {"jobtitle": "Director"})

    older = sync(project, sandbox, env, T + 30 * MINUTE)  # the older window, run after the newer edit
    assert older.returncode == 0, older.log[-5000:]
    assert hubspot_contact(sandbox, hs_id)["jobtitle"] == "Director", "a backfill overwrote a newer edit"
    assert salesforce_contact(sandbox, sf_id)["Title"] == "Director"
    assert hubspot_contact(sandbox, hs_id)["phone"] == "+14155550199", "the window's own change was not carried"

    newer = sync(project, sandbox, env, T + 45 * MINUTE)
    assert newer.returncode == 0, newer.log[-5000:]
    assert written(newer) == 0, newer.report["decisions"]
    assert salesforce_contact(sandbox, sf_id)["Title"] == hubspot_contact(sandbox, hs_id)["jobtitle"] == "Director"


def test_edits_to_different_fields_of_one_contact_in_one_window_are_both_kept(world) -> None:
    project, sandbox, env = world
    sf_id, hs_id = seed_pair(sandbox, T - 14 * MINUTE, ANN_SF, ANN_HS)
    assert sync(project, sandbox, env, T).returncode == 0
    at(sandbox, T + 16 * MINUTE)
    edit_salesforce(sandbox, sf_id, {"FirstName": "Anne"})
    at(sandbox, T + 20 * MINUTE)  # later, on the other side, another field
    edit_hubspot(sandbox, hs_id, {"phone": "+14155550199"})

    run = sync(project, sandbox, env, T + 30 * MINUTE)
    assert run.returncode == 0, run.log[-5000:]
    sf, hs = salesforce_contact(sandbox, sf_id), hubspot_contact(sandbox, hs_id)
    assert (sf["FirstName"], sf["Phone"]) == ("Anne", "+14155550199")
    assert (hs["firstname"], hs["phone"]) == ("Anne", "+14155550199")


def test_refused_values_link_both_ways_and_three_more_windows_write_nothing(world) -> None:
    project, sandbox, env = world
    long_name = "C" * 60  # Salesforce FirstName holds 40
    sf_id, hs_id = seed_pair(
        sandbox,
        T - 14 * MINUTE,
        {"Email": "cy@example.com", "FirstName": "Cy", "LastName": "Park"},
        {"email": "cy@example.com", "firstname": "Cy", "lastname": "Park"},
    )
    at(sandbox, T - 12 * MINUTE)
    edit_hubspot(sandbox, hs_id, {"firstname": long_name})  # HubSpot is the newer side

    first = sync(project, sandbox, env, T)
    assert first.returncode == 0, first.log[-5000:]
    assert salesforce_contact(sandbox, sf_id)["HubSpot_Contact_Id__c"] == hs_id
    assert hubspot_contact(sandbox, hs_id)["salesforce_contact_id"] == sf_id
    assert salesforce_contact(sandbox, sf_id)["FirstName"] == "Cy"
    assert "FirstName too long (60 > 40)" in {reject["reason"] for reject in first.report["rejects"]["first"]}
    after_first = (salesforce_contact(sandbox, sf_id), hubspot_contact(sandbox, hs_id))

    for end in (T + 15 * MINUTE, T + 30 * MINUTE, T + 45 * MINUTE):
        run = sync(project, sandbox, env, end)
        assert run.returncode == 0, run.log[-5000:]
        assert written(run) == 0, (end, run.report["decisions"])
    assert (salesforce_contact(sandbox, sf_id), hubspot_contact(sandbox, hs_id)) == after_first
    assert hubspot_contact(sandbox, hs_id)["firstname"] == long_name


def test_a_contact_rejected_for_bad_data_is_written_once_fixed_at_the_source(world, state_conn) -> None:
    project, sandbox, env = world
    stamp = (T - 14 * MINUTE).isoformat()
    sandbox.admin(
        "hubspot",
        "POST",
        "seed",
        {
            "contacts": [
                {"properties": {"email": "dee@@example.com", "lastname": "Dee"}, "createdAt": stamp, "updatedAt": stamp}
            ]
        },
    )
    (hs_id,) = [c["id"] for c in sandbox.admin("hubspot", "GET", "records").json()["contacts"]]
    first = sync(project, sandbox, env, T)
    assert first.returncode == 0, first.log[-5000:]
    queue = store_of(state_conn).entries()
    assert queue[["target", "source_id", "code"]].values.tolist() == [["salesforce", hs_id, "REJECTED_BY_RULES"]]
    assert "invalid email" in queue["message"].iloc[0]

    at(sandbox, T + 20 * MINUTE)
    edit_hubspot(sandbox, hs_id, {"email": "dee@example.com"})
    fixed = sync(project, sandbox, env, T + 30 * MINUTE)
    assert fixed.returncode == 0, fixed.log[-5000:]
    (created,) = [
        c for c in sandbox.admin("salesforce", "GET", "records").json()["contacts"] if c["Email"] == "dee@example.com"
    ]
    assert created["HubSpot_Contact_Id__c"] == hs_id
    assert hubspot_contact(sandbox, hs_id)["salesforce_contact_id"] == created["Id"]
    assert store_of(state_conn).entries().empty


def test_writes_that_outlast_the_task_retries_are_written_by_the_next_run(
    airflow_project, sandbox_factory, clean_redis, new_state_conn
) -> None:
    sandbox = sandbox_factory(contacts=0, freeze_clock=True, clock=(T - 20 * MINUTE).isoformat())
    state_conn = new_state_conn(retry_base_minutes=0.001)  # due again at once: the next run picks them up
    env = {**crm_env(sandbox, clean_redis, state_conn), "AIRFLOW__CRM_SYNC__TASK_RETRIES": "0"}
    stamp = (T - 14 * MINUTE).isoformat()
    people = [{"Email": f"p{i}@example.com", "LastName": f"P{i}", "LastModifiedDate": stamp} for i in range(3)]
    sf_ids = sandbox.admin("salesforce", "POST", "seed", {"contacts": people}).json()["ids"]
    # HubSpot answers every write with a 5xx for longer than the task's own retries last.
    sandbox.admin(
        "hubspot", "POST", "faults", {"error_rate_5xx": 1.0, "path_pattern": r"/batch/(upsert|create|update)"}
    )
    failed = sync(airflow_project, sandbox, env, T)
    assert "load_hubspot" in failed.log
    assert not [c for c in sandbox.admin("hubspot", "GET", "records").json()["contacts"]]
    queue = store_of(state_conn).entries()
    assert sorted(queue["source_id"]) == sorted(sf_ids)
    assert set(queue["code"]) == {"NO_ANSWER"}

    sandbox.admin("hubspot", "POST", "faults", {"error_rate_5xx": 0.0, "path_pattern": None})
    # The next window no longer holds these contacts (their edit is 24 minutes old): only the queue brings them.
    retried = sync(airflow_project, sandbox, env, T + 15 * MINUTE)
    assert retried.returncode == 0, retried.log[-5000:]
    assert retried.report["extracted"]["salesforce"] == 0
    linked = {
        c["properties"].get("salesforce_contact_id")
        for c in sandbox.admin("hubspot", "GET", "records").json()["contacts"]
    }
    assert linked == set(sf_ids)
    assert store_of(state_conn).entries().empty


def test_a_backfill_and_a_scheduled_run_at_once_leave_both_crms_and_the_state_consistent(
    airflow_project, new_airflow_project, sandbox_factory, clean_redis, state_conn
) -> None:
    sandbox = sandbox_factory(
        contacts=150, seed=5, clock=(T - 30 * timedelta(seconds=1)).isoformat(), window_minutes=14
    )
    env = crm_env(sandbox, clean_redis, state_conn)
    other = new_airflow_project()  # its own metadata DB, the same CRMs and state
    runs: dict[str, Any] = {}

    def go(name: str, project: AirflowProject, end: datetime) -> None:
        # The later run finds most contacts just written by the other: the mass-change gate is not the subject.
        runs[name] = project.dags_test(end.isoformat(), conf={"allow_mass_change": True}, env=env)

    threads = [
        threading.Thread(target=go, args=("backfill", airflow_project, T)),
        threading.Thread(target=go, args=("scheduled", other, T + 15 * MINUTE)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name, run in runs.items():
        assert run.returncode == 0, (
            name,
            [line for line in run.log.splitlines() if "rror" in line or "ailed" in line][-30:],
        )
    assert_linked_both_ways(sandbox)

    # Consistent: a full resync over both CRMs and the state plans only what a CRM refused before.
    check = airflow_project.dags_test(
        (T + 30 * MINUTE).isoformat(), conf={"full_resync": True, "dry_run": True}, env=env
    )
    assert check.returncode == 0, check.log[-5000:]
    refused = set().union(*(set(load_rejects(run)["source_id"]) for run in runs.values()))
    assert planned_write_ids(check) <= refused, check.report["decisions"]
