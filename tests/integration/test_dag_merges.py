"""Merges made inside the CRMs, in real DAG runs (`airflow dags test`, sandboxes, Redis, PostgreSQL): the survivor
keeps its pair and its agreed values, and the merged-away contact's counterpart never re-creates it."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from sandbox.testing import SandboxProcess
from tests.integration.crm_edits import (
    at,
    edit_hubspot,
    edit_salesforce,
    hubspot_contact,
    salesforce_contact,
    seed_pair,
)
from tests.integration.test_dag_sync import decisions
from tests.integration.test_dag_sync_state import MINUTE, T, store_of, sync, written

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ANN_SF = {"Email": "ann@example.com", "FirstName": "Ann", "LastName": "Lee", "Title": "Engineer"}
ANN_HS = {"email": "ann@example.com", "firstname": "Ann", "lastname": "Lee", "jobtitle": "Engineer"}
BOB_SF = {"Email": "bob@example.com", "FirstName": "Bob", "LastName": "Roe", "Title": "Analyst"}
BOB_HS = {"email": "bob@example.com", "firstname": "Bob", "lastname": "Roe", "jobtitle": "Analyst"}


@pytest.fixture
def world(airflow_project, sandbox_factory, clean_redis, state_conn):
    """Two linked pairs (Ann, Bob) on a frozen clock, after a first run at T."""
    from tests.integration.conftest import crm_env

    sandbox = sandbox_factory(contacts=0, freeze_clock=True, clock=(T - 20 * MINUTE).isoformat())
    env = crm_env(sandbox, clean_redis, state_conn)
    ann = seed_pair(sandbox, T - 14 * MINUTE, ANN_SF, ANN_HS)
    bob = seed_pair(sandbox, T - 13 * MINUTE, BOB_SF, BOB_HS)
    synced(airflow_project, sandbox, env, T)
    return airflow_project, sandbox, env, ann, bob


def live_contacts(sandbox: SandboxProcess) -> dict[str, list[str]]:
    sf = sandbox.admin("salesforce", "GET", "records").json()["contacts"]
    hs = sandbox.admin("hubspot", "GET", "records").json()["contacts"]
    return {
        "salesforce": sorted(row["Id"] for row in sf if not row.get("IsDeleted")),
        "hubspot": sorted(row["id"] for row in hs if not row.get("archived")),
    }


def merge_hubspot(sandbox: SandboxProcess, primary: str, secondary: str) -> str:
    """A person merging two HubSpot contacts (the public merge endpoint); returns the new record's id."""
    with requests.Session() as session:
        session.trust_env = False
        resp = session.post(
            f"{sandbox.hubspot_url}/crm/v3/objects/contacts/merge",
            json={"primaryObjectId": primary, "objectIdToMerge": secondary},
            headers={"Authorization": f"Bearer {sandbox.hubspot_token}"},
            timeout=30,
        )
    resp.raise_for_status()
    return str(resp.json()["id"])


def merge_salesforce(sandbox: SandboxProcess, master: str, loser: str, values: dict[str, Any] | None = None) -> None:
    """A person merging two Salesforce contacts (SOAP merge(), played by the sandbox's admin route)."""
    answer = sandbox.admin(
        "salesforce", "POST", "merge", {"masterRecord": {"Id": master, **(values or {})}, "recordToMergeIds": [loser]}
    ).json()
    assert answer["success"], answer


def synced(project, sandbox: SandboxProcess, env: dict[str, str], window_end) -> Any:
    """A run that must succeed; a failure shows the first failed task's traceback."""
    run = sync(project, sandbox, env, window_end)
    failed = run.log.find("Task failed with exception")
    assert run.returncode == 0, run.log[failed : failed + 6000] if failed >= 0 else run.log[-5000:]
    return run


def detection_calls(run) -> dict[str, int]:
    """API calls the run spent following merges, per CRM (the report's `merges`)."""
    return {side: run.report["merges"][f"{side}_api_calls"] for side in ("salesforce", "hubspot")}


def history(run, query: str) -> list[dict[str, Any]]:
    """The sync-health view's contact history of `query`, read from this run's staging."""
    from crm_sync.health.contact import contact_history

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__CRM_SYNC__STAGING_BASE", f"file://{run.staging}")
        return contact_history(query)["events"]


def merge_log_lines(run) -> list[str]:
    return [line for line in run.log.splitlines() if "merged into" in line]


