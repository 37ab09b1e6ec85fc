"""The read plan in real DAG runs: a first sync looks nothing up, an echo window reads only its own window,
and many lookups against a small side read that side whole instead — with the same result."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from sandbox.testing import SandboxProcess
from tests.integration.crm_edits import at
from tests.integration.test_dag_sync import writes
from tests.integration.test_dag_sync_state import sync

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T = datetime.fromisoformat("2026-11-28T10:00:00+00:00")
MINUTE = timedelta(minutes=1)


@pytest.fixture
def world(airflow_project, sandbox_factory, clean_redis, state_conn):
    from tests.integration.conftest import crm_env

    sandbox = sandbox_factory(contacts=0, freeze_clock=True, clock=(T - 20 * MINUTE).isoformat())
    return airflow_project, sandbox, crm_env(sandbox, clean_redis, state_conn)


def calls(sandbox: SandboxProcess) -> Counter[str]:
    """Requests per CRM endpoint so far."""
    out: Counter[str] = Counter()
    for system in ("salesforce", "hubspot"):
        for endpoint, row in sandbox.admin(system, "GET", "stats").json().items():
            if endpoint != "total":
                out[f"{system} {endpoint}"] += int(row["requests"])
    return out


def lookups(delta: Counter[str]) -> int:
    """HubSpot batch reads plus Salesforce IN queries (the only queries besides the window, count and paging)."""
    return sum(n for endpoint, n in delta.items() if "batch/read" in endpoint)


def seed(sandbox: SandboxProcess, moment: datetime, sf: list[dict], hs: list[dict]) -> None:
    stamp = moment.isoformat()
    if sf:
        sandbox.admin("salesforce", "POST", "seed", {"contacts": [{**c, "LastModifiedDate": stamp} for c in sf]})
    if hs:
        contacts = [{"properties": p, "createdAt": stamp, "updatedAt": stamp} for p in hs]
        sandbox.admin("hubspot", "POST", "seed", {"contacts": contacts})


def people(sandbox: SandboxProcess) -> tuple[list[dict], list[dict]]:
    sf = sandbox.admin("salesforce", "GET", "records").json()["contacts"]
    hs = [c["properties"] for c in sandbox.admin("hubspot", "GET", "records").json()["contacts"]]
    return sf, hs


def test_a_first_sync_finds_every_counterpart_in_the_window_and_an_echo_window_looks_nothing_up(world) -> None:
    project, sandbox, env = world
    shared = [f"both{i}@example.com" for i in range(20)]
    seed(
        sandbox,
        T - 14 * MINUTE,
        [{"Email": e, "LastName": f"S{i}"} for i, e in enumerate(shared + [f"sf{i}@example.com" for i in range(40)])],
        [{"email": e, "lastname": f"S{i}"} for i, e in enumerate(shared + [f"hs{i}@example.com" for i in range(30)])],
    )
    before = calls(sandbox)
    first = sync(project, sandbox, env, T)
    assert first.returncode == 0, first.log[-5000:]
    plan = first.report["read_plan"]
    assert {side: plan[side]["strategy"] for side in plan} == {
        "salesforce": "window_is_whole",
        "hubspot": "window_is_whole",
    }
    assert plan["hubspot"]["contacts"] == 50 and plan["salesforce"]["contacts"] == 60
    assert lookups(calls(sandbox) - before) == 0
    sf, hs = people(sandbox)
    assert len(sf) == len(hs) == 90  # 20 matched by email, 40 + 30 created: no duplicate
    assert all(c.get("HubSpot_Contact_Id__c") for c in sf) and all(p.get("salesforce_contact_id") for p in hs)

    before = calls(sandbox)
    echo = sync(project, sandbox, env, T + 15 * MINUTE)  # holds only the first run's own writes
    assert echo.returncode == 0, echo.log[-5000:]
    assert sum(writes(echo.report).values()) == 0
    assert sum(echo.report["settled_in_window"].values()) >= 90
    assert {plan["strategy"] for plan in echo.report["read_plan"].values()} == {"nothing_to_find"}
    assert lookups(calls(sandbox) - before) == 0


def test_many_lookups_against_a_small_side_read_it_whole_with_the_same_result(world) -> None:
    project, sandbox, env = world
    # HubSpot: 150 contacts from long ago (outside the window); 120 of them share an email with Salesforce.
    seed(sandbox, T - 3 * 60 * MINUTE, [], [{"email": f"p{i}@example.com", "lastname": f"H{i}"} for i in range(150)])
    # Salesforce: 300 new contacts in the window: 600 HubSpot keys to look up (by link id and by email).
    at(sandbox, T - 14 * MINUTE)
    seed(sandbox, T - 14 * MINUTE, [{"Email": f"P{i}@Example.com", "LastName": f"S{i}"} for i in range(30, 330)], [])
    before = calls(sandbox)
    # The 120 matches overwrite 120 of HubSpot's 150 contacts: the mass-change gate would stop it (not the subject).
    run = sync(project, sandbox, env, T, conf={"allow_mass_change": True})
    assert run.returncode == 0, run.log[-5000:]
    plan = run.report["read_plan"]["hubspot"]
    assert plan["strategy"] == "read_whole" and plan["contacts"] == 150
    assert plan["whole_read_calls"] == 2 < plan["lookup_calls"]
    delta = calls(sandbox) - before
    assert lookups(delta) == 0
    assert sum(n for endpoint, n in delta.items() if endpoint == "hubspot GET /crm/v3/objects/contacts") == 2
    sf, hs = people(sandbox)
    by_email = Counter(p["email"] for p in hs)
    assert len(hs) == 150 + 180 and max(by_email.values()) == 1  # 120 matched by email, 180 created
    linked = {p["email"]: p["salesforce_contact_id"] for p in hs if p.get("salesforce_contact_id")}
    assert len(linked) == 300 and all(c.get("HubSpot_Contact_Id__c") for c in sf)
