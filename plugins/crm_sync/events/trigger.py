"""The event DAG's watcher: a `BaseEventTrigger` on the contact-event queue, run by Airflow's triggerer.

It fires (yields a `TriggerEvent`, which the triggerer turns into an event of the watched asset, which queues a
run of the event DAG) when the queue's consumer group has entries not yet delivered, or pending ones a dead run
left behind (`include.sync_logic.event_backlog` says when). It never claims or acknowledges anything: the event
DAG's task claims a micro-batch and acknowledges it once synced, so a trigger restart loses nothing. Between
checks it blocks on the stream (`XREAD BLOCK`, a plain read outside the group) so a new entry wakes it at once.

Where Salesforce has no Change Data Capture, the same trigger runs the Salesforce poll (`sf_poll`) every
`salesforce_poll_seconds` in a thread (the hook and the queue are synchronous) to feed the queue; the queue
then wakes the watch like any other producer.

Airflow's rules for event triggers (checked in the installed 3.3 code): the triggerer re-creates the trigger
from `serialize()` (classpath + kwargs, JSON only); `BaseEventTrigger.hash` of those identifies the watcher, so
a changed setting replaces it; `run()` is iterated for as long as the asset is watched, and a trigger that
exits is started again, so errors here are logged and waited out instead of ending the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from crm_sync.events import queue_names
from include.sync_logic.event_backlog import Backlog, FireRule

if TYPE_CHECKING:
    from redis.asyncio import Redis

DEFAULT_BATCH_SECONDS = 2.0
"""How long the oldest undelivered entry waits before a run is started: a burst of edits becomes one run."""
DEFAULT_REARM_SECONDS = 120.0
"""Fire again for entries no run claimed this long after a firing (the run failed before claiming)."""
BLOCK_SECONDS = 5.0
"""Longest wait for a new entry between two looks at the backlog (stale entries are found at this pace)."""
MAX_ERROR_WAIT_SECONDS = 60.0
REDIS_TIMEOUT_SECONDS = 10.0
"""Longest a look at the backlog may take (beyond the blocking wait) before the connection counts as lost."""
_SSL_EXTRAS = ("ssl", "ssl_cert_reqs", "ssl_ca_certs", "ssl_keyfile", "ssl_certfile", "ssl_check_hostname")


class ContactEventTrigger(BaseEventTrigger):
    """Fires the event DAG's asset when the contact-event queue has work for it; optionally feeds the queue from
    a Salesforce poll (`salesforce_poll_seconds`; None where Salesforce events arrive otherwise)."""

    def __init__(
        self,
        *,
        redis_conn_id: str = queue_names.REDIS_CONN_ID,
        stream: str = queue_names.STREAM_KEY,
        group: str = queue_names.GROUP,
        batch_seconds: float = DEFAULT_BATCH_SECONDS,
        rearm_seconds: float = DEFAULT_REARM_SECONDS,
        lease_ms: int = queue_names.LEASE_MS,
        salesforce_conn_id: str = "salesforce_default",
        salesforce_poll_seconds: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's trigger base (super() skips untyped_calls_exclude)
        self.redis_conn_id = redis_conn_id
        self.stream = stream
        self.group = group
        self.batch_seconds = batch_seconds
        self.rearm_seconds = rearm_seconds
        self.lease_ms = lease_ms
        self.salesforce_conn_id = salesforce_conn_id
        self.salesforce_poll_seconds = salesforce_poll_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "redis_conn_id": self.redis_conn_id,
                "stream": self.stream,
                "group": self.group,
                "batch_seconds": self.batch_seconds,
                "rearm_seconds": self.rearm_seconds,
                "lease_ms": self.lease_ms,
                "salesforce_conn_id": self.salesforce_conn_id,
                "salesforce_poll_seconds": self.salesforce_poll_seconds,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        every = self.salesforce_poll_seconds
        poll = asyncio.create_task(self._poll_salesforce(every)) if every else None
        try:
            async for event in self._watch():
                yield event
        finally:
            if poll is not None:
                poll.cancel()
                with suppress(asyncio.CancelledError):
                    await poll

    async def _watch(self) -> AsyncIterator[TriggerEvent]:
        """Look at the backlog, fire when the rule says so, else wait for an entry (or the batch delay)."""
        from redis.exceptions import RedisError

        rule = FireRule(
            batch_ms=int(self.batch_seconds * 1000), rearm_ms=int(self.rearm_seconds * 1000), stale_ms=self.lease_ms
        )
        client: Redis | None = None
        failures = 0
        try:
            while True:
                try:
                    if client is None:
                        client = await async_redis(self.redis_conn_id)
                    async with asyncio.timeout(REDIS_TIMEOUT_SECONDS):
                        backlog = await read_backlog(client, self.stream, self.group, self.lease_ms)
                    decision = rule.decide(backlog)
                    failures = 0
                    if decision.fire:
                        self.log.info(
                            "event queue: firing (%s): oldest undelivered %s, newest %s, %d stale pending",
                            decision.reason,
                            backlog.oldest_undelivered,
                            backlog.newest,
                            backlog.stale,
                        )
                        yield TriggerEvent(_payload(decision.reason, backlog))
                    elif decision.wait_ms is not None:
                        await asyncio.sleep(decision.wait_ms / 1000)
                    else:
                        async with asyncio.timeout(BLOCK_SECONDS + REDIS_TIMEOUT_SECONDS):
                            after = backlog.newest or "0-0"
                            await client.xread({self.stream: after}, count=1, block=int(BLOCK_SECONDS * 1000))
                except (RedisError, TimeoutError) as exc:
                    failures += 1
                    wait = min(MAX_ERROR_WAIT_SECONDS, 2.0**failures)
                    self.log.warning(
                        "event queue unreachable (%s: %s): retrying in %.0f s", type(exc).__name__, exc, wait
                    )
                    if client is not None:
                        await client.aclose()
                        client = None
                    await asyncio.sleep(wait)
        finally:
            if client is not None:
                await client.aclose()

    async def _poll_salesforce(self, every: float) -> None:
        """The Salesforce poll every `every` seconds, in a thread; a failed poll is logged and tried again at the
        next interval (the mark did not move, so nothing is skipped)."""
        loop = asyncio.get_running_loop()
        feed: Callable[[], object] | None = None
        while True:
            started = loop.time()
            try:
                if feed is None:
                    feed = await asyncio.to_thread(self._salesforce_feed)
                await asyncio.to_thread(feed)
            except Exception as exc:  # one failed poll: the next one reads from the same mark
                self.log.warning("Salesforce poll failed (%s: %s): next try in %.0f s", type(exc).__name__, exc, every)
                feed = None
            await asyncio.sleep(max(0.0, every - (loop.time() - started)))

    def _salesforce_feed(self) -> Callable[[], object]:
        """One poll into the queue, on the Salesforce hook and the queue's Redis (connections looked up once)."""
        from functools import partial

        from airflow.providers.redis.hooks.redis import RedisHook

        from crm_sync.events.queue import ContactEventQueue
        from crm_sync.events.sf_poll import SalesforceChangePoll
        from crm_sync.hooks.contacts import contacts_hook
        from include.sync_logic.sides import Side

        client = RedisHook(redis_conn_id=self.redis_conn_id).get_conn()
        hook = contacts_hook(Side.SALESFORCE, self.salesforce_conn_id, redis_conn_id=self.redis_conn_id)
        poll = SalesforceChangePoll(hook, client, conn_id=self.salesforce_conn_id)
        return partial(poll.poll, ContactEventQueue(client, stream=self.stream, group=self.group).add)


