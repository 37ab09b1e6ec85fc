"""The retry queue as the sync-state store holds it; None when no state connection is defined, or its database
does not answer (logged): the view still shows the runs. A connection id of None means `[crm_sync] state_conn_id`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import pandas as pd
import sqlalchemy as sa
from airflow.sdk.exceptions import AirflowNotFoundException

log = logging.getLogger(__name__)


def _state_conn_id(conn_id: str | None) -> str:
    from crm_sync.settings import crm_sync_settings

    return conn_id or crm_sync_settings().state_conn_id


def _store(conn_id: str | None) -> Any:
    from crm_sync.state.hook import SyncStateHook

    try:
        return SyncStateHook(state_conn_id=_state_conn_id(conn_id)).get_store()
    except AirflowNotFoundException:
        return None


def queue_size(conn_id: str | None = None) -> dict[str, int] | None:
    """Entries per status (`pending`, `parked`), or None without a state store."""
    store = _store(conn_id)
    return store.queue_size() if store is not None else None


def stored_entries(conn_id: str | None = None, source_ids: Iterable[str] | None = None) -> pd.DataFrame | None:
    """The store's queue entries (all, or those of some source ids), messages as the CRM gave them; None without
    a state store or when its database cannot be read."""
    conn_id = _state_conn_id(conn_id)
    try:
        store = _store(conn_id)
        return store.entries(source_ids=source_ids) if store is not None else None
    except sa.exc.SQLAlchemyError as exc:
        log.warning("sync state (connection %s) unreadable, retry queue left out: %s", conn_id, exc)
        return None


def queue_entries(conn_id: str | None = None, source_ids: list[str] | None = None) -> list[dict[str, Any]] | None:
    """Queue entries (all, or those of some source ids) as JSON-ready dicts, most attempts first.

    The CRM's message is redacted: an entry outlives the run (and its `log_pii`) that queued it.
    """
    from crm_sync.pii import redact
    from crm_sync.report import json_records

    frame = stored_entries(conn_id, source_ids)
    if frame is None:
        return None
    frame = frame.sort_values(["attempts", "last_attempt_at"], ascending=False).drop(columns=["data_hash"])
    return [{**entry, "message": redact(entry["message"] or "")} for entry in json_records(frame)]
