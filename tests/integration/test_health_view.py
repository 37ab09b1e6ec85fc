"""The sync-health view, for real: Airflow's api-server with the plugin, a real DAG run's report, headless Chromium."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import requests

from crm_sync.state.engine import create_state_engine
from crm_sync.state.store import SyncStateStore
from tests.integration.api_server import api_server
from tests.integration.conftest import crm_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))
T = datetime.fromisoformat("2026-11-28T10:00:00+00:00")
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("Debian chromium and chromium-driver are needed: run `make test` (it installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def cell(driver, table: str, key: str) -> str:
    """The first cell with this key in a table (the runs table lists the newest run first)."""
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'#{table} td[data-key="{key}"]').text


def test_the_view_needs_a_login_and_shows_the_run_report_and_a_contact_history(
    airflow_project, sandbox_factory, clean_redis, state_conn, tmp_path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    sandbox = sandbox_factory(contacts=150, seed=4, clock=(T - timedelta(seconds=30)).isoformat(), window_minutes=14)
    env = crm_env(sandbox, clean_redis, state_conn)
    run = airflow_project.dags_test(T.isoformat(), env=env)
    assert run.returncode == 0, run.log[-3000:]
    report = run.report
    rejects = pd.read_parquet(next(run.staging.glob("*/*/rejects.parquet")))
    refused = rejects[rejects["stage"] == "load"].iloc[0]
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
        "AIRFLOW__CRM_SYNC__STAGING_BASE": f"file://{run.staging}",
        "AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT": state_url,
    }
    with api_server(airflow_project, server_env, tmp_path) as server:
        for path in ("/crm-sync/", "/crm-sync/api/runs", f"/crm-sync/contact?q={refused.source_id}"):
            assert requests.get(server.url + path, timeout=30).status_code == 401, path
        forged = requests.get(server.url + "/crm-sync/api/runs", cookies={"_token": "forged"}, timeout=30)
        assert forged.status_code in (401, 403)

        driver = browser()
        try:
            wait = WebDriverWait(driver, 60)
            driver.get(f"{server.url}/auth/login")
            wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys(server.username)
            driver.find_element(By.NAME, "password").send_keys(server.password)
            driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            wait.until(lambda d: "/auth/login" not in d.current_url)

            # The Airflow UI's Browse menu entry opens the view inside the UI.
            driver.get(f"{server.url}/plugin/crm-sync-health")
            frame = wait.until(ec.presence_of_element_located((By.TAG_NAME, "iframe")))
            driver.switch_to.frame(frame)
            wait.until(ec.presence_of_element_located((By.ID, "runs")))
            assert cell(driver, "runs", "run_id") == report["run_id"]
            for key, count in report["decisions"].items():
                assert cell(driver, "runs", key) == str(count), key
            for crm in ("salesforce", "hubspot"):
                assert cell(driver, "runs", f"{crm}.calls") == str(report["api"][f"{crm}_api_calls"])
                assert cell(driver, "runs", f"{crm}.throttled") == str(
                    report["api"][f"{crm}_rate_limit_throttled_responses"]
                )
            assert cell(driver, "runs", "rejects") == str(report["rejects"]["count"])
            for key, count in report["outcomes"].items():
                assert cell(driver, "outcomes", key) == str(count), key
            queue = driver.find_element(By.ID, "retry-queue").text
            assert str(refused.source_id) in queue and refused.code in queue
            assert "@" not in queue, "the CRM's message is redacted in the queue"
            hubspot_used = driver.find_element(By.CSS_SELECTOR, 'td[data-key="hubspot.requests_per_10s.used"]').text
            assert int(hubspot_used) >= 0
            driver.switch_to.default_content()
            driver.save_screenshot(str(ARTIFACTS / "sync-health.png"))

            # One refused contact's history, searched by its Salesforce id from inside the view.
            driver.get(f"{server.url}/crm-sync/")
            box = driver.find_element(By.NAME, "q")
            box.send_keys(str(refused.source_id))
            box.submit()
            wait.until(ec.presence_of_element_located((By.ID, "history")))
            assert cell(driver, "history", "decision") == refused.action
            answer = cell(driver, "history", "answer")
            assert answer.startswith(f"refused {refused.code}")
            assert "@" not in answer and "@" not in cell(driver, "history", "fields"), "emails masked (log_pii off)"
            queued = driver.find_element(By.CSS_SELECTOR, "#retry-queue tr:nth-child(2)").text
            assert str(refused.source_id) in queued and " 2 " in f" {queued} ", "attempts shown"
            driver.save_screenshot(str(ARTIFACTS / "sync-health-contact.png"))
        finally:
            driver.quit()