def test_a_hubspot_merge_keeps_the_pre_merge_salesforce_edit_and_creates_nothing(world, state_conn) -> None:
    project, sandbox, env, (sf_ann, hs_ann), (sf_bob, hs_bob) = world
    at(sandbox, T + 16 * MINUTE)
    edit_salesforce(sandbox, sf_ann, {"Title": "Manager"})  # not synced yet when HubSpot merges
    at(sandbox, T + 20 * MINUTE)
    merged = merge_hubspot(sandbox, hs_ann, hs_bob)
    at(sandbox, T + 22 * MINUTE)
    edit_salesforce(sandbox, sf_bob, {"Phone": "+14155550123"})  # the secondary's counterpart edited afterwards

    run = synced(project, sandbox, env, T + 30 * MINUTE)
    assert live_contacts(sandbox) == {"salesforce": sorted([sf_ann, sf_bob]), "hubspot": [merged]}, "created"
    assert hubspot_contact(sandbox, merged)["jobtitle"] == "Manager", "the pre-merge edit was overwritten"
    assert salesforce_contact(sandbox, sf_ann)["Title"] == "Manager"
    assert salesforce_contact(sandbox, sf_ann)["HubSpot_Contact_Id__c"] == merged
    assert hubspot_contact(sandbox, merged)["salesforce_contact_id"] == sf_ann
    separate = decisions(run)
    separate = separate[separate["source_id"] == sf_bob]
    assert separate["action"].tolist() == ["skip"]
    assert separate["reason"].iloc[0] == (
        f"HubSpot {hs_bob} merged into {merged}, paired with Salesforce {sf_ann}; Salesforce {sf_bob} still separate"
    )
    tombstones = store_of(state_conn).read_tombstones(hubspot_ids=[hs_ann, hs_bob])
    assert sorted(tombstones[["contact_id", "kind", "survivor_id"]].values.tolist()) == sorted(
        [[hs_ann, "merged", merged], [hs_bob, "merged", merged]]
    )
    assert merge_log_lines(run), run.log[-5000:]
    assert detection_calls(run) == {"salesforce": 1, "hubspot": 0}  # the queryAll; HubSpot's came with the window
    merges_shown = [event for event in history(run, sf_ann) if event["action"] == "merged"]
    assert sorted((event["source"], event["target_id"]) for event in merges_shown) == [
        (f"hubspot:{hs_ann}", merged),
        (f"hubspot:{hs_bob}", merged),
    ]

    at(sandbox, T + 35 * MINUTE)
    edit_salesforce(sandbox, sf_bob, {"Phone": "+14155550124"})
    later = synced(project, sandbox, env, T + 45 * MINUTE)
    assert written(later) == 0, later.report["decisions"]
    assert live_contacts(sandbox)["hubspot"] == [merged]


def test_a_salesforce_merge_then_an_edit_of_the_losers_counterpart_creates_nothing(world, state_conn) -> None:
    project, sandbox, env, (sf_ann, hs_ann), (sf_bob, hs_bob) = world
    at(sandbox, T + 16 * MINUTE)
    merge_salesforce(sandbox, sf_ann, sf_bob)

    merged_run = synced(project, sandbox, env, T + 30 * MINUTE)
    tombstones = store_of(state_conn).read_tombstones(salesforce_ids=[sf_bob])
    assert tombstones[["kind", "survivor_id", "counterpart_id"]].values.tolist() == [["merged", sf_ann, hs_bob]]
    assert detection_calls(merged_run) == {"salesforce": 1, "hubspot": 0}
    reported = decisions(merged_run)
    assert reported.loc[reported["source_id"] == hs_bob, "reason"].tolist() == [
        f"Salesforce {sf_bob} merged into {sf_ann}, paired with HubSpot {hs_ann}; HubSpot {hs_bob} still separate"
    ]

    at(sandbox, T + 35 * MINUTE)
    edit_hubspot(sandbox, hs_bob, {"jobtitle": "Lead"})
    run = synced(project, sandbox, env, T + 45 * MINUTE)
    assert live_contacts(sandbox) == {"salesforce": [sf_ann], "hubspot": sorted([hs_ann, hs_bob])}, "re-created"
    assert written(run) == 0, run.report["decisions"]
    separate = decisions(run)
    separate = separate[separate["source_id"] == hs_bob]
    assert separate["action"].tolist() == ["skip"]
    assert separate["reason"].iloc[0] == (
        f"Salesforce {sf_bob} merged into {sf_ann}, paired with HubSpot {hs_ann}; HubSpot {hs_bob} still separate"
    )
    assert store_of(state_conn).entries().empty, "the loser's counterpart went to the retry queue"


