"""A param left empty in a nullable form field arrives as None and means the default, like a missing one."""

from __future__ import annotations

from crm_sync.alerts import AlertThresholds
from crm_sync.operators.base import RunSettings
from crm_sync.params import param


def test_none_and_missing_mean_the_default_and_falsy_values_are_kept() -> None:
    assert param({"x": None}, "x", 7) == 7
    assert param({}, "x", 7) == 7
    assert param({"x": 0}, "x", 7) == 0
    assert param({"x": False}, "x", True) is False


def test_run_settings_and_alert_thresholds_take_none() -> None:
    nulls = {name: None for name in ("direction", "lookback_minutes", "state_conn_id", "max_change_share")}
    settings = RunSettings.from_params(nulls)
    assert (settings.direction, settings.state_conn_id, settings.max_change_share) == (
        "both",
        "crm_sync_state_default",
        0.5,
    )
    assert settings.lookback_minutes == RunSettings.from_params({}).lookback_minutes
    assert AlertThresholds.from_params({"alert_reject_share": None, "alert_retry_queue": None}) == AlertThresholds()
