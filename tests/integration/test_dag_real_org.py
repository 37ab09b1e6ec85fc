"""What a real org and portal must provide, checked by DAG runs: the preflight's refusals, and renamed link fields."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import crm_env
from tests.integration.test_dag_sync import contacts, load_rejects, planned_write_ids, writes

pytestmark = pytest.mark.integration

T = datetime.fromisoformat("2026-11-28T10:00:00+00:00")
ROOT = Path(__file__).resolve().parents[2]


def test_preflight_stops_the_run_with_every_fix_before_anything_is_read(
    airflow_project, sandbox_factory, clean_redis, state_conn
) -> None:
    sandbox = sandbox_factory(
        contacts=20,
        seed=3,
        clock=(T - timedelta(seconds=30)).isoformat(),
        window_minutes=14,
        hubspot_scopes="crm.objects.contacts.read",
        salesforce_link_field_attributes="external_id",
    )
    run = airflow_project.dags_test(T.isoformat(), env=crm_env(sandbox, clean_redis, state_conn))
    assert run.returncode != 0 or "failed" in run.log.lower()
    assert "3 preflight problem(s)" in run.log or "preflight problem(s)" in run.log, run.log[-4000:]
    assert "crm.objects.contacts.write" in run.log and "crm.schemas.contacts.read" in run.log
    assert "Unique" in run.log
    stats = sandbox.admin("hubspot", "GET", "stats").json()
    assert not any("search" in endpoint for endpoint in stats if stats[endpoint].get("requests")), stats


def test_renamed_link_fields_sync_end_to_end(
    airflow_project, sandbox_factory, clean_redis, state_conn, tmp_path
) -> None:
    mapping = yaml.safe_load((ROOT / "include" / "mappings" / "contacts.yaml").read_text())
    mapping["link"] = {"salesforce": "HubSpot_Key__c", "hubspot": "sf_contact_key"}
    path = tmp_path / "renamed.yaml"
    path.write_text(yaml.safe_dump(mapping))
    sandbox = sandbox_factory(
        contacts=60,
        seed=9,
        clock=(T - timedelta(seconds=30)).isoformat(),
        window_minutes=14,
        salesforce_link_field="HubSpot_Key__c",
        hubspot_link_property="sf_contact_key",
    )
    env = {**crm_env(sandbox, clean_redis, state_conn), "AIRFLOW__CRM_SYNC__MAPPING_PATH": str(path)}
    first = airflow_project.dags_test(T.isoformat(), env=env)
    assert first.returncode == 0, first.log[-5000:]
    assert sum(writes(first.report).values()) > 0
    sf = {row["Id"]: row for row in contacts(sandbox, "salesforce")}
    hs = {row["id"]: row["properties"] for row in contacts(sandbox, "hubspot") if not row["archived"]}
    sf_links = {sf_id: row.get("HubSpot_Key__c") for sf_id, row in sf.items() if row.get("HubSpot_Key__c")}
    hs_links = {hs_id: props.get("sf_contact_key") for hs_id, props in hs.items() if props.get("sf_contact_key")}
    assert sf_links and {hs_links.get(hs_id) for hs_id in sf_links.values()} == set(sf_links)
    assert all(sf_links.get(sf_id) == hs_id for hs_id, sf_id in hs_links.items())

    second = airflow_project.dags_test((T + timedelta(minutes=15)).isoformat(), env=env)
    assert second.returncode == 0, second.log[-5000:]
    assert planned_write_ids(second) <= set(load_rejects(first)["source_id"]), second.report["decisions"]
