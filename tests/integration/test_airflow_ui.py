"""The Airflow UI paths a data engineer takes every day, in Debian's chromium against the real api-server: the
DAG's trigger dialog with its default params (Single Run and Backfill) and a finished run's Clear dialog.

Selectors are those of Airflow 3.3's React UI as it renders (test ids where it has them, else labels and text).
What each action created is read back through the REST API (and the run's clear_number from the metadata DB).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
import requests
import sqlalchemy as sa

from tests.integration.airflow_project import DAG_ID, AirflowProject
from tests.integration.api_server import ApiServer, api_server
from tests.integration.browser import browser, log_in
from tests.integration.conftest import crm_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))
# A backfill from 08:00 to 09:00: the timetable's runs for 08:00 .. 09:00, both ends included (each covers
# [T, T + 15 min)).
BACKFILL_FROM = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
BACKFILL_TO = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
FINISHED_RUN_DATE = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


class Ui:
    """The api-server, a logged-in browser and a REST session on it, and the project's metadata DB."""

    def __init__(self, project: AirflowProject, server: ApiServer, driver: Any) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.project, self.server, self.driver = project, server, driver
        self.wait = WebDriverWait(driver, 60)
        token = requests.post(
            f"{server.url}/auth/token", json={"username": server.username, "password": server.password}, timeout=30
        )
        token.raise_for_status()
        self.rest = requests.Session()
        self.rest.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        answer = self.rest.get(f"{self.server.url}/api/v2/{path}", params=params, timeout=30)
        answer.raise_for_status()
        return answer.json()

    def runs(self, run_type: str) -> list[dict[str, Any]]:
        return [run for run in self.get(f"dags/{DAG_ID}/dagRuns")["dag_runs"] if run["run_type"] == run_type]

    def clear_number(self, run_id: str) -> int:
        engine = sa.create_engine(self.project.metadata_url)
        with engine.connect() as conn:
            query = sa.text("SELECT clear_number FROM dag_run WHERE dag_id = :dag AND run_id = :run")
            number = conn.execute(query, {"dag": DAG_ID, "run": run_id}).scalar_one()
        engine.dispose()
        return number

    def open_trigger_dialog(self) -> Any:
        """The DAG page's Trigger button; returns the dialog it opens."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.driver.get(f"{self.server.url}/dags/{DAG_ID}")
        self.wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, '[data-testid="trigger-dag-button"]'))).click()
        return self.visible_dialog()

    def visible_dialog(self) -> Any:
        from selenium.webdriver.common.by import By

        def shown(driver: Any) -> Any:
            dialogs = driver.find_elements(By.CSS_SELECTOR, '[role="dialog"][data-scope="dialog"]')
            return next((dialog for dialog in dialogs if dialog.is_displayed()), None)

        return self.wait.until(shown)

    def set_datetime(self, dialog: Any, index: int, when: datetime) -> None:
        """Fill the index-th date-time picker of a dialog (its popover has a Date and a Time field, in UTC)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        from selenium.webdriver.support import expected_conditions as ec

        dialog.find_elements(By.CSS_SELECTOR, '[data-testid="datetime-input"]')[index].click()
        popover = self.wait.until(
            lambda d: next(
                (
                    e
                    for e in d.find_elements(By.CSS_SELECTOR, '[data-scope="popover"][data-part="content"]')
                    if e.is_displayed() and e.find_elements(By.CSS_SELECTOR, 'input[placeholder="YYYY/MM/DD"]')
                ),
                None,
            )
        )
        popover.find_element(By.CSS_SELECTOR, 'input[placeholder="YYYY/MM/DD"]').send_keys(when.strftime("%Y/%m/%d"))
        time_field = popover.find_element(By.CSS_SELECTOR, 'input[placeholder="HH:mm"]')
        time_field.send_keys(Keys.CONTROL, "a")  # a date fills in 00:00
        time_field.send_keys(when.strftime("%H:%M"))
        dialog.find_element(By.XPATH, './/p[text()="Date Range"]').click()  # closes the popover
        self.wait.until(ec.invisibility_of_element(popover))


