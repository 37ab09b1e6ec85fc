"""Metrics and threshold alerts derived from a run report."""

from __future__ import annotations

from crm_sync.alerts import AlertThresholds, threshold_alerts
from crm_sync.metrics import Metric, rejects_by_target, run_metrics

REPORT = {
    "extracted": {"salesforce": 100, "hubspot": 80},
    "decisions": {"hubspot.update": 40, "hubspot.reject": 3, "salesforce.create": 50, "salesforce.skip": 7},
    "outcomes": {"hubspot.update.ok": 39, "hubspot.update.rejected": 1, "salesforce.create.ok": 50},
    "api": {
        "hubspot_api_calls": 12,
        "hubspot_rate_limit_throttled_responses": 2,
        "hubspot_rate_limit_waited_acquires": 3,
        "hubspot_rate_limit_wait_seconds": 1.5,
        "salesforce_api_calls": 9,
    },
    "rejects": {"count": 4},
    "retry_queue": {"pending": 6, "parked": 1},
    "rate_limit_pool": {
        "salesforce": {"limits": {"daily_api_requests": {"used": 900, "limit": 1000, "window_seconds": 86400}}},
        "hubspot": {"limits": {"requests_per_10s": {"used": 5, "limit": 100, "window_seconds": 10}}},
    },
    "lag_seconds": 42.0,
}


def test_run_metrics_name_side_action_and_status() -> None:
    metrics = {metric.name: metric for metric in run_metrics(REPORT)}
    assert metrics["crm_sync.records.hubspot.update.rejected"] == Metric(
        "incr", "crm_sync.records.hubspot.update.rejected", 1
    )
    assert metrics["crm_sync.decisions.salesforce.create"].value == 50
    assert metrics["crm_sync.api_calls.hubspot"].value == 12
    assert metrics["crm_sync.throttled.hubspot"].value == 2
    assert metrics["crm_sync.rate_limit_wait.hubspot"] == Metric("timing", "crm_sync.rate_limit_wait.hubspot", 1500)
    assert metrics["crm_sync.throttled.salesforce"].value == 0
    assert metrics["crm_sync.rejects.hubspot"].value == 4
    assert metrics["crm_sync.retry_queue.pending"] == Metric("gauge", "crm_sync.retry_queue.pending", 6)
    assert metrics["crm_sync.pool_used.salesforce.daily_api_requests"].value == 900
    assert metrics["crm_sync.run_lag_seconds"] == Metric("gauge", "crm_sync.run_lag_seconds", 42.0)


def test_without_a_state_store_no_queue_metric_is_invented() -> None:
    names = {metric.name for metric in run_metrics({**REPORT, "retry_queue": None})}
    assert not any(name.startswith("crm_sync.retry_queue") for name in names)


def test_rejects_count_decision_rejects_and_crm_refusals_per_target() -> None:
    assert rejects_by_target(REPORT) == {"salesforce": 0, "hubspot": 4}


def test_each_threshold_passed_gives_one_reason() -> None:
    reasons = threshold_alerts(REPORT, AlertThresholds(reject_share=0.03, retry_queue=5, api_budget_share=0.8))
    assert len(reasons) == 3
    assert reasons[0].startswith("rejects: 4 of 100 contacts considered (4.0%)")
    assert reasons[1] == "retry queue: 7 contacts waiting or parked > 5"
    assert reasons[2].startswith("salesforce daily API budget: 900 of 1000 used (90%)")


def test_a_healthy_run_raises_nothing() -> None:
    assert threshold_alerts(REPORT, AlertThresholds(reject_share=0.05, retry_queue=10, api_budget_share=0.95)) == []


def test_thresholds_come_from_the_params() -> None:
    params = {"alert_reject_share": "0.2", "alert_retry_queue": 3, "alert_api_budget_share": 0.5}
    assert AlertThresholds.from_params(params) == AlertThresholds(0.2, 3, 0.5)
    assert AlertThresholds.from_params({}) == AlertThresholds()


def test_the_budget_alert_uses_the_orgs_own_usage_when_salesforce_reported_it():
    """The pool's count is shifted to the sync's ceiling; the alert is about the org's whole budget."""
    pool = {"limits": {"daily_api_requests": {"used": 0, "limit": 15000, "org_used": 85000, "org_maximum": 100000}}}
    report = {**REPORT, "rate_limit_pool": {"salesforce": pool}}
    reasons = threshold_alerts(report, AlertThresholds(reject_share=1, retry_queue=10**6, api_budget_share=0.8))
    assert reasons == ["salesforce daily API budget: 85000 of 100000 used (85%) > 80%"]


def test_contacts_parked_at_once_raise_an_alert_whatever_the_thresholds():
    lenient = AlertThresholds(reject_share=1, retry_queue=10**6, api_budget_share=1)
    assert threshold_alerts({**REPORT, "sync_state": {"retries_parked": 0}}, lenient) == []
    (reason,) = threshold_alerts({**REPORT, "sync_state": {"retries_parked": 2}}, lenient)
    assert reason.startswith("parked: 2 contacts refused for good")
