"""What the webhook endpoint counts: deliveries accepted and refused (by reason), events queued, repeated,
ignored and rejected. Kept in one Redis hash (every api-server worker adds to it; the health view reads it)
and sent as StatsD counters `crm_sync.webhook.<name>` (under Airflow's `[metrics] statsd_prefix`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis

from crm_sync.events.queue import as_text

COUNTS_KEY = "crm_sync:webhook:counts"

ACCEPTED = "accepted"  # deliveries verified and queued
REPLAYED = "replayed"  # a signature already used within the window
TOO_LARGE = "too_large"  # body over the limit
MALFORMED = "malformed"  # signed, but not a JSON array of events
UNAVAILABLE = "unavailable"  # Redis or the connection failed, or the work missed the deadline: HubSpot retries
EVENTS_QUEUED = "events_queued"
EVENTS_DUPLICATE = "events_duplicate"
EVENTS_IGNORED = "events_ignored"
EVENTS_REJECTED = "events_rejected"
EVENTS_TRIMMED = "events_trimmed"


def record(client: redis.Redis, counts: Mapping[str, int]) -> None:
    """Add to the Redis counters (one round trip) and to StatsD; zero counts are left out."""
    counts = {name: n for name, n in counts.items() if n}
    if not counts:
        return
    with client.pipeline(transaction=False) as pipe:
        for name, n in counts.items():
            pipe.hincrby(COUNTS_KEY, name, n)
        pipe.execute()
    send_stats(counts)


def send_stats(counts: Mapping[str, int]) -> None:
    """StatsD counters only (when Redis cannot be reached)."""
    from airflow.sdk.observability.stats import Stats

    for name, n in counts.items():
        if n:
            Stats.incr(f"crm_sync.webhook.{name}", n)


def read(client: redis.Redis) -> dict[str, int]:
    """Every counter so far, by name."""
    raw: Any = client.hgetall(COUNTS_KEY)
    return {as_text(name): int(value) for name, value in raw.items()}
