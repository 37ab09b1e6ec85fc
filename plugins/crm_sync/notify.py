"""Alerts through the SMTP provider's `SmtpNotifier`, on the connection and to the addresses the params name.

`alert_conn_id` (default `[crm_sync] alert_conn_id`, `smtp_default`: host, port, login/password, extra
`from_email`) and `alert_to` (comma-separated; empty turns alerts off, so a fresh install mails nobody). Used as
the DAG's `on_failure_callback` (run by the dag processor, or in-process by `airflow dags test`) and by the report
task for threshold alerts.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

from crm_sync.settings import crm_sync_settings

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

FAILED_SUBJECT = "[crm_sync] run failed: {{ run_id }}"
FAILED_BODY = (
    "<p>DAG run <b>{{ run_id }}</b> of {{ dag.dag_id }} failed.</p><p>Reason: {{ reason }}</p>"
    "<p>The run's report and the sync-health view (Browse &gt; CRM sync health) say what was written.</p>"
)


def _renderable(context: Context) -> Context:
    """`airflow dags test` hands DAG callbacks the scheduler's serialized DAG, which cannot render templates
    (no `get_template_env`): drop it so notifiers fall back to a plain sandboxed Jinja environment."""
    if hasattr(context.get("dag"), "get_template_env"):
        return context
    # Context types `dag` as always a DAG; the notifier itself reads it with .get() and renders without one.
    return {**context, "dag": None}  # type: ignore[typeddict-item]


def _params(context: Context) -> dict[str, Any]:
    """The run's params; a dag-processor callback may carry only the DAG, whose defaults then apply."""
    params = context.get("params")
    return dict(params) if params else context["dag"].params.dump()


class SyncAlertNotifier(BaseNotifier):
    """One alert message (subject, HTML body; both Jinja templates) sent by the SMTP provider's notifier."""

    template_fields = ("subject", "body")

    def __init__(self, subject: str = FAILED_SUBJECT, body: str = FAILED_BODY) -> None:
        super().__init__()
        self.subject = subject
        self.body = body

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        super().render_template_fields(_renderable(context), jinja_env)

    def notify(self, context: Context) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        params = _params(context)
        recipients = [address.strip() for address in str(params.get("alert_to") or "").split(",") if address.strip()]
        if not recipients:
            log.info("alert not sent (param alert_to is empty): %s", self.subject)
            return
        conn_id = str(params.get("alert_conn_id") or crm_sync_settings().alert_conn_id)
        SmtpNotifier(to=recipients, smtp_conn_id=conn_id, subject=self.subject, html_content=self.body).notify(
            _renderable(context)
        )
        log.info("alert sent to %d recipient(s) via connection %s: %s", len(recipients), conn_id, self.subject)