def test_a_salesforce_merge_into_an_unpaired_contact_relinks_the_losers_counterpart(
    airflow_project, sandbox_factory, clean_redis, state_conn
) -> None:
    from tests.integration.conftest import crm_env

    sandbox = sandbox_factory(contacts=0, freeze_clock=True, clock=(T - 20 * MINUTE).isoformat())
    env = crm_env(sandbox, clean_redis, state_conn)
    sf_bob, hs_bob = seed_pair(sandbox, T - 13 * MINUTE, BOB_SF, BOB_HS)
    synced(airflow_project, sandbox, env, T)
    at(sandbox, T + 5 * MINUTE)  # a Salesforce-only contact, after the first run's window
    (sf_ann,) = sandbox.admin(
        "salesforce", "POST", "seed", {"contacts": [{**ANN_SF, "LastModifiedDate": (T + 5 * MINUTE).isoformat()}]}
    ).json()["ids"]
    at(sandbox, T + 16 * MINUTE)
    merge_salesforce(sandbox, sf_ann, sf_bob)

    run = synced(airflow_project, sandbox, env, T + 30 * MINUTE)
    assert detection_calls(run) == {"salesforce": 1, "hubspot": 1}  # the queryAll; the counterpart read by id
    assert live_contacts(sandbox) == {"salesforce": [sf_ann], "hubspot": [hs_bob]}, "created"
    assert hubspot_contact(sandbox, hs_bob)["salesforce_contact_id"] == sf_ann
    assert hubspot_contact(sandbox, hs_bob)["email"] == "ann@example.com", "the survivor's values did not flow"
    # The loser, in the Recycle Bin, holds the link value: the survivor's own link waits for its purge.
    assert salesforce_contact(sandbox, sf_ann)["HubSpot_Contact_Id__c"] is None
    state = store_of(state_conn).read_snapshots(salesforce_ids=[sf_ann, sf_bob])
    assert state[["salesforce_id", "hubspot_id"]].values.tolist() == [[sf_ann, hs_bob]]

    at(sandbox, T + 35 * MINUTE)
    edit_hubspot(sandbox, hs_bob, {"jobtitle": "Lead"})
    later = synced(airflow_project, sandbox, env, T + 45 * MINUTE)
    assert salesforce_contact(sandbox, sf_ann)["Title"] == "Lead", later.report["decisions"]
    assert live_contacts(sandbox) == {"salesforce": [sf_ann], "hubspot": [hs_bob]}


def test_with_propagate_merges_a_salesforce_merge_merges_the_hubspot_counterparts_too(
    airflow_project, sandbox_factory, clean_redis, state_conn, tmp_path
) -> None:
    from pathlib import Path

    from tests.integration.conftest import crm_env

    mapping = tmp_path / "contacts.yaml"
    default = (Path(__file__).resolve().parents[2] / "include" / "mappings" / "contacts.yaml").read_text()
    mapping.write_text(default + "\npropagate_merges: true\n")
    sandbox = sandbox_factory(contacts=0, freeze_clock=True, clock=(T - 20 * MINUTE).isoformat())
    env = {**crm_env(sandbox, clean_redis, state_conn), "AIRFLOW__CRM_SYNC__MAPPING_PATH": str(mapping)}
    sf_ann, hs_ann = seed_pair(sandbox, T - 14 * MINUTE, ANN_SF, ANN_HS)
    sf_bob, hs_bob = seed_pair(sandbox, T - 13 * MINUTE, BOB_SF, BOB_HS)
    synced(airflow_project, sandbox, env, T)
    at(sandbox, T + 16 * MINUTE)
    merge_salesforce(sandbox, sf_ann, sf_bob)

    run = synced(airflow_project, sandbox, env, T + 30 * MINUTE)
    live = live_contacts(sandbox)
    assert live["salesforce"] == [sf_ann] and len(live["hubspot"]) == 1, live
    (merged,) = live["hubspot"]
    assert merged not in (hs_ann, hs_bob), "HubSpot answers a merge with a new record"
    assert detection_calls(run) == {"salesforce": 1, "hubspot": 1}  # the queryAll; the HubSpot merge
    reported = decisions(run)
    (reason,) = reported.loc[reported["source_id"] == hs_bob, "reason"]
    assert reason.endswith(f"merged into HubSpot {hs_ann} too (propagate_merges), new id {merged}")
    assert salesforce_contact(sandbox, sf_ann)["HubSpot_Contact_Id__c"] == merged
    assert hubspot_contact(sandbox, merged)["salesforce_contact_id"] == sf_ann
    state = store_of(state_conn).read_snapshots(salesforce_ids=[sf_ann])
    assert state["hubspot_id"].tolist() == [merged]

    later = synced(airflow_project, sandbox, env, T + 45 * MINUTE)
    assert written(later) == 0, later.report["decisions"]
