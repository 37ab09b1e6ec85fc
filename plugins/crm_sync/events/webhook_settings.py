"""The HubSpot webhook endpoint's settings, from its Airflow connection, cached briefly.

The connection (`hubspot_webhook_default`) holds the app's client secret as its password. Extras:
- `target_url`: the exact target URL set in the HubSpot app (scheme, host, path). HubSpot signs the URL it
  called; behind a TLS-terminating proxy the api-server sees another one, so set it in deployment. Without
  it the request's own URL is used (right when HubSpot reaches the api-server directly).
- `portal_id`: the HubSpot account whose events are accepted (others are ignored, and counted).
- `max_body_bytes`: the largest delivery accepted (default 1 MiB; 100 events are ~40 KB).
The connection is re-read after `CACHE_SECONDS`, so a rotated secret takes effect without a restart.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

WEBHOOK_CONN_ID = "hubspot_webhook_default"
CACHE_SECONDS = 60.0
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class WebhookSettings:
    client_secret: str
    target_url: str | None = None
    portal_id: int | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @classmethod
    def from_connection(cls, password: str | None, extras: dict[str, Any]) -> WebhookSettings:
        """Settings from a connection's password and extras; ValueError when no client secret is set."""
        if not password:
            raise ValueError("the webhook connection has no password (the HubSpot app's client secret)")
        portal = extras.get("portal_id")
        return cls(
            client_secret=password,
            target_url=str(extras["target_url"]) if extras.get("target_url") else None,
            portal_id=int(portal) if portal not in (None, "") else None,
            max_body_bytes=int(extras.get("max_body_bytes") or DEFAULT_MAX_BODY_BYTES),
        )


class CachedWebhookSettings:
    """The settings of one connection id, read at most once per `ttl_seconds` (thread-safe)."""

    def __init__(self, conn_id: str = WEBHOOK_CONN_ID, ttl_seconds: float = CACHE_SECONDS) -> None:
        self.conn_id = conn_id
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._value: WebhookSettings | None = None
        self._read_at = 0.0

    def get(self) -> WebhookSettings:
        with self._lock:
            if self._value is None or time.monotonic() - self._read_at > self.ttl_seconds:
                from airflow.sdk import BaseHook

                conn = BaseHook.get_connection(self.conn_id)
                self._value = WebhookSettings.from_connection(conn.password, conn.extra_dejson)
                self._read_at = time.monotonic()
            return self._value
