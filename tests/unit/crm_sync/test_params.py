"""A param left empty in a nullable form field arrives as None and means the default, like a missing one."""

from __future__ import annotations

from crm_sync.alerts import AlertThresholds
from crm_sync.params import RunParams, param
from include.sync_logic.sides import Direction


def test_none_and_missing_mean_the_default_and_falsy_values_are_kept() -> None:
    assert param({"x": None}, "x", 7) == 7
    assert param({}, "x", 7) == 7
    assert param({"x": 0}, "x", 7) == 0
    assert param({"x": False}, "x", True) is False


def test_run_params_and_alert_thresholds_take_none() -> None:
    nulls = {name: None for name in ("direction", "lookback_minutes", "dry_run", "max_change_share")}
    params = RunParams.from_params(nulls)
    assert (params.direction, params.dry_run, params.max_change_share) == (Direction.BOTH, False, 0.5)
    assert params.lookback_minutes == RunParams.from_params({}).lookback_minutes == RunParams().lookback_minutes
    assert AlertThresholds.from_params({"alert_reject_share": None, "alert_retry_queue": None}) == AlertThresholds()


def test_run_params_are_typed_from_the_form_values() -> None:
    params = RunParams.from_params(
        {"direction": "hubspot_to_salesforce", "dry_run": True, "lookback_minutes": "30", "mass_change_min_count": 5}
    )
    assert params.direction is Direction.HUBSPOT_TO_SALESFORCE
    assert (params.dry_run, params.lookback_minutes, params.mass_change_min_count) == (True, 30, 5)
