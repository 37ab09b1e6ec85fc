"""The run report: counts per action and side, API use, rate-limit waits and every reject (no Airflow imports).

Kept pure so the same code builds the report in the task and summarises it on the command line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from include.sync_logic.sides import Side

if TYPE_CHECKING:
    import pandas as pd

REJECT_COLUMNS = ["stage", "target", "action", "source_system", "source_id", "target_id", "code", "reason"]


def merge_counters(parts: Iterable[Mapping[str, Any] | None]) -> dict[str, float]:
    """Sum numeric dicts (per-task API and wait stats); max_* keys keep the maximum."""
    total: dict[str, float] = {}  # ints stay ints: counts and seconds share it
    maxima: dict[str, float] = {}
    for part in parts:
        for key, value in (part or {}).items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if key.startswith("max_"):
                maxima[key] = max(maxima.get(key, 0), value)
            else:
                total[key] = total.get(key, 0) + value
    return {**{key: round(value, 3) for key, value in total.items()}, **maxima}


def decision_rejects(decisions: pd.DataFrame) -> pd.DataFrame:
    """Contacts the decision engine refused (invalid email, missing LastName, duplicates...)."""
    rejected = decisions[decisions["action"] == "reject"]
    frame = rejected.reindex(columns=["target", "action", "source_system", "source_id", "target_id", "reason"]).copy()
    frame.insert(0, "stage", "reconcile")
    frame.insert(6, "code", "REJECTED_BY_RULES")
    return frame[REJECT_COLUMNS]


def load_rejects(results: pd.DataFrame) -> pd.DataFrame:
    """Records a CRM refused, with its own error code and message."""
    failed = results[~results["ok"].astype(bool)]
    frame = failed.rename(columns={"ref": "source_id", "error_code": "code", "message": "reason"}).reindex(
        columns=REJECT_COLUMNS
    )
    frame["stage"] = failed["stage"].to_numpy() if "stage" in failed else "load"
    return frame[REJECT_COLUMNS]


def outcome_counts(results: pd.DataFrame) -> dict[str, int]:
    """`<target>.<action>.<ok|rejected|dry_run>` counts of load and link-back results."""
    if results.empty:
        return {}
    status = results["ok"].map({True: "ok", False: "rejected"})
    if "dry_run" in results:
        status = status.where(~results["dry_run"].astype(bool), "dry_run")
    keys = results["target"] + "." + results["action"] + "." + status
    return {str(key): int(count) for key, count in keys.value_counts().sort_index().items()}


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """A few human lines for the task log and the command line."""
    lines = [
        f"run {report['run_id']}  window {report['window']}  direction {report['direction']}"
        + ("  DRY RUN" if report.get("dry_run") else ""),
        f"extracted: salesforce {report['extracted']['salesforce']}, hubspot {report['extracted']['hubspot']}",
    ]
    settled = report.get("settled_in_window") or {}
    if settled:
        lines.append("equal to the sync state (skipped): " + ", ".join(f"{s} {n}" for s, n in settled.items()))
    for side, plan in (report.get("read_plan") or {}).items():
        lines.append(
            f"read plan {side}: {plan['strategy']}, {plan['keys']} keys, {plan['calls']} calls "
            f"(lookups {plan['lookup_calls']}, whole read {plan['whole_read_calls']})"
        )
    gone = report.get("tombstones") or {}
    lines.extend(f"gone: {line}" for line in [*gone.get("found", []), *gone.get("restored", [])])
    merges = report.get("merges") or {}
    if merges.get("merged_away") or merges.get("separate_counterparts"):
        lines.append("merges: " + ", ".join(f"{key} {value}" for key, value in merges.items()))
    for key, count in sorted(report["decisions"].items()):
        lines.append(f"  decided {key}: {count}")
    for key, count in sorted(report["outcomes"].items()):
        lines.append(f"  loaded  {key}: {count}")
    api = report.get("api", {})
    for side in Side:
        if f"{side}_api_calls" in api:
            stat = {
                key.removeprefix(f"{side}_rate_limit_"): value for key, value in api.items() if key.startswith(side)
            }
            lines.append(
                f"{side} api: {api[f'{side}_api_calls']} calls; rate-limit waits {stat.get('waited_acquires', 0)} "
                f"({stat.get('wait_seconds', 0)} s, longest {stat.get('max_wait_seconds', 0)} s), "
                f"429s {stat.get('throttled_responses', 0)}, pauses {stat.get('pauses', 0)}, "
                f"deferred {stat.get('too_long', 0)}"
            )
    state = report.get("sync_state") or {}
    if state:
        queue = state.get("retry_queue") or {}
        due = sum((state.get("retries_due") or {}).values())
        lines.append(
            f"sync state: {state.get('snapshots_read', 0)} snapshots read, {state.get('baseline_recorded', 0)} "
            f"recorded before the writes, {state.get('snapshots_written', 0)} after them; retries due {due}, "
            f"recorded {state.get('retries_recorded', 0)}, closed {state.get('retries_resolved', 0)}; "
            f"queue pending {queue.get('pending', 0)}, parked {queue.get('parked', 0)}"
        )
    lines.append(f"rejects: {report['rejects']['count']} (file: {report['rejects']['path']})")
    return lines


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-safe dicts: missing values become None (XCom refuses NaN)."""
    return [
        {str(key): (None if value is None or value != value else str(value)) for key, value in row.items()}
        for row in frame.to_dict(orient="records")
    ]
