"""Report: one JSON report plus a rejects file beside the staged data, summarised in the task log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crm_sync.operators.base import CrmSyncOperator, run_try
from crm_sync.staging import iter_frames, read_frames, result_urls, write_frame, write_json

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

        from crm_sync.pii import redact_column
        from crm_sync.pool_state import crm_pool_states
        from crm_sync.report import (
            decision_rejects,
            json_records,
            load_rejects,
            merge_counters,
            outcome_counts,
            summary_lines,
        )

        settings = self.settings(context)
        window = self.window(context)
        ti = context["ti"]
        folder = self.run_folder(context)
        extracts = {system: ti.xcom_pull(task_ids=f"extract_{system}") or {} for system in ("salesforce", "hubspot")}
        reconciled = ti.xcom_pull(task_ids="reconcile") or {}
        results = read_frames(result_urls(reconciled.get("folder")))
        if results is None:
            results = pd.DataFrame(columns=["target", "action", "ref", "target_id", "ok", "error_code", "message"])

        rejects = pd.concat(
            [
                frame
                for frame in (
                    *(decision_rejects(part) for part in iter_frames(reconciled.get("decisions") or [])),
                    load_rejects(results),
                )
                if frame is not None and not frame.empty
            ]
            or [pd.DataFrame(columns=["stage", "target", "source_id", "reason"])],
            ignore_index=True,
        )
        # Staged like the log: emails and phones in the reasons masked unless log_pii; ids and codes kept.
        rejects["reason"] = redact_column(rejects["reason"], log_pii=settings.log_pii)
        rejects_url = write_frame(folder / "rejects.parquet", rejects)
        stats = []
        for task_id in STATS_TASKS:
            pulled = ti.xcom_pull(task_ids=task_id)
            for value in pulled if isinstance(pulled, list) else [pulled]:
                if isinstance(value, dict):
                    stats.append(value.get("api"))
        state = _state_summary(ti.xcom_pull(task_ids="settle_state"), reconciled)
        report = {
            "dag_id": self.dag_id,
            "run_id": context["run_id"],
            "try": run_try(context),
            # The try's folder with its decisions/ and results/ (the contact history reads them from here).
            "staged": reconciled.get("folder"),
            "window": window.describe(),
            # What the view orders runs by (a backfill's runs finish in any order).
            "data_interval": {key: context[f"data_interval_{key}"].isoformat() for key in ("start", "end")},
            "direction": settings.direction,
            "dry_run": settings.dry_run,
            "log_pii": settings.log_pii,
            "extracted": {system: extracts[system].get("count", 0) for system in extracts},
            "decisions": reconciled.get("counts", {}),
            "settled_in_window": reconciled.get("settled_in_window", {}),
            "read_plan": reconciled.get("read_plan", {}),
            # Contacts found gone (each reported once, by the run that found it) or back; look-up calls spent.
            "tombstones": reconciled.get("tombstones", {}),
            # Merges made in the CRMs this window: found, pairs moved, counterparts left separate; calls spent.
            "merges": reconciled.get("merges", {}),
            "outcomes": outcome_counts(results),
            "api": merge_counters(stats),
            "sync_state": state,
            "lag_seconds": round((datetime.now(UTC) - context["data_interval_end"]).total_seconds(), 3),
            # settle_state read the queue just now; read it again only when settle did not get that far.
            "retry_queue": state.get("retry_queue") or self._retry_queue_size(settings.state_conn_id),
            "rate_limit_pool": crm_pool_states(
                settings.salesforce_conn_id, settings.hubspot_conn_id, settings.redis_conn_id
            ),
            "rejects": {
                "count": len(rejects),
                "path": rejects_url,
                "first": json_records(rejects.head(REJECTS_IN_XCOM)),
            },
        }
        report_url = write_json(folder / "report.json", report)
        # The summary stays outside any log group: the UI shows a group collapsed, and this is what a reviewer reads.
        for line in summary_lines(report):
            self.log.info("%s", line)
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
                    row.reason,
                )
            self.log.info("::endgroup::")
        self.log.info("Report written to %s", report_url)
        self._send_metrics(report)
        self._send_threshold_alerts(context, report)
        return {**report, "report_path": report_url}

    def _retry_queue_size(self, state_conn_id: str) -> dict[str, int] | None:
        """The retry queue's size; an unreachable state database must not cost the run its report."""
        from crm_sync.health.queue import queue_size

        try:
            return queue_size(state_conn_id)
        except Exception as exc:
            self.log.warning("retry queue size unavailable: %s: %s", type(exc).__name__, exc)
            return None

    def _send_metrics(self, report: dict[str, Any]) -> None:
        """Through Airflow's metrics integration ([metrics] statsd_on ...; a no-op when it is off)."""
        from airflow.sdk.observability.stats import Stats

        from crm_sync.metrics import run_metrics

        metrics = run_metrics(report)
        for metric in metrics:
            getattr(Stats, metric.kind)(metric.name, metric.value)
        self.log.info("%d metrics sent (crm_sync.*)", len(metrics))

    def _send_threshold_alerts(self, context: Context, report: dict[str, Any]) -> None:
        from crm_sync.alerts import AlertThresholds, threshold_alerts
        from crm_sync.notify import SyncAlertNotifier

        reasons = threshold_alerts(report, AlertThresholds.from_params(context["params"]))
        if not reasons:
            return
        for reason in reasons:
            self.log.warning("alert: %s", reason)
        body = f"<p>Run <b>{report['run_id']}</b>, window {report['window']}:</p><ul>"
        body += "".join(f"<li>{reason}</li>" for reason in reasons) + "</ul>"
        SyncAlertNotifier(
            subject=f"[crm_sync] {len(reasons)} threshold(s) passed: {report['run_id']}", body=body
        ).notify(context)


def _state_summary(settled: Any, reconciled: dict[str, Any]) -> dict[str, Any]:
    """The sync state's part of the report: snapshots read and written, retries due, recorded and queued."""
    settled = settled if isinstance(settled, dict) else {}
    return {
        "snapshots_read": reconciled.get("snapshots_read", 0),
        "baseline_recorded": reconciled.get("baseline_recorded", 0),
        "retries_due": reconciled.get("retries_due", {}),
        **{key: value for key, value in settled.items() if key != "settled"},
        "settled": bool(settled.get("settled")),
    }
