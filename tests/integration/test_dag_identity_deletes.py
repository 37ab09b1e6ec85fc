"""Deletes, archives, privacy deletions and restores made in the CRMs, in real DAG runs (`airflow dags test`,
sandboxes, Redis, PostgreSQL): a contact gone from one side is never re-created by its counterpart's next edit
unless the mapping asks, never when it was deleted for a privacy request, and comes back as the same pair."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from sandbox.testing import SandboxProcess
from tests.integration.conftest import crm_env
from tests.integration.crm_edits import _salesforce_session as salesforce_session
from tests.integration.crm_edits import (
    at,
    edit_hubspot,
    edit_salesforce,
    hubspot_contact,
    salesforce_contact,
    seed_pair,
)
from tests.integration.test_dag_sync_state import ANN_HS, ANN_SF, MINUTE, T, store_of, sync

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MAPPING = Path(__file__).resolve().parents[2] / "include" / "mappings" / "contacts.yaml"


@pytest.fixture
def world(airflow_project, sandbox_factory, clean_redis, state_conn):
    sandbox = sandbox_factory(contacts=0, freeze_clock=True, clock=(T - 20 * MINUTE).isoformat())
    return airflow_project, sandbox, crm_env(sandbox, clean_redis, state_conn), state_conn


def with_option(env: dict[str, str], tmp_path: Path, option: str) -> dict[str, str]:
    """The run's environment with the default mapping but `on_counterpart_deleted: option`."""
    doc = yaml.safe_load(MAPPING.read_text())
    doc["on_counterpart_deleted"] = option
    path = tmp_path / f"mapping-{option}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return {**env, "AIRFLOW__CRM_SYNC__MAPPING_PATH": str(path)}


def hubspot(sandbox: SandboxProcess, method: str, path: str, body: Any = None) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False
        resp = session.request(
            method,
            f"{sandbox.hubspot_url}/crm/v3/objects/contacts{path}",
            json=body,
            headers={"Authorization": f"Bearer {sandbox.hubspot_token}"},
            timeout=30,
        )
    resp.raise_for_status()
    return resp


def delete_salesforce(sandbox: SandboxProcess, contact_id: str) -> None:
    session, version = salesforce_session(sandbox)
    with session:
        url = f"{sandbox.salesforce_url}/services/data/v{version}/sobjects/Contact/{contact_id}"
        session.delete(url, timeout=30).raise_for_status()