@pytest.fixture(scope="module")
def ui(new_airflow_project: Callable[[], AirflowProject], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    """A project of its own (its runs stay queued: no scheduler), the DAG parsed into it, the UI logged in."""
    project = new_airflow_project()
    project.airflow("dags", "reserialize")
    logs = tmp_path_factory.mktemp("airflow-ui")
    with api_server(project, {}, logs) as server:
        driver = browser()
        try:
            log_in(driver, server)
            yield Ui(project, server, driver)
        finally:
            driver.quit()


def default_params(ui: Ui) -> dict[str, Any]:
    return {name: param["value"] for name, param in ui.get(f"dags/{DAG_ID}/details")["params"].items()}


def test_trigger_with_the_default_params_creates_a_run(ui: Ui) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    before = {run["dag_run_id"] for run in ui.runs("manual")}
    dialog = ui.open_trigger_dialog()
    submit = ui.wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, '[data-testid="trigger-dag-submit"]')))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ui.driver.save_screenshot(str(ARTIFACTS / "airflow-trigger-defaults.png"))
    assert "alert_to" in dialog.text and submit.is_enabled(), "Trigger is greyed out with the default params"
    submit.click()

    ui.wait.until(lambda d: "/runs/manual__" in d.current_url)
    run_id = unquote(ui.driver.current_url.rsplit("/runs/", 1)[1])
    assert run_id not in before
    run = ui.get(f"dags/{DAG_ID}/dagRuns/{quote(run_id)}")
    assert run["run_type"] == "manual" and run["state"] == "queued"
    assert run["conf"] == default_params(ui)
    assert run["conf"]["alert_to"] is None and run["conf"]["direction"] == "both"


def test_backfill_with_the_default_params_creates_a_backfill(ui: Ui) -> None:
    from selenium.webdriver.common.by import By

    assert ui.get("backfills", dag_id=DAG_ID)["backfills"] == []
    dialog = ui.open_trigger_dialog()
    dialog.find_element(By.XPATH, './/label[.//input[@value="backfill"]]').click()
    run_backfill = ui.wait.until(lambda d: dialog.find_element(By.XPATH, './/button[text()="Run Backfill"]'))
    assert not run_backfill.is_enabled(), "no date range yet"
    ui.set_datetime(dialog, 0, BACKFILL_FROM)
    ui.set_datetime(dialog, 1, BACKFILL_TO)
    ui.wait.until(lambda d: run_backfill.is_enabled())
    run_backfill.click()

    backfills = ui.wait.until(lambda d: ui.get("backfills", dag_id=DAG_ID)["backfills"])
    ui.driver.get(f"{ui.server.url}/dags/{DAG_ID}/backfills")
    shown_from = f'td[data-testid="table-cell-date_from"] time[datetime="{BACKFILL_FROM:%Y-%m-%dT%H:%M:%SZ}"]'
    ui.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, shown_from))
    ui.driver.save_screenshot(str(ARTIFACTS / "airflow-backfill-started.png"))
    assert len(backfills) == 1
    backfill = backfills[0]
    assert datetime.fromisoformat(backfill["from_date"]) == BACKFILL_FROM
    assert datetime.fromisoformat(backfill["to_date"]) == BACKFILL_TO
    assert not backfill["dag_run_conf"], "params left at their defaults: no conf, the runs take the DAG's defaults"
    starts = sorted(datetime.fromisoformat(run["data_interval_start"]) for run in ui.runs("backfill"))
    assert starts == [BACKFILL_FROM + timedelta(minutes=15 * n) for n in range(5)], "08:00 to 09:00, both included"


def test_clear_on_a_finished_run_queues_it_again(ui: Ui, sandbox_factory, clean_redis, state_conn) -> None:
    from selenium.webdriver.common.by import By

    sandbox = sandbox_factory(
        contacts=20, seed=5, clock=(FINISHED_RUN_DATE - timedelta(seconds=30)).isoformat(), window_minutes=14
    )
    # A real run to its end; whether it synced is other tests' business (no task retries: it ends either way).
    env = {**crm_env(sandbox, clean_redis, state_conn), "AIRFLOW__CRM_SYNC__TASK_RETRIES": "0"}
    ui.project.dags_test(FINISHED_RUN_DATE.isoformat(), env=env)
    run = next(
        run
        for run in ui.get(f"dags/{DAG_ID}/dagRuns")["dag_runs"]
        if datetime.fromisoformat(run["logical_date"]) == FINISHED_RUN_DATE
    )
    assert run["state"] in ("success", "failed") and ui.clear_number(run["dag_run_id"]) == 0

    ui.driver.get(f"{ui.server.url}/dags/{DAG_ID}/runs/{quote(run['dag_run_id'])}")
    ui.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, 'button[aria-label="Press shift+c to clear"]')).click()
    dialog = ui.visible_dialog()
    assert run["dag_run_id"] in dialog.find_element(By.TAG_NAME, "h2").text
    dialog.find_element(By.XPATH, './/button[normalize-space()="Confirm"]').click()

    ui.wait.until(lambda d: ui.get(f"dags/{DAG_ID}/dagRuns/{quote(run['dag_run_id'])}")["state"] == "queued")
    assert ui.clear_number(run["dag_run_id"]) == 1
