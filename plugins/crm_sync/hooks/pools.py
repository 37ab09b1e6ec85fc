"""The shared rate-limit pool of a CRM connection, on the Redis of `redis_default` (CONTRACT.md).

Pools are keyed by CRM and connection id, so every worker, mapped task and run that uses the same
connection takes from the same limits and honours the same pause.
"""

from __future__ import annotations

from collections.abc import Sequence

from crm_sync.ratelimit import Limit, RateLimitPool

DEFAULT_REDIS_CONN_ID = "redis_default"


def build_pool(
    crm: str, conn_id: str, limits: Sequence[Limit], redis_conn_id: str = DEFAULT_REDIS_CONN_ID
) -> RateLimitPool:
    """A pool for one CRM connection; Redis comes from the Airflow connection `redis_conn_id`."""
    from airflow.providers.redis.hooks.redis import RedisHook

    client = RedisHook(redis_conn_id=redis_conn_id).get_conn()
    return RateLimitPool(client, f"{crm}:{conn_id}", limits)
