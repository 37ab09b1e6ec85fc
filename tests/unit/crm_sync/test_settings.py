"""`[crm_sync]` settings: the defaults when nothing is set, and an AIRFLOW__CRM_SYNC__ override read when asked for."""

from __future__ import annotations

from dataclasses import fields

import pytest

from crm_sync.settings import DEFAULTS, CrmSyncSettings, crm_sync_settings
from include.sync_logic.sides import Side


@pytest.fixture(autouse=True)
def no_crm_sync_options(monkeypatch: pytest.MonkeyPatch) -> None:
    for option in fields(CrmSyncSettings):
        monkeypatch.delenv(f"AIRFLOW__CRM_SYNC__{option.name.upper()}", raising=False)


def test_nothing_set_gives_the_defaults() -> None:
    assert crm_sync_settings() == DEFAULTS
    assert (DEFAULTS.conn_id(Side.SALESFORCE), DEFAULTS.conn_id(Side.HUBSPOT)) == (
        "salesforce_default",
        "hubspot_default",
    )
    assert DEFAULTS.alert_to is None and DEFAULTS.staging_base is None


def test_an_environment_override_is_read_when_asked_for_with_its_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__HUBSPOT_CONN_ID", "hubspot_eu")
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__TASK_RETRIES", "5")
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__ALERT_TO", "ops@example.com")
    settings = crm_sync_settings()
    assert settings.conn_id(Side.HUBSPOT) == "hubspot_eu"
    assert settings.task_retries == 5
    assert settings.alert_to == "ops@example.com"
    assert settings.salesforce_conn_id == DEFAULTS.salesforce_conn_id


def test_an_empty_optional_option_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__ALERT_TO", "")
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__STAGING_BASE", "")
    assert (crm_sync_settings().alert_to, crm_sync_settings().staging_base) == (None, None)


def test_a_number_option_that_is_not_a_number_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CRM_SYNC__PARTITION_CONTACTS", "many")
    with pytest.raises(Exception, match="partition_contacts"):
        crm_sync_settings()
