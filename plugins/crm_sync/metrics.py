"""The metrics of one run, derived from its report (no Airflow: the report task sends them through `Stats`).

Plain StatsD has no tags, so side, action and status are parts of the name. Every name is listed in the
README; under `[metrics] statsd_prefix` (default `airflow`) they arrive as `<prefix>.crm_sync.…`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from include.sync_logic.sides import Action, Side


@dataclass(frozen=True)
class Metric:
    """One value to send: a counter (`incr`), a gauge, or a timing in milliseconds."""

    kind: Literal["incr", "gauge", "timing"]
    name: str
    value: float


def run_metrics(report: Mapping[str, Any]) -> list[Metric]:
    """Records by action and side, API calls, 429s, waits, rejects, retry-queue size and run lag."""
    metrics = [Metric("incr", f"crm_sync.extracted.{side}", n) for side, n in report.get("extracted", {}).items()]
    metrics += [
        Metric("incr", f"crm_sync.decisions.{key}", n) for key, n in sorted(report.get("decisions", {}).items())
    ]
    metrics += [Metric("incr", f"crm_sync.records.{key}", n) for key, n in sorted(report.get("outcomes", {}).items())]
    api = report.get("api", {})
    for side in Side:
        if f"{side}_api_calls" not in api:
            continue
        metrics += [
            Metric("incr", f"crm_sync.api_calls.{side}", api[f"{side}_api_calls"]),
            Metric("incr", f"crm_sync.throttled.{side}", api.get(f"{side}_rate_limit_throttled_responses", 0)),
            Metric("incr", f"crm_sync.rate_limit_waits.{side}", api.get(f"{side}_rate_limit_waited_acquires", 0)),
            Metric("timing", f"crm_sync.rate_limit_wait.{side}", 1000 * api.get(f"{side}_rate_limit_wait_seconds", 0)),
        ]
    for target, count in sorted(rejects_by_target(report).items()):
        metrics.append(Metric("incr", f"crm_sync.rejects.{target}", count))
    metrics.append(Metric("gauge", "crm_sync.rejects.run_total", report.get("rejects", {}).get("count", 0)))
    queue = report.get("retry_queue")
    if queue:
        metrics += [Metric("gauge", f"crm_sync.retry_queue.{status}", n) for status, n in sorted(queue.items())]
    for side, pool in sorted(report.get("rate_limit_pool", {}).items()):
        for name, limit in sorted(pool.get("limits", {}).items()):
            metrics.append(Metric("gauge", f"crm_sync.pool_used.{side}.{name}", limit["used"]))
    if "lag_seconds" in report:
        metrics.append(Metric("gauge", "crm_sync.run_lag_seconds", report["lag_seconds"]))
    return metrics


def rejects_by_target(report: Mapping[str, Any]) -> dict[str, int]:
    """Reject counts per target CRM: decision rejects plus what the CRM refused at load."""
    counts = {str(target): 0 for target in Side}
    for key, n in report.get("decisions", {}).items():
        target, _, action = key.partition(".")
        if action == Action.REJECT:
            counts[target] = counts.get(target, 0) + int(n)
    for key, n in report.get("outcomes", {}).items():
        target, _, rest = key.partition(".")
        if rest.endswith(".rejected"):
            counts[target] = counts.get(target, 0) + int(n)
    return counts
