"""Load under a strict rate limit, under injected faults, and after a kill mid-write: never a duplicate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.testing import SandboxProcess
from tests.integration.airflow_project import DAG_ID
from tests.integration.conftest import crm_env
from tests.integration.test_dag_sync import assert_linked_both_ways, contacts, load_rejects, writes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T = datetime.fromisoformat("2026-11-28T10:00:00+00:00")


def start(sandbox_factory, n: int, **opts: Any) -> SandboxProcess:
    return sandbox_factory(contacts=n, seed=5, clock=(T - timedelta(seconds=30)).isoformat(), window_minutes=14, **opts)


def content(sandbox: SandboxProcess) -> dict[str, Any]:
    """What a user sees in each CRM, without ids and timestamps (which differ between runs)."""
    sf = sorted(
        (row["Email"] or "", row["FirstName"] or "", row["LastName"] or "", bool(row["HubSpot_Contact_Id__c"]))
        for row in contacts(sandbox, "salesforce")
    )
    hs = sorted(
        (
            row["properties"].get("email") or "",
            row["properties"].get("firstname") or "",
            row["properties"].get("lastname") or "",
            bool(row["properties"].get("salesforce_contact_id")),
        )
        for row in contacts(sandbox, "hubspot")
        if not row["archived"]
    )
    return {"salesforce": sf, "hubspot": hs}


def assert_same_content(sandbox: SandboxProcess, clean: SandboxProcess, what: str) -> None:
    """Both CRMs hold what a clean run left, contact for contact; on failure, the contacts that differ."""
    got, want = content(sandbox), content(clean)
    diff = {
        crm: {
            "extra": sorted((Counter(got[crm]) - Counter(want[crm])).elements()),
            "missing": sorted((Counter(want[crm]) - Counter(got[crm])).elements()),
        }
        for crm in got
    }
    assert got == want, f"{what} left different contents: {diff}"


def test_5000_contacts_a_side_under_a_strict_limit_get_almost_no_429s(
    airflow_project, sandbox_factory, clean_redis, state_conn
) -> None:
    sandbox = start(sandbox_factory, 5000, hubspot_requests_per_10s=40, hubspot_search_requests_per_s=3)
    env = crm_env(sandbox, clean_redis, state_conn)
    conn = json.loads(env["AIRFLOW_CONN_HUBSPOT_DEFAULT"])
    conn["extra"] = {**conn.get("extra", {}), "requests_per_10s": 40, "search_requests_per_s": 3}
    env["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = json.dumps(conn)

    run = airflow_project.dags_test(T.isoformat(), env=env)
    assert run.returncode == 0, run.log[-5000:]
    stats = sandbox.admin("hubspot", "GET", "stats").json()
    total = stats["total"]
    print(f"\nstrict limit: {total['requests']} HubSpot requests, {total['429']} answered 429, {run.seconds:.0f} s")
    assert total["429"] <= 2
    assert_linked_both_ways(sandbox)


def test_faults_end_in_the_same_contents_as_a_fault_free_run(
    airflow_project, sandbox_factory, clean_redis, state_conn, new_state_conn
) -> None:
    clean = start(sandbox_factory, 1000)
    baseline = airflow_project.dags_test(T.isoformat(), env=crm_env(clean, clean_redis, new_state_conn()))
    assert baseline.returncode == 0, baseline.log[-5000:]

    faulty = start(sandbox_factory, 1000)
    for system in ("hubspot", "salesforce"):
        faults = {"burst_429": 5, "error_rate_5xx": 0.1, "drop_rate": 0.03, "seed": 3}
        # Salesforce answers slowly, so sessions expired every 0.5 s die between a task's login and its calls
        # (a first sync makes few Salesforce calls: it looks nothing up).
        faulty.admin(system, "POST", "faults", json={**faults, "latency_ms": 150 if system == "salesforce" else 0})
    stop = threading.Event()

    def expire_sessions_while_running() -> None:
        while not stop.wait(0.5):
            faulty.admin("salesforce", "POST", "expire-sessions")

    expirer = threading.Thread(target=expire_sessions_while_running, daemon=True)
    expirer.start()
    try:
        run = airflow_project.dags_test(T.isoformat(), env=crm_env(faulty, clean_redis, state_conn))
    finally:
        stop.set()
        expirer.join()
    assert run.returncode == 0, run.log[-5000:]
    for system in ("hubspot", "salesforce"):
        faulty.admin(system, "POST", "faults", json={"burst_429": 0, "error_rate_5xx": 0, "drop_rate": 0})
    stats = {system: faulty.admin(system, "GET", "stats").json()["total"] for system in ("hubspot", "salesforce")}
    print(f"\nfaults injected: {stats}")
    assert sum(s.get("5xx", 0) for s in stats.values()) > 0, "the fault injection did not fire"
    assert run.report["api"]["salesforce_reauthentications"] > 0, "no session expired mid-run"
    assert_same_content(faulty, clean, "the run under faults")
    assert_linked_both_ways(faulty)


def test_a_run_killed_mid_load_and_run_again_creates_no_duplicate(
    airflow_project, sandbox_factory, clean_redis, state_conn, new_state_conn
) -> None:
    sandbox = start(sandbox_factory, 1500)
    env = crm_env(sandbox, clean_redis, state_conn)
    for system in ("hubspot", "salesforce"):
        sandbox.admin(system, "POST", "faults", json={"latency_ms": 150})
    args = [str(Path(sys.executable).with_name("airflow")), "dags", "test", DAG_ID, T.isoformat()]
    proc = subprocess.Popen(
        args,
        env=airflow_project.env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        created = sum(1 for row in contacts(sandbox, "hubspot") if row["properties"].get("salesforce_contact_id"))
        if created >= 200:
            break
        assert proc.poll() is None, "the run ended before it could be killed mid-load"
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for system in ("hubspot", "salesforce"):
        sandbox.admin(system, "POST", "faults", json={"latency_ms": 0})

    rerun = airflow_project.dags_test(T.isoformat(), env=env)
    assert rerun.returncode == 0, rerun.log[-5000:]
    sf_linked, hs_linked = assert_linked_both_ways(sandbox)
    assert 0 < sf_linked <= hs_linked

    clean = start(sandbox_factory, 1500)
    baseline = airflow_project.dags_test(T.isoformat(), env=crm_env(clean, clean_redis, new_state_conn()))
    assert baseline.returncode == 0, baseline.log[-5000:]
    assert_same_content(sandbox, clean, "the killed and retried run")


def fault_run_env(sandbox: SandboxProcess, redis_url: str, state_conn: str) -> dict[str, str]:
    """The sandbox's connections with a low Salesforce `bulk_threshold` (so one action's writes go through a
    Bulk API 2.0 ingest job) and no Airflow task retries (a failed load ends the run at once)."""
    env = crm_env(sandbox, redis_url, state_conn)
    conn = json.loads(env["AIRFLOW_CONN_SALESFORCE_DEFAULT"])
    conn["extra"] = {**conn.get("extra", {}), "bulk_threshold": 50}
    env["AIRFLOW_CONN_SALESFORCE_DEFAULT"] = json.dumps(conn)
    env["AIRFLOW__CRM_SYNC__TASK_RETRIES"] = "0"
    return env


def requests_before_the_first_write(sandbox: SandboxProcess) -> int:
    """HubSpot requests a run made before its first write (preflight, extract, reconcile's look-ups)."""
    stats = {k: v for k, v in sandbox.admin("hubspot", "GET", "stats").json().items() if k != "total"}
    first_write = min(v["first_at"] for k, v in stats.items() if k.endswith(("/batch/upsert", "/batch/update")))
    assert all(v["last_at"] < first_write or v["first_at"] >= first_write for v in stats.values()), stats
    return sum(v["requests"] for v in stats.values() if v["last_at"] < first_write)


TRANSIENT_CODES = ("429", "RATE_LIMIT", "DAILY", "REQUEST_LIMIT_EXCEEDED", "INVALID_SESSION", "SERVER_UNAVAILABLE")


def test_bulk_jobs_failing_mid_poll_and_a_daily_429_mid_load_lose_nothing_and_reject_nothing_falsely(
    airflow_project, sandbox_factory, clean_redis, new_state_conn
) -> None:
    n = 300
    clean = start(sandbox_factory, n)
    baseline = airflow_project.dags_test(T.isoformat(), env=fault_run_env(clean, clean_redis, new_state_conn()))
    assert baseline.returncode == 0, baseline.log[-5000:]
    sf_writes = {key: count for key, count in writes(baseline.report).items() if key.startswith("salesforce.")}
    assert max(sf_writes.values(), default=0) > 50, f"no Salesforce action large enough for Bulk API 2.0: {sf_writes}"
    hs_loads = sum(count for key, count in writes(baseline.report).items() if key.startswith("hubspot."))
    assert hs_loads > 200, "too few HubSpot writes to run out of the daily limit mid-load"
    pre_load = requests_before_the_first_write(clean)

    faulty = start(sandbox_factory, n)
    # Every Bulk API 2.0 ingest job stays InProgress for 2 s; the first job-info polls answer 503, 401
    # (which also expires every session) and 500.
    faulty.admin("salesforce", "POST", "bulk", json={"processing_seconds": 2, "poll_faults": [503, 401, 500]})
    # Extract and reconcile pass; two load batches go through, the third is answered 429 DAILY.
    faulty.admin("hubspot", "POST", "limits", json={"daily": pre_load + 2})
    state = new_state_conn(retry_base_minutes=0.001)
    env = fault_run_env(faulty, clean_redis, state)
    fault_run = airflow_project.dags_test(T.isoformat(), env=env)
    # `airflow dags test` exits 0 with failed tasks: the load's failure shows in the log.
    assert "HubSpotDailyLimitReached" in fault_run.log, "the spent daily limit must fail the HubSpot load"
    hs_stats = faulty.admin("hubspot", "GET", "stats").json()["total"]
    assert hs_stats["429"] > 0, hs_stats
    assert faulty.admin("salesforce", "POST", "bulk", json={}).json()["poll_faults"] == [], "no ingest job was polled"
    assert fault_run.report is not None
    assert fault_run.report["api"]["salesforce_reauthentications"] > 0, "the 401 mid-poll did not expire the session"

    # The limit resets (as at midnight); the same interval runs again, then the next one drains the retry queue.
    faulty.admin("hubspot", "POST", "limits", json={"daily": 500_000})
    rerun = airflow_project.dags_test(T.isoformat(), env=env)
    assert rerun.returncode == 0, rerun.log[-5000:]
    follow_up = airflow_project.dags_test((T + timedelta(minutes=15)).isoformat(), env=env)
    assert follow_up.returncode == 0, follow_up.log[-5000:]

    for run in (baseline, fault_run, rerun, follow_up):
        assert run.report["sync_state"]["settled"], run.log[-5000:]
    for run in (fault_run, rerun, follow_up):
        rejects = load_rejects(run)
        transient = rejects[rejects["code"].fillna("").str.contains("|".join(TRANSIENT_CODES))]
        assert transient.empty, "a transient error became a per-record reject:\n" + transient.to_string()
        assert not rejects["code"].fillna("").str.match(r"^(5\d\d|0)$").any(), rejects.to_string()
    assert_same_content(faulty, clean, "the run under faults")
    assert_linked_both_ways(faulty)
    codes = {(row.target, row.code) for run in (fault_run, rerun, follow_up) for row in load_rejects(run).itertuples()}
    assert codes <= {(row.target, row.code) for row in load_rejects(baseline).itertuples()}, codes
    print(
        f"\nfault run {fault_run.seconds:.0f} s, rerun {rerun.seconds:.0f} s, "
        f"follow-up {follow_up.seconds:.0f} s; load reject codes {codes}"
    )
