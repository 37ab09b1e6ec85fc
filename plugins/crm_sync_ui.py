"""Registers the CRM sync-health view with Airflow: a FastAPI app on the api-server and a Browse menu entry.

Top-level on purpose: `plugins/.airflowignore` keeps the loader out of `crm_sync/` (see that file).
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/crm-sync"


class LazyHealthApp:
    """ASGI app that imports the FastAPI app (FastAPI, the core API's security) on its first request.

    Every task process loads plugins (for macros); only the api-server ever serves this view.
    """

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from crm_sync.health.app import app

            self._app = app
        await self._app(scope, receive, send)


class CrmSyncHealthPlugin(AirflowPlugin):
    name = "crm_sync_health"
    fastapi_apps = [  # noqa: RUF012 (AirflowPlugin's interface is class attributes)
        {"app": LazyHealthApp(), "url_prefix": URL_PREFIX, "name": "CRM sync health"}
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
