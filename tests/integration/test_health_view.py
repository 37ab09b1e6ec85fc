"""The sync-health view, for real: Airflow's api-server with the plugin, real DAG runs' reports, headless Chromium."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import requests

from crm_sync.state.engine import create_state_engine
from crm_sync.state.store import SyncStateStore
from tests.integration.api_server import api_server
from tests.integration.browser import browser, log_in
from tests.integration.conftest import crm_env
from tests.integration.crm_edits import at, edit_hubspot

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))
T = datetime.fromisoformat("2026-11-28T10:00:00+00:00")


def cell(driver, table: str, key: str) -> str:
    """The first value with this key in a table (the runs table lists the newest data interval first)."""
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'#{table} [data-key="{key}"]').text


def contacts(sandbox, side: str) -> list[dict]:
    return sandbox.admin(side, "GET", "records").json()["contacts"]


def staged_reports(staging: Path) -> dict[str, dict]:
    """The reports under one staging base, by the end of their data interval."""
    reports = [json.loads(path.read_text()) for path in staging.glob("*/*/report.json")]
    return {report["data_interval"]["end"]: report for report in reports}


def outside_log_groups(log: str, line: str) -> bool:
    """Whether `line` is logged outside any `::group::` (the UI shows groups collapsed)."""
    before = log[: log.index(line)]
    opened, closed = before.rfind("::group::"), before.rfind("::endgroup::")
    return opened < closed or opened == -1


def fits_without_sideways_scrolling(driver) -> bool:
    return driver.execute_script("const e = document.documentElement; return e.scrollWidth <= e.clientWidth;")


def test_the_view_needs_a_login_and_shows_the_run_reports_and_a_contact_history(
    airflow_project, sandbox_factory, clean_redis, state_conn, tmp_path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    sandbox = sandbox_factory(contacts=150, seed=4, clock=(T - timedelta(seconds=30)).isoformat(), window_minutes=14)
    # The org's other integrations use 30,000 of 120,000 daily calls: the view must show the org's figures.
    sandbox.admin("salesforce", "POST", "api-usage", json={"others": 30_000, "max": 120_000})
    env = crm_env(sandbox, clean_redis, state_conn)
    staging = tmp_path / "staging"

    def sync(logical_date: datetime) -> dict:
        run = airflow_project.dags_test(logical_date.isoformat(), env=env, staging_base=f"file://{staging}")
        assert run.returncode == 0, run.log[-3000:]
        for line in ("extracted: salesforce", "rejects: "):
            assert outside_log_groups(run.log, line), f"summary line {line!r} inside a collapsed log group"
        return staged_reports(staging)[logical_date.isoformat()]

    # A window, then the one before it (as a backfill may finish): the report written last is not the newest.
    report = sync(T)
    earlier = sync(T - timedelta(minutes=15))
    # Then someone gives a synced contact a first name Salesforce refuses and a new title: the next window's
    # run updates the title and rejects the name (two decisions about one contact).
    linked = next(c for c in contacts(sandbox, "hubspot") if c["properties"].get("salesforce_contact_id"))
    at(sandbox, T + timedelta(minutes=5))
    edit_hubspot(sandbox, linked["id"], {"firstname": "N" * 95, "jobtitle": "Night auditor"})
    newest = sync(T + timedelta(minutes=15))
    assert newest["decisions"].get("salesforce.reject") and newest["decisions"].get("salesforce.update")
    rejects = pd.read_parquet(report["rejects"]["path"].removeprefix("file://"))
    assert not rejects["reason"].str.contains("@").any(), "staged rejects masked like the log (log_pii off)"
    assert rejects["reason"].str.contains("<email>").any() and rejects["source_id"].notna().all()
    refused = rejects[rejects["stage"] == "load"].iloc[0]
    assert refused.code and refused.source_id, "what a person needs to fix the record is kept"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    # The view's own sync-state database, holding the refused contact failed twice.
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    store = SyncStateStore(create_state_engine(state_url))
    store.create_schema()
    entry = pd.DataFrame(
        [{**{k: refused[k] for k in ("target", "source_id", "target_id", "action", "code")}, "data_hash": "h1"}]
    ).assign(message=str(refused.reason))
    for attempt in (1, 2):
        store.record_attempts(entry, run_id=f"attempt-{attempt}")

    server_env = {
        **env,
        "AIRFLOW__CRM_SYNC__STAGING_BASE": f"file://{staging}",
        "AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT": state_url,
    }
    with api_server(airflow_project, server_env, tmp_path) as server:
        for path in ("/crm-sync/", "/crm-sync/api/runs", f"/crm-sync/contact?q={refused.source_id}"):
            assert requests.get(server.url + path, timeout=30).status_code == 401, path
        forged = requests.get(server.url + "/crm-sync/api/runs", cookies={"_token": "forged"}, timeout=30)
        assert forged.status_code in (401, 403)

        driver = browser()
        try:
            driver.set_window_size(1600, 1200)  # the chart and the runs table in one screenshot
            wait = WebDriverWait(driver, 60)
            log_in(driver, server)

            # The Airflow UI's Browse menu entry opens the view inside the UI.
            driver.get(f"{server.url}/plugin/crm-sync-health")
            frame = wait.until(ec.presence_of_element_located((By.TAG_NAME, "iframe")))
            driver.switch_to.frame(frame)
            wait.until(ec.presence_of_element_located((By.ID, "runs")))
            listed = [row.get_attribute("data-run-id") for row in driver.find_elements(By.CSS_SELECTOR, "#runs td")]
            assert [run_id for run_id in listed if run_id] == [newest["run_id"], report["run_id"], earlier["run_id"]]
            for key, count in newest["decisions"].items():
                assert cell(driver, "runs", key) == str(count), key
            for crm in ("salesforce", "hubspot"):
                assert cell(driver, "runs", f"{crm}.calls") == str(newest["api"][f"{crm}_api_calls"])
                assert cell(driver, "runs", f"{crm}.throttled") == str(
                    newest["api"][f"{crm}_rate_limit_throttled_responses"]
                )
            assert cell(driver, "runs", "rejects") == str(newest["rejects"]["count"])
            assert "." not in cell(driver, "runs", "window"), "no microseconds"
            assert driver.find_element(By.ID, "outcomes-run").text.startswith(
                "What the CRMs answered: manual " + newest["run_id"].removeprefix("manual__")[:10]
            )
            for key, count in newest["outcomes"].items():
                assert cell(driver, "outcomes", key) == str(count), key
            chart = driver.find_element(By.CSS_SELECTOR, "#runs-chart svg").text
            for title in ("Contacts per run", "API calls per run", "Org-wide daily API budget"):
                assert title in chart, title

            # The Salesforce daily budget is the org's, from its Sforce-Limit-Info header: 80 % of 120,000.
            used = int(cell(driver, "pools", "salesforce.daily_api_requests.used").replace(",", ""))
            assert 30_000 < used < 30_000 + 200, used
            assert cell(driver, "pools", "salesforce.daily_api_requests.maximum") == "120,000"
            assert cell(driver, "pools", "salesforce.daily_api_requests.note") == "the sync stops at 96,000"
            queue = driver.find_element(By.ID, "retry-queue").text
            assert str(refused.source_id) in queue and refused.code in queue
            assert "@" not in queue, "the CRM's message is redacted in the queue"
            assert not re.search(r"\d:\d\d\.\d|\+00:00", queue), "attempt times without microseconds"
            hubspot_used = cell(driver, "pools", "hubspot.requests_per_10s.used")
            assert int(hubspot_used) >= 0
            assert fits_without_sideways_scrolling(driver), "the view's tables fit the Airflow UI's frame"
            driver.switch_to.default_content()
            driver.save_screenshot(str(ARTIFACTS / "sync-health.png"))

            for width in (1280, 1600):
                driver.set_window_size(width, 1000)
                driver.get(f"{server.url}/crm-sync/")
                wait.until(ec.presence_of_element_located((By.ID, "runs")))
                assert fits_without_sideways_scrolling(driver), f"tables wider than a {width}px window"

            # One refused contact's history, searched by its Salesforce id from inside the view.
            box = driver.find_element(By.NAME, "q")
            box.send_keys(str(refused.source_id))
            box.submit()
            wait.until(ec.presence_of_element_located((By.ID, "history")))
            shown = [e.text for e in driver.find_elements(By.CSS_SELECTOR, '#history [data-key="decision"]')]
            assert shown[0] in ("retrying", "parked") and shown[1] == refused.action, shown  # its queue entry first
            answer = cell(driver, "history", "answer")
            assert answer.startswith(f"refused {refused.code}")
            assert "@" not in answer and "@" not in cell(driver, "history", "fields"), "emails masked (log_pii off)"
            queued = driver.find_element(By.CSS_SELECTOR, "#retry-queue tr:nth-child(2)").text
            assert str(refused.source_id) in queued and " 2 " in f" {queued} ", "attempts shown"
            driver.save_screenshot(str(ARTIFACTS / "sync-health-contact.png"))

            # The contact whose name was rejected while its title was written: each row shows its own outcome.
            driver.get(f"{server.url}/crm-sync/contact?q={linked['id']}")
            wait.until(ec.presence_of_element_located((By.ID, "history")))
            rows = {
                row.find_element(By.CSS_SELECTOR, '[data-key="decision"]').text: row
                for row in driver.find_elements(By.CSS_SELECTOR, "#history tr:not(:first-child)")
                if row.find_element(By.CSS_SELECTOR, '[data-key="run_id"]').get_attribute("data-run-id")
                == newest["run_id"]
            }
            reject_answer = rows["reject"].find_element(By.CSS_SELECTOR, '[data-key="answer"]')
            assert reject_answer.text.startswith("not sent"), reject_answer.text
            assert "FirstName too long" in rows["reject"].find_element(By.CSS_SELECTOR, '[data-key="reason"]').text
            update_answer = rows["update"].find_element(By.CSS_SELECTOR, '[data-key="answer"]')
            assert update_answer.text.startswith("ok (update") and "ok" in update_answer.get_attribute("class")
        finally:
            driver.quit()
