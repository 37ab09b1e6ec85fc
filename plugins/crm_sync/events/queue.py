"""The durable contact-event queue: a Redis Stream read through one consumer group (no Airflow here).

Producers (the HubSpot webhook, the Salesforce feed) `add` events; an event id seen within the dedupe TTL is
not queued again, so HubSpot's repeated deliveries and a poll that re-reads its rows enqueue once. Consumers
(event-driven runs) `claim` entries, sync them, and `ack` them only once synced or deliberately dropped: an
entry a consumer claimed but never acknowledged returns to the next claim after the lease (its run crashed).
Acknowledged entries are deleted, so the stream holds only work not yet done, and the length cap trims only
when consumers have fallen far behind: that loses events (the windowed DAG still catches their contacts), so
it is logged as an error and counted.

Everything a reader needs to find the queue is in `queue_names`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from crm_sync.events import queue_names
from include.sync_logic.event_batch_close import Waiting
from include.sync_logic.events import ContactEvent

log = logging.getLogger(__name__)

# Adds a batch atomically (the group first, if missing): per event, skip it if its id was seen, else XADD
# (capped) and remember the id. KEYS[1] the stream, KEYS[2..] the events' seen keys; ARGV: group, ttl, cap,
# then per event its field count and field/value pairs. Returns {added, duplicates, trimmed}; `trimmed`
# counts entries the cap removed.
_ADD_SCRIPT = """
local stream, group, ttl, cap = KEYS[1], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.pcall('XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
local added, duplicates, trimmed, arg = 0, 0, 0, 4
for i = 2, #KEYS do
  local n = tonumber(ARGV[arg])
  local fields = {unpack(ARGV, arg + 1, arg + n)}
  arg = arg + n + 1
  if redis.call('EXISTS', KEYS[i]) == 1 then
    duplicates = duplicates + 1
  else
    local before = redis.call('XLEN', stream)
    local id = redis.call('XADD', stream, 'MAXLEN', '~', cap, '*', unpack(fields))
    trimmed = trimmed + before + 1 - redis.call('XLEN', stream)
    redis.call('SET', KEYS[i], id, 'EX', ttl)
    added = added + 1
  end
end
return {added, duplicates, trimmed}
"""


_STALE_SEEN = 100  # stale pending entries `waiting` counts at most (any one is reason to claim)


@dataclass(frozen=True)
class ClaimedEvent:
    """An entry handed to a consumer: ack its `entry_id` once the event is synced or dropped."""

    entry_id: str
    event: ContactEvent


@dataclass(frozen=True)
class AddResult:
    """What one `add` did: events queued, duplicates skipped, unacknowledged entries the cap trimmed."""

    added: int
    duplicates: int
    trimmed: int


class ContactEventQueue:
    """The queue on one Redis client (`redis.Redis`, any `decode_responses`)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        stream: str = queue_names.STREAM_KEY,
        group: str = queue_names.GROUP,
        seen_prefix: str = queue_names.SEEN_KEY_PREFIX,
        max_length: int = queue_names.MAX_LENGTH,
        dedupe_ttl_seconds: int = queue_names.DEDUPE_TTL_SECONDS,
        lease_ms: int = queue_names.LEASE_MS,
    ) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.seen_prefix = seen_prefix
        self.max_length = max_length
        self.dedupe_ttl_seconds = dedupe_ttl_seconds
        self.lease_ms = lease_ms
        self._add_script = client.register_script(_ADD_SCRIPT)

    # -- producers ----------------------------------------------------------------------------------

    def add(self, events: Sequence[ContactEvent]) -> int:
        """Queue the events not seen before; returns how many were queued. One round trip per call."""
        return self.add_counted(events).added

    def add_counted(self, events: Sequence[ContactEvent]) -> AddResult:
        """`add`, with the duplicates skipped and entries trimmed by the cap (logged as an error) counted."""
        if not events:
            return AddResult(0, 0, 0)
        keys = [self.stream] + [f"{self.seen_prefix}{event.side}:{event.event_id}" for event in events]
        args: list[Any] = [self.group, self.dedupe_ttl_seconds, self.max_length]
        for event in events:
            fields = event.to_fields()
            args.append(2 * len(fields))
            for name, value in fields.items():
                args += [name, value]
        added, duplicates, trimmed = (int(n) for n in self._add_script(keys=keys, args=args))
        if trimmed:
            log.error(
                "event queue %s is at its cap of %d entries: %d unacknowledged events trimmed (lost to the event "
                "path; the windowed sync still catches their contacts). Are the event runs consuming?",
                self.stream,
                self.max_length,
                trimmed,
            )
        return AddResult(added, duplicates, trimmed)

    # -- consumers ----------------------------------------------------------------------------------

    def ensure_group(self) -> None:
        """Create the stream and its consumer group if missing (from the stream's start: nothing is skipped).
        Every consumer call does, so a Redis that lost its data comes back without a restart."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def claim(self, consumer: str, count: int) -> list[ClaimedEvent]:
        """Up to `count` entries for `consumer`: first those other consumers held longer than the lease
        (re-delivered), then new ones; never waits (`wait_for_entry` does, outside the group)."""
        self.ensure_group()
        entries = self._take_over(consumer, count)
        if len(entries) < count:
            response: Any = self.client.xreadgroup(self.group, consumer, {self.stream: ">"}, count=count - len(entries))
            for _stream, new in response or []:
                entries += new
        return self._decode(entries)

    def waiting(self) -> Waiting:
        """Entries no consumer has had yet, the oldest one's age (its stream id's ms on the Redis clock), and
        pending entries idle past the lease: what `event_batch_close` decides on. A few reads, nothing claimed."""
        self.ensure_group()
        with self.client.pipeline(transaction=False) as pipe:
            pipe.xinfo_groups(self.stream)
            pipe.time()
            groups, (server_s, server_us) = pipe.execute()
        group = next(g for g in groups if as_text(g["name"]) == self.group)
        oldest = self.client.xrange(self.stream, min=f"({as_text(group['last-delivered-id'])}", count=1)
        stale = self.client.xpending_range(self.stream, self.group, "-", "+", _STALE_SEEN, idle=self.lease_ms)
        if not oldest:
            return Waiting(0, 0, len(stale))
        now_ms = int(server_s) * 1000 + int(server_us) // 1000
        age_ms = max(0, now_ms - int(as_text(oldest[0][0]).split("-")[0]))
        return Waiting(max(1, self.lag()), age_ms, len(stale))

    def wait_for_entry(self, block_ms: int) -> bool:
        """Wait up to `block_ms` for an entry newer than the newest now (a plain read outside the group); whether
        any entry is undelivered afterwards."""
        newest = self.client.xrevrange(self.stream, count=1)
        after = as_text(newest[0][0]) if newest else "0-0"
        return bool(self.client.xread({self.stream: after}, count=1, block=block_ms)) or self.lag() > 0

    def _take_over(self, consumer: str, count: int) -> list[tuple[Any, Any]]:
        """Entries idle past the lease, moved to `consumer` (XAUTOCLAIM walks the pending list by cursor)."""
        taken: list[tuple[Any, Any]] = []
        cursor: Any = "0-0"
        while len(taken) < count:
            cursor, entries, *_deleted = self.client.xautoclaim(
                self.stream, self.group, consumer, self.lease_ms, start_id=cursor, count=count - len(taken)
            )
            taken += [(entry_id, fields) for entry_id, fields in entries if fields]
            if as_text(cursor) == "0-0":
                break
        return taken

    def _decode(self, entries: Iterable[tuple[Any, Any]]) -> list[ClaimedEvent]:
        claimed, unreadable = [], []
        for entry_id, fields in entries:
            try:
                event = ContactEvent.from_fields({as_text(k): as_text(v) for k, v in fields.items()})
            except ValueError as exc:
                log.error("event queue entry %s is not a contact event (%s): acknowledged and dropped", entry_id, exc)
                unreadable.append(as_text(entry_id))
                continue
            claimed.append(ClaimedEvent(as_text(entry_id), event))
        self.ack(unreadable)
        return claimed

    def ack(self, entry_ids: Sequence[str]) -> int:
        """Acknowledge and delete entries (synced, or dropped on purpose); returns how many were pending."""
        if not entry_ids:
            return 0
        with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, *entry_ids)
            pipe.xdel(self.stream, *entry_ids)
            acked, _deleted = pipe.execute()
        return int(acked)

    # -- figures ------------------------------------------------------------------------------------

    def pending(self) -> dict[str, Any]:
        """Entries claimed and not yet acknowledged: `count`, per `consumers`, and the oldest one's idle ms."""
        self.ensure_group()
        summary = self.client.xpending(self.stream, self.group)
        count = int(summary["pending"])
        oldest_idle_ms = 0
        if count:
            first = self.client.xpending_range(self.stream, self.group, "-", "+", 1)
            oldest_idle_ms = int(first[0]["time_since_delivered"]) if first else 0
        consumers = {as_text(c["name"]): int(c["pending"]) for c in summary.get("consumers") or []}
        return {"count": count, "consumers": consumers, "oldest_idle_ms": oldest_idle_ms}

    def lag(self) -> int:
        """Entries queued and not yet claimed by any consumer."""
        self.ensure_group()
        with self.client.pipeline(transaction=True) as pipe:
            pipe.xinfo_groups(self.stream)
            pipe.xlen(self.stream)
            groups, length = pipe.execute()
        group = next(g for g in groups if as_text(g["name"]) == self.group)
        if group.get("lag") is not None:
            return int(group["lag"])
        return max(0, int(length) - int(group["pending"]))  # Redis cannot tell: acknowledged entries are deleted

    def figures(self) -> dict[str, Any]:
        """Length, lag, pending and the oldest unacknowledged entry's age (s), for metrics and the view."""
        pending = self.pending()
        lag = self.lag()
        oldest = self.client.xrange(self.stream, count=1)
        oldest_age_s = 0.0
        if oldest:
            server_s, server_us = self.client.time()
            oldest_age_s = max(0.0, server_s + server_us / 1e6 - int(as_text(oldest[0][0]).split("-")[0]) / 1000)
        return {
            "length": int(self.client.xlen(self.stream)),
            "lag": lag,
            "pending": pending["count"],
            "pending_by_consumer": pending["consumers"],
            "oldest_pending_idle_ms": pending["oldest_idle_ms"],
            "oldest_entry_age_seconds": round(oldest_age_s, 3),
        }


def as_text(value: Any) -> str:
    """A Redis reply as text, whether the client decodes responses or not."""
    return value.decode() if isinstance(value, bytes) else str(value)


def contact_event_queue(redis_conn_id: str = queue_names.REDIS_CONN_ID) -> ContactEventQueue:
    """The queue on the Redis of an Airflow connection."""
    from airflow.providers.redis.hooks.redis import RedisHook

    client: redis.Redis = RedisHook(redis_conn_id=redis_conn_id).get_conn()
    return ContactEventQueue(client)