def live_hubspot(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    return [row for row in sandbox.admin("hubspot", "GET", "records").json()["contacts"] if not row["archived"]]


def live_salesforce(sandbox: SandboxProcess) -> list[dict[str, Any]]:
    return [row for row in sandbox.admin("salesforce", "GET", "records").json()["contacts"] if not row["IsDeleted"]]


def tombstone_of(state_conn: str, side: str, contact_id: str) -> dict[str, Any] | None:
    found = store_of(state_conn).read_all_tombstones()
    rows = found[(found["side"] == side) & (found["contact_id"] == contact_id)].to_dict("records")
    return rows[0] if rows else None


def ok(run: Any, label: str) -> dict[str, Any]:
    assert run.returncode == 0, run.log[-5000:]
    gone = run.report.get("tombstones") or {}
    print(f"tombstone look-ups (API calls), {label}: {json.dumps(gone.get('api_calls', {}))}")
    return gone


def linked_pairs(project, sandbox, env, count: int) -> list[tuple[str, str]]:
    """`count` pairs seeded unlinked (emails ann0@.., ann1@..), linked by a first sync at T."""
    pairs = []
    for n in range(count):
        sf = {**ANN_SF, "Email": f"ann{n}@example.com"}
        hs = {**ANN_HS, "email": f"ann{n}@example.com"}
        pairs.append(seed_pair(sandbox, T - 14 * MINUTE, sf, hs))
    ok(sync(project, sandbox, env, T), "first sync (links the pairs)")
    for sf_id, hs_id in pairs:
        assert salesforce_contact(sandbox, sf_id)["HubSpot_Contact_Id__c"] == hs_id
    return pairs


def test_a_privacy_deleted_contact_is_never_re_created_by_edits_or_a_full_resync(world, tmp_path) -> None:
    project, sandbox, env, state_conn = world
    ((sf_id, hs_id),) = linked_pairs(project, sandbox, env, 1)
    at(sandbox, T + 2 * MINUTE)
    hubspot(sandbox, "POST", "/gdpr-delete", {"objectId": hs_id})
    at(sandbox, T + 16 * MINUTE)
    edit_salesforce(sandbox, sf_id, {"Title": "Manager"})

    gone = ok(sync(project, sandbox, env, T + 30 * MINUTE), "privacy delete found (keep)")
    assert live_hubspot(sandbox) == [], "re-created in HubSpot after a privacy deletion"
    assert gone["found"] == [
        f"hubspot contact {hs_id} deleted for good (privacy deletion or purge: nothing of it remains)"
    ]
    assert gone["api_calls"] == {"salesforce": 0, "hubspot": 2}  # a live and an archived batch read
    assert tombstone_of(state_conn, "hubspot", hs_id)["kind"] == "privacy_deleted"

    at(sandbox, T + 31 * MINUTE)
    edit_salesforce(sandbox, sf_id, {"Title": "Director"})
    resync = sync(project, sandbox, env, T + 45 * MINUTE, conf={"full_resync": True})
    gone = ok(resync, "full resync, privacy delete known")
    assert (gone["found"], gone["api_calls"]) == ([], {"salesforce": 0, "hubspot": 0}), "found again: reported twice"
    assert live_hubspot(sandbox) == [], "a full resync re-created it"

    at(sandbox, T + 46 * MINUTE)
    edit_salesforce(sandbox, sf_id, {"Title": "Owner"})
    ok(sync(project, sandbox, with_option(env, tmp_path, "recreate"), T + 60 * MINUTE), "privacy, recreate")
    assert live_hubspot(sandbox) == [], "re-created with on_counterpart_deleted: recreate"
    assert [row["Id"] for row in live_salesforce(sandbox)] == [sf_id]


def test_deletes_with_each_option_then_restores_resume_the_same_pairs(world, tmp_path) -> None:
    """Pair a: archived in HubSpot (keep), then restored. b: archived (recreate). c: archived (delete).
    d: deleted in Salesforce (keep), then undeleted. Each gone side's counterpart is edited meanwhile."""
    project, sandbox, env, state_conn = world
    (sf_a, hs_a), (sf_b, hs_b), (sf_c, hs_c), (sf_d, hs_d) = linked_pairs(project, sandbox, env, 4)

    at(sandbox, T + 2 * MINUTE)
    hubspot(sandbox, "DELETE", f"/{hs_a}")
    delete_salesforce(sandbox, sf_d)
    at(sandbox, T + 16 * MINUTE)
    edit_salesforce(sandbox, sf_a, {"Title": "Manager"})
    edit_hubspot(sandbox, hs_d, {"jobtitle": "Manager"})
    gone = ok(sync(project, sandbox, env, T + 30 * MINUTE), "hubspot archive + salesforce delete found (keep)")
    assert sorted(line.split(" at ")[0] for line in gone["found"]) == [
        f"hubspot contact {hs_a} archived",
        f"salesforce contact {sf_d} deleted",
    ]
    assert gone["api_calls"] == {"salesforce": 1, "hubspot": 2}  # one composite queryAll; a live + an archived read
    assert hs_a not in ids(live_hubspot(sandbox), "id") and sf_d not in ids(live_salesforce(sandbox), "Id")
    assert len(live_hubspot(sandbox)) == len(live_salesforce(sandbox)) == 3, "re-created"

    at(sandbox, T + 31 * MINUTE)
    hubspot(sandbox, "DELETE", f"/{hs_b}")
    edit_salesforce(sandbox, sf_b, {"Title": "Manager"})
    ok(sync(project, sandbox, with_option(env, tmp_path, "recreate"), T + 45 * MINUTE), "archive found (recreate)")
    (again,) = [row for row in live_hubspot(sandbox) if row["properties"]["email"] == "ann1@example.com"]
    assert again["id"] != hs_b and again["properties"]["jobtitle"] == "Manager"
    assert salesforce_contact(sandbox, sf_b)["HubSpot_Contact_Id__c"] == again["id"]

    at(sandbox, T + 46 * MINUTE)
    hubspot(sandbox, "DELETE", f"/{hs_c}")
    edit_salesforce(sandbox, sf_c, {"Title": "Manager"})
    ok(sync(project, sandbox, with_option(env, tmp_path, "delete"), T + 60 * MINUTE), "archive found (delete)")
    assert salesforce_contact(sandbox, sf_c)["IsDeleted"] is True
    assert tombstone_of(state_conn, "hubspot", hs_c)["kind"] == "archived"

    at(sandbox, T + 61 * MINUTE)
    assert sandbox.admin("hubspot", "POST", "restore", {"ids": [hs_a]}).json()["restored"] == [hs_a]
    (answer,) = sandbox.admin("salesforce", "POST", "undelete", {"ids": [sf_d]}).json()
    assert answer["success"], answer
    gone = ok(sync(project, sandbox, env, T + 75 * MINUTE), "restore + undelete (keep)")
    assert sorted(gone["restored"]) == sorted(
        f"{side} contact {cid} is back (restored or undeleted)"
        for side, cid in (("hubspot", hs_a), ("salesforce", sf_d))
    )
    assert tombstone_of(state_conn, "hubspot", hs_a) is None and tombstone_of(state_conn, "salesforce", sf_d) is None
    assert hubspot_contact(sandbox, hs_a)["jobtitle"] == "Manager", "the edit made while archived is lost"
    assert salesforce_contact(sandbox, sf_d)["Title"] == "Manager", "the edit made while deleted is lost"
    emails = sorted(row["properties"]["email"] for row in live_hubspot(sandbox))
    assert emails == ["ann0@example.com", "ann1@example.com", "ann3@example.com"], "a duplicate or a lost contact"
    assert sorted(ids(live_salesforce(sandbox), "Id")) == sorted([sf_a, sf_b, sf_d])


def ids(rows: list[dict[str, Any]], key: str) -> list[str]:
    return [row[key] for row in rows]
