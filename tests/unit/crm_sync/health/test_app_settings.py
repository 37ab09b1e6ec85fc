"""The sync-health view sees no run's params: its pools and retry queue come from the `[crm_sync]` connections."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_sync.health import app
from crm_sync.state.engine import create_state_engine
from crm_sync.state.store import SyncStateStore


def test_the_pools_are_read_through_the_configured_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Salesforce's connection exists, so its pool gets as far as the configured Redis (undefined: named in the
    error); HubSpot's configured connection does not exist and is named."""
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__SALESFORCE_CONN_ID", "salesforce_eu")
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__HUBSPOT_CONN_ID", "hubspot_eu")
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__REDIS_CONN_ID", "redis_eu")
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_EU", '{"conn_type": "salesforce"}')
    pools = app.pools()
    assert "redis_eu" in pools["salesforce"]["error"]
    assert "hubspot_eu" in pools["hubspot"]["error"]


def test_the_retry_queue_is_read_from_the_configured_state(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = SyncStateStore(create_state_engine(url))
    store.create_schema()
    refused = pd.DataFrame(
        [("hubspot", "003A", None, "create", "h1", "INVALID_EMAIL", "bad email", True)],
        columns=["target", "source_id", "target_id", "action", "data_hash", "code", "message", "permanent"],
    )
    store.record_attempts(refused, run_id="scheduled__2026-11-28T10:00:00+00:00")
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__STATE_CONN_ID", "crm_sync_state_eu")
    monkeypatch.setenv("AIRFLOW_CONN_CRM_SYNC_STATE_EU", url)
    assert [(entry["source_id"], entry["status"]) for entry in app.retry_queue() or []] == [("003A", "parked")]
