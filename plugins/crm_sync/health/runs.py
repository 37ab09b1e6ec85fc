"""The runs the view lists, read from the report each run leaves in its staging folder (report.json)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import ObjectStoragePath

from crm_sync.health.times import parse_time
from crm_sync.metrics import rejects_by_target
from crm_sync.settings import DAG_ID
from crm_sync.staging import read_json, staging_base
from include.sync_logic.sides import Side


def run_folders(limit: int) -> list[ObjectStoragePath]:
    """The newest run folders holding a report, newest first (by the report's modification time)."""
    root = staging_base() / DAG_ID
    if not root.exists():
        return []
    reports = [folder / "report.json" for folder in root.iterdir() if (folder / "report.json").exists()]
    reports.sort(key=lambda path: path.stat()["mtime"], reverse=True)
    return [path.parent for path in reports[:limit]]


def run_summary(report: dict[str, Any]) -> dict[str, Any]:
    """One row of the runs table: window, counts per action and side, API calls, waits, 429s, rejects."""
    api = report.get("api", {})
    return {
        "run_id": report["run_id"],
        "data_interval_end": _interval_end(report),
        "window": report["window"],
        "direction": report.get("direction"),
        "dry_run": bool(report.get("dry_run")),
        "extracted": report.get("extracted", {}),
        "decisions": report.get("decisions", {}),
        "outcomes": report.get("outcomes", {}),
        "api": {
            str(side): {
                "calls": api.get(f"{side}_api_calls", 0),
                "waits": api.get(f"{side}_rate_limit_waited_acquires", 0),
                "wait_seconds": api.get(f"{side}_rate_limit_wait_seconds", 0),
                "throttled": api.get(f"{side}_rate_limit_throttled_responses", 0),
                "pauses": api.get(f"{side}_rate_limit_pauses", 0),
            }
            for side in Side
        },
        "rejects": report.get("rejects", {}).get("count", 0),
        "rejects_by_target": rejects_by_target(report),
        "lag_seconds": report.get("lag_seconds"),
        "org_budgets": org_budgets(report.get("rate_limit_pool") or {}),
    }


def org_budgets(pools: dict[str, Any]) -> dict[str, dict[str, dict[str, int]]]:
    """Per side and limit, the account-wide figures the vendor last reported (`used`, `maximum`, `ceiling`):
    Salesforce's daily budget from `Sforce-Limit-Info`. Limits without such a header are left out."""
    return {
        side: {
            name: {"used": limit["org_used"], "maximum": limit["org_maximum"], "ceiling": limit.get("ceiling")}
            for name, limit in pool.get("limits", {}).items()
            if limit.get("org_maximum")
        }
        for side, pool in pools.items()
        if "error" not in pool
    }


def by_data_interval(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Newest data interval first, so a backfill's runs read in order whatever order they ran in; reports
    that name no data interval (written before reports recorded it) follow, in the order given."""
    missing = datetime.min.replace(tzinfo=UTC)
    return sorted(reports, key=lambda report: parse_time(_interval_end(report)) or missing, reverse=True)


def _interval_end(report: dict[str, Any]) -> str | None:
    return (report.get("data_interval") or {}).get("end")


def recent_reports(limit: int) -> list[dict[str, Any]]:
    """The reports written last, newest data interval first."""
    return by_data_interval([read_json(str(folder / "report.json")) for folder in run_folders(limit)])


def recent_runs(limit: int = 20) -> list[dict[str, Any]]:
    return [run_summary(report) for report in recent_reports(limit)]


def recent_rejects(limit_runs: int = 5) -> list[dict[str, Any]]:
    """The rejects the newest runs listed in their reports (ids, codes, reasons; already redacted there)."""
    return [
        {"run_id": report["run_id"], **reject}
        for report in recent_reports(limit_runs)
        for reject in report.get("rejects", {}).get("first", [])
    ]
