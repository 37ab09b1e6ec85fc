"""The live state of each CRM's shared rate-limit pool, read from Redis without taking a request.

Used by the report (a snapshot per run: daily budget alerts and metrics) and by the sync-health view.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from include.sync_logic.sides import Side


def pool_state(pool: Any) -> dict[str, Any]:
    """`{"account", "paused_seconds", "limits": {name: {"used", "limit", "window_seconds"}}}` of one pool;
    a limit the vendor reports account-wide (Salesforce's daily budget) adds `org_used`, `org_maximum` and
    `ceiling` (the org usage the sync may reach: the maximum less the reserve, within the cap)."""
    usage = pool.usage()
    reported = pool.reported()
    limits = {}
    for lim in pool.limits:
        limits[lim.name] = {
            "used": int(usage["used"][lim.name]),
            "limit": lim.limit,
            "window_seconds": lim.window_seconds,
        }
        if lim.name in reported:
            maximum = reported[lim.name]["maximum"]
            limits[lim.name].update(
                org_used=reported[lim.name]["used"], org_maximum=maximum, ceiling=lim.ceiling(maximum or None)
            )
    return {"account": pool.account, "paused_seconds": round(float(usage["paused_seconds"]), 3), "limits": limits}


def crm_pool_states(conn_ids: Mapping[Side, str], redis_conn_id: str) -> dict[str, Any]:
    """Each CRM's pool by its Airflow connection; a pool that cannot be read says why instead."""
    from crm_sync.hooks.contacts import contacts_hook

    states: dict[str, Any] = {}
    for side, conn_id in conn_ids.items():
        try:
            states[str(side)] = pool_state(contacts_hook(side, conn_id, redis_conn_id=redis_conn_id).rate_limit_pool)
        except Exception as exc:  # a missing connection or an unreachable Redis must not hide the rest
            states[str(side)] = {"error": f"{type(exc).__name__}: {exc}"}
    return states
