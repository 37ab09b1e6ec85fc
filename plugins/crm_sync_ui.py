"""Registers the CRM sync's apps with Airflow's api-server: the sync-health view (FastAPI app and a Browse menu
entry, every route behind an Airflow login) and HubSpot's webhook endpoint (open: its requests are signed).

Top-level on purpose: `plugins/.airflowignore` keeps the loader out of `crm_sync/` (see that file).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/crm-sync"
EVENTS_URL_PREFIX = "/crm-sync-events"


class LazyApp:
    """ASGI app that imports the module holding the real app (FastAPI, the core API's security) on its
    first request.

    Every task process loads plugins (for macros); only the api-server ever serves these apps.
    """

    def __init__(self, module: str) -> None:
        self.module = module
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = import_module(self.module).app
        await self._app(scope, receive, send)


class CrmSyncHealthPlugin(AirflowPlugin):
    name = "crm_sync_health"
    fastapi_apps = [  # noqa: RUF012 (AirflowPlugin's interface is class attributes)
        {"app": LazyApp("crm_sync.health.app"), "url_prefix": URL_PREFIX, "name": "CRM sync health"},
        {"app": LazyApp("crm_sync.events.webhook_app"), "url_prefix": EVENTS_URL_PREFIX, "name": "CRM sync events"},
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "CRM sync health",
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "category": "browse",
            "url_route": "crm-sync-health",
        }
    ]
