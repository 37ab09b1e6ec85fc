"""The event path's live figures for the sync-health view: the queue's state and the webhook's counts."""

from __future__ import annotations

from typing import Any

from crm_sync.events import webhook_counts
from crm_sync.events.queue import contact_event_queue


def event_figures(redis_conn_id: str) -> dict[str, Any]:
    """`{"queue": ContactEventQueue.figures(), "webhook": counts by name}`; `{"error": ...}` when Redis cannot
    be read (a missing connection or an unreachable Redis must not break the view)."""
    try:
        queue = contact_event_queue(redis_conn_id)
        return {"queue": queue.figures(), "webhook": webhook_counts.read(queue.client)}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
