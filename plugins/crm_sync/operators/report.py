"""Report: one JSON report plus a rejects file beside the staged data, summarised in the task log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crm_sync.operators.base import CrmSyncOperator
from crm_sync.staging import read_frame, read_frames, write_frame, write_json

if TYPE_CHECKING:
    from airflow.sdk import Context

STATS_TASKS = (
    "extract_salesforce",
    "extract_hubspot",
    "reconcile",
    "load_hubspot",
    "load_salesforce",
    "link_back",
)
REJECTS_IN_XCOM = 50


class SyncReportOperator(CrmSyncOperator):
    """Runs whatever happened upstream (trigger rule all_done), so a failed load still gets its report."""

    ui_color = "#eef7ee"

    def execute(self, context: Context) -> dict[str, Any]:
        import pandas as pd

        from crm_sync.report import (
            decision_rejects,
            json_records,
            load_rejects,
            merge_counters,
            outcome_counts,
            redact,
            summary_lines,
        )

        settings = self.settings(context)
        window = self.window(context)
        ti = context["ti"]
        folder = self.run_folder(context)
        extracts = {system: ti.xcom_pull(task_ids=f"extract_{system}") or {} for system in ("salesforce", "hubspot")}
        reconciled = ti.xcom_pull(task_ids="reconcile") or {}
        decisions = read_frame(reconciled["decisions"]) if reconciled.get("decisions") else None
        results = read_frames([str(path) for path in sorted((folder / "results").glob("*.parquet"))])
        if results is None:
            results = pd.DataFrame(columns=["target", "action", "ref", "target_id", "ok", "error_code", "message"])

        rejects = pd.concat(
            [
                frame
                for frame in (
                    decision_rejects(decisions) if decisions is not None else None,
                    load_rejects(results),
                )
                if frame is not None and not frame.empty
            ]
            or [pd.DataFrame(columns=["stage", "target", "source_id", "reason"])],
            ignore_index=True,
        )
        rejects_url = write_frame(folder / "rejects.parquet", rejects)
        stats = []
        for task_id in STATS_TASKS:
            pulled = ti.xcom_pull(task_ids=task_id)
            for value in pulled if isinstance(pulled, list) else [pulled]:
                if isinstance(value, dict):
                    stats.append(value.get("api"))
        report = {
            "dag_id": self.dag_id,
            "run_id": context["run_id"],
            "window": window.describe(),
            "direction": settings.direction,
            "dry_run": settings.dry_run,
            "extracted": {system: extracts[system].get("count", 0) for system in extracts},
            "decisions": reconciled.get("counts", {}),
            "outcomes": outcome_counts(results),
            "api": merge_counters(stats),
            "sync_state": _state_summary(ti.xcom_pull(task_ids="settle_state"), reconciled),
            "rejects": {
                "count": len(rejects),
                "path": rejects_url,
                "first": json_records(rejects.head(REJECTS_IN_XCOM)),
            },
        }
        report_url = write_json(folder / "report.json", report)
        self.log.info("::group::Sync report")
        for line in summary_lines(report):
            self.log.info("%s", line)
        self.log.info("::endgroup::")
        if len(rejects):
            self.log.info("::group::Rejects (%d; ids and reasons, full list in %s)", len(rejects), rejects_url)
            for row in rejects.itertuples(index=False):
                self.log.info(
                    "reject stage=%s target=%s %s source=%s:%s code=%s reason=%s",
                    row.stage,
                    row.target,
                    getattr(row, "action", ""),
                    getattr(row, "source_system", ""),
                    row.source_id,
                    getattr(row, "code", ""),
                    redact(row.reason),
                )
            self.log.info("::endgroup::")
        self.log.info("Report written to %s", report_url)
        return {**report, "report_path": report_url}


def _state_summary(settled: Any, reconciled: dict[str, Any]) -> dict[str, Any]:
    """The sync state's part of the report: snapshots read and written, retries due, recorded and queued."""
    settled = settled if isinstance(settled, dict) else {}
    return {
        "snapshots_read": reconciled.get("snapshots_read", 0),
        "retries_due": reconciled.get("retries_due", {}),
        **{key: value for key, value in settled.items() if key != "settled"},
        "settled": bool(settled.get("settled")),
    }
