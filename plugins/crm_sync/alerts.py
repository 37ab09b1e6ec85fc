"""When a finished run deserves an alert beyond failing (no Airflow: the report task sends them).

Rejects passing a share of the contacts considered, any contact parked at once for a refusal no retry can pass,
a retry queue grown past a size, and the CRM's daily API budget used past a share. Each reason is one line; the
notifier puts them in one message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crm_sync.metrics import rejects_by_target
from crm_sync.params import param


@dataclass(frozen=True)
class AlertThresholds:
    """Set from the DAG params `alert_reject_share`, `alert_retry_queue` and `alert_api_budget_share`."""

    reject_share: float = 0.05
    retry_queue: int = 500
    api_budget_share: float = 0.8

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> AlertThresholds:
        return cls(
            reject_share=float(param(params, "alert_reject_share", cls.reject_share)),
            retry_queue=int(param(params, "alert_retry_queue", cls.retry_queue)),
            api_budget_share=float(param(params, "alert_api_budget_share", cls.api_budget_share)),
        )


def threshold_alerts(report: Mapping[str, Any], thresholds: AlertThresholds) -> list[str]:
    """The reasons this run's report crosses a threshold (empty: nothing to say)."""
    reasons = []
    considered = sum(int(n) for n in report.get("decisions", {}).values())
    rejected = sum(rejects_by_target(report).values())
    if considered and rejected / considered > thresholds.reject_share:
        reasons.append(
            f"rejects: {rejected} of {considered} contacts considered ({rejected / considered:.1%}) "
            f"> {thresholds.reject_share:.1%}"
        )
    parked = int((report.get("sync_state") or {}).get("retries_parked") or 0)
    if parked:
        # A permanent refusal (a validation or duplicate rule, field security...) is parked at once: no retry
        # will land it, so someone has to fix the data or the rule.
        reasons.append(f"parked: {parked} contacts refused for good this run (see the rejects; a data change retries)")
    queued = sum(int(n) for n in (report.get("retry_queue") or {}).values())
    if queued > thresholds.retry_queue:
        reasons.append(f"retry queue: {queued} contacts waiting or parked > {thresholds.retry_queue}")
    for side, pool in sorted(report.get("rate_limit_pool", {}).items()):
        daily = pool.get("limits", {}).get("daily_api_requests")
        if not daily:
            continue
        # The org's own figures when the vendor reported them (every integration counts), else the pool's.
        used, limit = (
            (daily["org_used"], daily["org_maximum"]) if daily.get("org_maximum") else (daily["used"], daily["limit"])
        )
        if limit and used / limit > thresholds.api_budget_share:
            reasons.append(
                f"{side} daily API budget: {used} of {limit} used ({used / limit:.0%}) "
                f"> {thresholds.api_budget_share:.0%}"
            )
    return reasons
