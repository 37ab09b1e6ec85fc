"""The sync-health FastAPI app the plugin mounts on Airflow's api-server: the view and its JSON endpoints.

Airflow does not authenticate mounted plugin apps, so every route depends on the core API's own check:
the caller's Airflow token (the UI's cookie or a bearer token) must be valid and its user allowed to read
runs of the `crm_contact_sync` DAG through the configured auth manager.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import Depends, FastAPI, Query
from fastapi.responses import HTMLResponse

from crm_sync.events import queue_names
from crm_sync.events.figures import event_figures
from crm_sync.health import page
from crm_sync.health.contact import contact_history
from crm_sync.health.queue import queue_entries
from crm_sync.health.runs import recent_rejects, recent_runs
from crm_sync.pool_state import crm_pool_states
from crm_sync.settings import DAG_ID, crm_sync_settings
from include.sync_logic.sides import Side

app = FastAPI(
    title="CRM sync health",
    dependencies=[Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN, param_dag_id=DAG_ID))],
)


@app.get("/api/runs")
def runs(limit: int = Query(20, ge=1, le=500)) -> list[dict[str, Any]]:
    return recent_runs(limit)


@app.get("/api/rejects")
def rejects(runs: int = Query(5, ge=1, le=100)) -> list[dict[str, Any]]:
    return recent_rejects(runs)


def _pools() -> dict[str, Any]:
    """The pools of the `[crm_sync]` connections: the view sees no run's params."""
    settings = crm_sync_settings()
    return crm_pool_states({side: settings.conn_id(side) for side in Side}, settings.redis_conn_id)


@app.get("/api/retry-queue")
def retry_queue() -> list[dict[str, Any]] | None:
    return queue_entries()


@app.get("/api/pools")
def pools() -> dict[str, Any]:
    return _pools()


@app.get("/api/events")
def events() -> dict[str, Any]:
    """The event path: the contact-event queue's length, lag and pending entries, and the webhook's counts."""
    return event_figures(queue_names.REDIS_CONN_ID)


@app.get("/api/contact")
def contact(q: str = Query(..., min_length=1)) -> dict[str, Any]:
    return contact_history(q)


@app.get("/", response_class=HTMLResponse)
def overview() -> str:
    return page.overview_page(recent_runs(20), recent_rejects(5), queue_entries(), _pools())


@app.get("/contact", response_class=HTMLResponse)
def contact_view(q: str = Query(..., min_length=1)) -> str:
    history = contact_history(q)
    entries = queue_entries(source_ids=history["ids"]) if history["ids"] else []
    return page.contact_page(history, entries)
