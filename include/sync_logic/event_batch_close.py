"""When an event run claims its next micro-batch: when a full batch waits, or the oldest waiting event has waited
`batch_ms` (no I/O; the event task reads the queue's `Waiting` from Redis and sleeps or claims as this says).

Each micro-batch costs a read per CRM and a write per CRM whatever its size, so fewer, fuller batches cost fewer
calls per change; closing a batch by its oldest event's age keeps every event's wait within `batch_ms` however
slowly events come, and a full batch goes at once. Entries a dead run left pending are taken over at once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Waiting:
    """What the queue holds for the event runs: entries not yet delivered, the oldest one's age (ms, on the Redis
    clock), and pending entries idle past the lease (a dead run's)."""

    undelivered: int
    oldest_age_ms: int
    stale: int


@dataclass(frozen=True)
class BatchClose:
    """Claim now (`reason`: full, age or stale), or wait `wait_ms` and look again (None: until an event comes)."""

    claim: bool
    reason: str = ""
    wait_ms: int | None = None


def batch_close(waiting: Waiting, *, max_batch: int, batch_ms: int) -> BatchClose:
    """Whether to claim a micro-batch now."""
    if waiting.stale:
        return BatchClose(True, "stale")
    if not waiting.undelivered:
        return BatchClose(False)
    if waiting.undelivered >= max_batch:
        return BatchClose(True, "full")
    if waiting.oldest_age_ms >= batch_ms:
        return BatchClose(True, "age")
    return BatchClose(False, wait_ms=batch_ms - waiting.oldest_age_ms)
