"""`python -m crm_sync.state` as a subprocess against a real database (SQLite file and PostgreSQL)."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from crm_sync.state.policy import RetryPolicy
from crm_sync.state.store import SyncStateStore

ROOT = Path(__file__).resolve().parents[4]

pytestmark = pytest.mark.integration  # a fresh Python (pandas, SQLAlchemy, Airflow) per call: seconds each


def cli(*args, env=None):
    environment = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "crm_sync.state", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=120,
    )


@pytest.fixture
def seeded(store):
    """Three entries: two for HubSpot (one parked), one for Salesforce; a message quoting an email."""
    parking = SyncStateStore(store.engine, RetryPolicy(max_attempts=2))
    entries = pd.DataFrame(
        {
            "target": ["hubspot", "hubspot", "salesforce"],
            "source_id": ["003A", "003B", "101"],
            "target_id": [None, "202", "003Q"],
            "action": ["create", "update", "update"],
            "data_hash": "h",
            "code": ["INVALID_EMAIL", "429", "FIELD_CUSTOM_VALIDATION_EXCEPTION"],
            "message": ["Email ann.lee@example.com is invalid", None, "LastName too long"],
        }
    )
    parking.record_attempts(entries, run_id="r1")
    parking.record_attempts(entries[entries["source_id"] == "003B"], run_id="r2")
    return store


def test_list_prints_a_table_without_emails(seeded, state_url):
    result = cli("list", "--url", state_url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:6] == ["target", "source_id", "target_id", "action", "status", "attempts"]
    assert "003A" in result.stdout and "101" in result.stdout
    assert "ann.lee@example.com" not in result.stdout
    assert "Email <email> is invalid" in result.stdout
    assert lines[-1] == "3 entries"


def test_list_filters(seeded, state_url):
    result = cli("list", "--url", state_url, "--target", "hubspot", "--status", "parked")
    assert result.returncode == 0, result.stderr
    assert "003B" in result.stdout and "003A" not in result.stdout
    assert result.stdout.splitlines()[-1] == "1 entries"
    assert cli("list", "--url", state_url, "--source-id", "nope").stdout.splitlines() == ["no entries", "0 entries"]


def test_size(seeded, state_url):
    result = cli("size", "--url", state_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["pending: 2", "parked: 1"]


def test_retry_releases_the_matching_entries(seeded, state_url):
    result = cli("retry", "--url", state_url, "--status", "parked")
    assert result.returncode == 0, result.stderr
    assert "released 1 entries" in result.stdout
    assert seeded.queue_size() == {"pending": 3, "parked": 0}
    assert "003B" in set(seeded.due()["source_id"])


def test_clear_needs_a_filter_or_all(seeded, state_url):
    refused = cli("clear", "--url", state_url)
    assert refused.returncode == 2
    assert "--all" in refused.stderr
    assert len(seeded.entries()) == 3
    result = cli("clear", "--url", state_url, "--target", "hubspot", "--source-id", "003A", "003B")
    assert "cleared 2 entries" in result.stdout
    assert cli("clear", "--url", state_url, "--all").stdout.strip() == "cleared 1 entries"
    assert seeded.entries().empty


@pytest.mark.parametrize("state_url", ["sqlite"], indirect=True)
def test_through_the_airflow_connection(seeded, state_url):
    env = {"AIRFLOW_CONN_STATE_FOR_CLI": state_url}
    result = cli("size", "--conn-id", "state_for_cli", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["pending: 2", "parked: 1"]


def test_a_missing_connection_is_reported_without_a_traceback():
    result = cli("size", "--conn-id", "no_such_state", env={"AIRFLOW_CONN_NO_SUCH_STATE": ""})
    assert result.returncode == 1
    assert "AIRFLOW_CONN_NO_SUCH_STATE=" in result.stderr
    assert "Traceback" not in result.stderr
