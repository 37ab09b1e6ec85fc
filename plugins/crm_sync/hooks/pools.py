"""The shared rate-limit pool of a CRM connection, on the Redis of `redis_default` (CONTRACT.md).

Pools are keyed by CRM and connection id, so every worker, mapped task and run that uses the same
connection takes from the same limits and honours the same pause.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crm_sync.ratelimit import Limit, RateLimitPool
from crm_sync.settings import DEFAULTS
from include.sync_logic.sides import Side

DEFAULT_REDIS_CONN_ID = DEFAULTS.redis_conn_id
DEFAULT_MAX_WAIT_SECONDS = 120.0


def build_pool(
    side: Side, conn_id: str, limits: Sequence[Limit], redis_conn_id: str = DEFAULT_REDIS_CONN_ID
) -> RateLimitPool:
    """A pool for one CRM connection; Redis comes from the Airflow connection `redis_conn_id`."""
    from airflow.providers.redis.hooks.redis import RedisHook

    client = RedisHook(redis_conn_id=redis_conn_id).get_conn()
    return RateLimitPool(client, f"{side}:{conn_id}", limits)


def max_wait_from(explicit: float | None, extras: Mapping[str, Any]) -> float:
    """How long a caller may wait for the pool before giving the worker slot back (defer or retry later).

    An explicit value wins, else the connection extra `max_wait_seconds`, else two minutes.
    """
    if explicit is not None:
        return float(explicit)
    return float(extras.get("max_wait_seconds") or DEFAULT_MAX_WAIT_SECONDS)