def _payload(reason: str, backlog: Backlog) -> dict[str, Any]:
    """What the asset event carries (`extra.payload`): why it fired and where the backlog stood."""
    return {
        "reason": reason,
        "oldest_undelivered": backlog.oldest_undelivered,
        "newest": backlog.newest,
        "stale": backlog.stale,
        "redis_time_ms": backlog.now_ms,
    }


async def read_backlog(client: Redis, stream: str, group: str, stale_ms: int) -> Backlog:
    """The group's backlog on `stream`: a few reads, nothing claimed (the group may not exist yet: the queue
    creates it with the first entry, from the stream's start, so then every entry is undelivered)."""
    seconds, micros = await client.time()
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    newest = await client.xrevrange(stream, count=1)
    if not newest:
        return Backlog(None, None, "0-0", 0, now_ms)
    groups = await client.xinfo_groups(stream)
    mine = next((info for info in groups if info["name"] == group), None)
    delivered = str(mine["last-delivered-id"]) if mine else "0-0"
    oldest = await client.xrange(stream, min=f"({delivered}", count=1)
    stale = await client.xpending_range(stream, group, "-", "+", 100, idle=stale_ms) if mine else []
    return Backlog(
        oldest_undelivered=str(oldest[0][0]) if oldest else None,
        newest=str(newest[0][0]),
        last_delivered=delivered,
        stale=len(stale),
        now_ms=now_ms,
    )


async def async_redis(conn_id: str) -> Redis:
    """An asyncio client on the Redis of an Airflow connection, read as the Redis provider's hook reads it (host,
    port, login, password, extras `db` and the ssl ones); a cluster connection is refused.

    No socket timeout: with one, redis-py sends through `asyncio.wait_for`, which on Python 3.11 can swallow a
    cancellation (the triggerer's way to stop a trigger), leaving the loop running; the caller bounds each
    look with `asyncio.timeout` instead."""
    from airflow.sdk import Connection
    from redis.asyncio import Redis

    conn = await Connection.async_get(conn_id)
    extras = await conn.aextra_dejson()
    if extras.get("cluster"):
        raise ValueError(f"Redis connection {conn_id!r} is a cluster: the event trigger speaks to one Redis")
    password = None if str(conn.password).lower() in ("none", "false", "") else conn.password
    return Redis(
        host=conn.host or "localhost",
        port=conn.port or 6379,
        username=conn.login,
        password=password,
        db=int(extras.get("db") or 0),
        decode_responses=True,
        socket_timeout=None,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        **{name: value for name, value in extras.items() if name in _SSL_EXTRAS},
    )
