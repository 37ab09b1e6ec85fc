"""Report: one JSON report plus a rejects file beside the staged data, summarised in the task log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crm_sync.operators.base import CrmConnectionsOperator, data_interval, param_template, run_try
from crm_sync.staging import iter_frames, read_frames, result_urls, write_frame, write_json
from include.sync_logic.sides import Side

if TYPE_CHECKING:
    from airflow.sdk import Context

    from crm_sync.task_results import (
        ExtractResult,
        LinkBackResult,
        LoadTotals,
        ReconcileResult,
        ReportResult,
        SettleResult,
        SyncReport,
    )

REJECTS_IN_XCOM = 50


class SyncReportOperator(CrmConnectionsOperator):
    """Runs whatever happened upstream (trigger rule all_done), so a failed load still gets its report.

    Every input is an upstream task's result (its `.output`, wired in the DAG file); a task that failed left
    none, and the report counts it as nothing done.

    :param extracts: each side's extract result.
    :param reconcile_result: the reconcile task's result.
    :param loads: each target side's load results, one per mapped shard.
    :param link_back_result: the link-back task's result.
    :param settle_result: the settle task's result.
    :param state_conn_id: the sync-state database, for the retry queue when settle did not read it (templated).
    """

    template_fields = (
        *CrmConnectionsOperator.template_fields,
        "extracts",
        "reconcile_result",
        "loads",
        "link_back_result",
        "settle_result",
        "state_conn_id",
    )
    ui_color = "#eef7ee"

    def __init__(
        self,
        *,
        extracts: Mapping[Side, ExtractResult | None],
        reconcile_result: ReconcileResult | None,
        loads: Mapping[Side, Sequence[LoadTotals]],
        link_back_result: LinkBackResult | None,
        settle_result: SettleResult | None,
        state_conn_id: str = param_template("state_conn_id"),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.extracts = extracts
        self.reconcile_result = reconcile_result
        self.loads = loads
        self.link_back_result = link_back_result
        self.settle_result = settle_result
        self.state_conn_id = state_conn_id

    def execute(self, context: Context) -> ReportResult:
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

        params = self.run_params(context)
        window = self.window(context)
        interval_start, interval_end = data_interval(context)
        folder = self.run_folder(context)
        reconciled = self.reconcile_result
        results = read_frames(result_urls(reconciled["folder"] if reconciled else None))
        if results is None:
            results = pd.DataFrame(columns=["target", "action", "ref", "target_id", "ok", "error_code", "message"])

        rejects = pd.concat(
            [
                frame
                for frame in (
                    *(decision_rejects(part) for part in iter_frames(reconciled["decisions"] if reconciled else [])),
                    load_rejects(results),
                )
                if frame is not None and not frame.empty
            ]
            or [pd.DataFrame(columns=["stage", "target", "source_id", "reason"])],
            ignore_index=True,
        )
        # Staged like the log: emails and phones in the reasons masked unless log_pii; ids and codes kept.
        rejects["reason"] = redact_column(rejects["reason"], log_pii=params.log_pii)
        rejects_url = write_frame(folder / "rejects.parquet", rejects)
        state = _state_summary(self.settle_result, reconciled)
        report: SyncReport = {
            "dag_id": self.dag_id,
            "run_id": context["run_id"],
            "try": run_try(context),
            # The try's folder with its decisions/ and results/ (the contact history reads them from here).
            "staged": reconciled["folder"] if reconciled else None,
            "window": window.describe(),
            # What the view orders runs by (a backfill's runs finish in any order).
            "data_interval": {"start": interval_start.isoformat(), "end": interval_end.isoformat()},
            "direction": str(params.direction),
            "dry_run": params.dry_run,
            "log_pii": params.log_pii,
            "extracted": {str(side): extract["count"] if extract else 0 for side, extract in self.extracts.items()},
            "decisions": reconciled["counts"] if reconciled else {},
            "settled_in_window": reconciled.get("settled_in_window", {}) if reconciled else {},
            "read_plan": reconciled.get("read_plan", {}) if reconciled else {},
            # Contacts found gone (each reported once, by the run that found it) or back; look-up calls spent.
            "tombstones": reconciled["tombstones"] if reconciled else {},
            # Merges made in the CRMs this window: found, pairs moved, counterparts left separate; calls spent.
            "merges": reconciled.get("merges", {}) if reconciled else {},
            "outcomes": outcome_counts(results),
            "api": merge_counters(self._api_stats()),
            "sync_state": state,
            "lag_seconds": round((datetime.now(UTC) - interval_end).total_seconds(), 3),
            # settle_state read the queue just now; read it again only when settle did not get that far.
            "retry_queue": state.get("retry_queue") or self._retry_queue_size(),
            "rate_limit_pool": crm_pool_states({side: self.conn_id(side) for side in Side}, self.redis_conn_id),
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

    def _api_stats(self) -> list[Mapping[str, float]]:
        """The API and rate-limit counters of every task that called a CRM and got far enough to say so."""
        results = [
            *self.extracts.values(),
            self.reconcile_result,
            *(totals for shards in self.loads.values() for totals in shards),
            self.link_back_result,
        ]
        return [result["api"] for result in results if result]

    def _retry_queue_size(self) -> dict[str, int] | None:
        """The retry queue's size; an unreachable state database must not cost the run its report."""
        from crm_sync.health.queue import queue_size

        try:
            return queue_size(self.state_conn_id)
        except Exception as exc:
            self.log.warning("retry queue size unavailable: %s: %s", type(exc).__name__, exc)
            return None

    def _send_metrics(self, report: SyncReport) -> None:
        """Through Airflow's metrics integration ([metrics] statsd_on ...; a no-op when it is off)."""
        from airflow.sdk.observability.stats import Stats

        from crm_sync.metrics import run_metrics

        metrics = run_metrics(report)
        for metric in metrics:
            getattr(Stats, metric.kind)(metric.name, metric.value)
        self.log.info("%d metrics sent (crm_sync.*)", len(metrics))

    def _send_threshold_alerts(self, context: Context, report: SyncReport) -> None:
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


def _state_summary(settled: SettleResult | None, reconciled: ReconcileResult | None) -> dict[str, Any]:
    """The sync state's part of the report: snapshots read and written, retries due, recorded and queued."""
    return {
        "snapshots_read": reconciled["snapshots_read"] if reconciled else 0,
        "baseline_recorded": reconciled["baseline_recorded"] if reconciled else 0,
        "retries_due": reconciled["retries_due"] if reconciled else {},
        **{key: value for key, value in (settled or {}).items() if key != "settled"},
        "settled": bool(settled and settled["settled"]),
    }
