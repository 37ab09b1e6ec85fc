"""The real DAG (`airflow dags test`) against both sandboxes and a real redis-server."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from sandbox.testing import SandboxProcess
from tests.integration.conftest import crm_env

pytestmark = pytest.mark.integration

T = datetime.fromisoformat("2026-11-28T10:00:00+00:00")


def contacts(sandbox: SandboxProcess, system: str) -> list[dict[str, Any]]:
    return sandbox.admin(system, "GET", "records").json()["contacts"]


def writes(report: dict[str, Any]) -> dict[str, int]:
    return {key: n for key, n in report["decisions"].items() if key.split(".")[1] in ("create", "update", "delete")}


def decisions(run) -> pd.DataFrame:
    """The run's decisions, every reconcile partition's part."""
    paths = sorted(run.staging.glob("*/*/try-*/decisions/part-*.parquet"))
    assert paths, "no decision parts staged"
    return pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)


def load_rejects(run) -> pd.DataFrame:
    (path,) = run.staging.glob("*/*/rejects.parquet")
    frame = pd.read_parquet(path)
    return frame[frame["stage"] == "load"]


def planned_write_ids(run) -> set[str]:
    frame = decisions(run)
    return set(frame.loc[frame["action"].isin(["create", "update", "delete"]), "source_id"])


def planned_writes(run) -> str:
    """The write decisions of a run, for a failure message."""
    frame = decisions(run)
    frame = frame[frame["action"].isin(["create", "update", "delete"])]
    return frame.drop(columns=["payload"]).to_string()


def assert_linked_both_ways(sandbox: SandboxProcess) -> tuple[int, int]:
    """No link is shared; every Salesforce link is returned; every HubSpot link names a live contact."""
    sf = {row["Id"]: row for row in contacts(sandbox, "salesforce")}
    hs = {row["id"]: row for row in contacts(sandbox, "hubspot") if not row["archived"]}
    sf_links = {sf_id: row["HubSpot_Contact_Id__c"] for sf_id, row in sf.items() if row["HubSpot_Contact_Id__c"]}
    hs_links = {
        hs_id: row["properties"]["salesforce_contact_id"]
        for hs_id, row in hs.items()
        if row["properties"].get("salesforce_contact_id")
    }
    assert max(Counter(sf_links.values()).values(), default=1) == 1
    assert max(Counter(hs_links.values()).values(), default=1) == 1
    one_way = {sf_id: hs_id for sf_id, hs_id in sf_links.items() if hs_links.get(hs_id) != sf_id}
    assert one_way == {}, "Salesforce links that do not point back"
    # HubSpot may hold a link Salesforce lacks: a matched pair whose values Salesforce refuses is linked
    # on HubSpot only (writing Salesforce would make it the newer side); it must name a live contact.
    dangling = {hs_id: sf_id for hs_id, sf_id in hs_links.items() if sf_id not in sf}
    assert dangling == {}, "HubSpot links to no Salesforce contact"
    return len(sf_links), len(hs_links)


def test_a_window_syncs_everyone_and_the_next_window_plans_nothing(
    airflow_project, sandbox_factory, clean_redis, state_conn
) -> None:
    sandbox = sandbox_factory(contacts=300, seed=11, clock=(T - timedelta(seconds=30)).isoformat(), window_minutes=14)
    env = crm_env(sandbox, clean_redis, state_conn)

    first = airflow_project.dags_test(T.isoformat(), env=env)
    assert first.returncode == 0, first.log[-5000:]
    report = first.report
    assert report is not None
    assert report["extracted"]["salesforce"] > 0 and report["extracted"]["hubspot"] > 0
    assert sum(writes(report).values()) > 0
    assert report["rejects"]["count"] > 0, "the generator seeds invalid records: they must be reported"
    sf_linked, hs_linked = assert_linked_both_ways(sandbox)
    assert 0 < sf_linked <= hs_linked

    second = airflow_project.dags_test((T + timedelta(minutes=15)).isoformat(), env=env)
    assert second.returncode == 0, second.log[-5000:]
    assert second.report["extracted"]["salesforce"] + second.report["extracted"]["hubspot"] > 0
    # The lookback overlaps the first window: records a CRM refused there are tried again, nothing else.
    refused = set(load_rejects(first)["source_id"])
    retried = planned_write_ids(second)
    assert retried <= refused, "a window holding only our own writes must plan nothing (no echo):\n" + planned_writes(
        second
    )


def test_dry_run_writes_nothing_and_reports_what_it_would_write(
    airflow_project, sandbox_factory, clean_redis, state_conn
) -> None:
    sandbox = sandbox_factory(contacts=120, seed=4, clock=(T - timedelta(seconds=30)).isoformat(), window_minutes=14)
    before = {system: contacts(sandbox, system) for system in ("salesforce", "hubspot")}

    run = airflow_project.dags_test(
        T.isoformat(), conf={"dry_run": True}, env=crm_env(sandbox, clean_redis, state_conn)
    )
    assert run.returncode == 0, run.log[-5000:]
    assert {system: contacts(sandbox, system) for system in ("salesforce", "hubspot")} == before
    planned = sum(writes(run.report).values())
    would = {key: n for key, n in run.report["outcomes"].items() if key.endswith(".dry_run")}
    assert planned > 0
    assert sum(would.values()) == planned, (would, writes(run.report))
