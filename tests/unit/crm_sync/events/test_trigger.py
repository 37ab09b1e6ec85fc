"""The event trigger on a real Redis: it fires for new, left-over and stale entries, never claims one, survives
an unreachable Redis, serialises as the triggerer re-creates it, and feeds the queue from the Salesforce poll."""

from __future__ import annotations

import asyncio
import importlib
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
import redis
from airflow.sdk import Asset, AssetWatcher
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from crm_sync.events.queue import ContactEventQueue
from crm_sync.events.trigger import ContactEventTrigger
from include.sync_logic.events import ContactEvent, EventKind
from include.sync_logic.sides import Side
from sandbox.testing import SandboxProcess
from tests.integration.conftest import wired_sandbox
from tests.local_services import free_port

CONN_ID = "events_redis"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def names(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A stream, group and dedupe prefix of this test's own on the session's Redis, its connection exported."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", redis_url)
    tag = uuid.uuid4().hex[:8]
    return {"stream": f"test:{{{tag}}}:stream", "group": f"group-{tag}", "seen_prefix": f"test:{{{tag}}}:seen:"}


def queue_of(redis_url: str, names: dict[str, str], lease_ms: int = 60_000) -> ContactEventQueue:
    return ContactEventQueue(redis.Redis.from_url(redis_url), lease_ms=lease_ms, **names)


def events(n: int) -> list[ContactEvent]:
    now = int(datetime.now(UTC).timestamp() * 1000)
    return [ContactEvent(Side.HUBSPOT, str(1000 + i), EventKind.CHANGED, now, uuid.uuid4().hex) for i in range(n)]


@asynccontextmanager
async def running(trigger: ContactEventTrigger) -> AsyncIterator[asyncio.Queue[TriggerEvent]]:
    """The trigger's `run()` iterated in the background, as the triggerer does; its events in a queue."""
    fired: asyncio.Queue[TriggerEvent] = asyncio.Queue()

    async def drive() -> None:
        async for event in trigger.run():
            await fired.put(event)

    task = asyncio.create_task(drive())
    try:
        yield fired
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def trigger_on(names: dict[str, str], conn_id: str = CONN_ID, **kwargs: float) -> ContactEventTrigger:
    options = {"batch_seconds": 0.2, **kwargs}
    return ContactEventTrigger(redis_conn_id=conn_id, stream=names["stream"], group=names["group"], **options)


async def nothing_within(fired: asyncio.Queue[TriggerEvent], seconds: float) -> bool:
    try:
        await asyncio.wait_for(fired.get(), seconds)
    except TimeoutError:
        return True
    return False


def test_serialises_as_the_triggerer_re_creates_it_and_hashes_on_its_settings() -> None:
    trigger = ContactEventTrigger(redis_conn_id="r", batch_seconds=1.5, salesforce_poll_seconds=30)
    classpath, kwargs = trigger.serialize()
    assert classpath == "crm_sync.events.trigger.ContactEventTrigger"
    module, _, name = classpath.rpartition(".")
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert BaseEventTrigger.hash(classpath, kwargs) == BaseEventTrigger.hash(*again.serialize())
    other = ContactEventTrigger(redis_conn_id="r", batch_seconds=3, salesforce_poll_seconds=30).serialize()
    assert BaseEventTrigger.hash(*other) != BaseEventTrigger.hash(classpath, kwargs)
    asset = Asset("crm_sync_contact_events", watchers=[AssetWatcher(name="contact_event_queue", trigger=trigger)])
    assert asset.watchers[0].trigger is trigger


@pytest.mark.anyio
async def test_fires_once_for_new_entries_and_claims_nothing(redis_url: str, names: dict[str, str]) -> None:
    queue = queue_of(redis_url, names)
    queue.add(events(3))
    async with running(trigger_on(names)) as fired:
        first = await asyncio.wait_for(fired.get(), 5)
        assert first.payload["reason"] == "new"
        assert await nothing_within(fired, 1.5)  # no run has claimed them yet: no second run for them
        assert queue.lag() == 3 and queue.pending()["count"] == 0
        queue.add(events(1))
        again = await asyncio.wait_for(fired.get(), 5)
        assert again.payload["reason"] == "new"
        assert again.payload["newest"] != first.payload["newest"]


@pytest.mark.anyio
async def test_fires_again_for_a_micro_batchs_leftovers(redis_url: str, names: dict[str, str]) -> None:
    queue = queue_of(redis_url, names)
    queue.add(events(3))
    async with running(trigger_on(names)) as fired:
        await asyncio.wait_for(fired.get(), 5)
        (taken,) = queue.claim("run-1", 1)
        queue.ack([taken.entry_id])
        left = await asyncio.wait_for(fired.get(), 10)
        assert left.payload["reason"] == "left"
        assert queue.lag() == 2


@pytest.mark.anyio
async def test_fires_for_entries_a_dead_run_left_pending(redis_url: str, names: dict[str, str]) -> None:
    queue = queue_of(redis_url, names, lease_ms=300)
    queue.add(events(2))
    queue.claim("dead-run", 2)  # never acknowledged
    await asyncio.sleep(0.4)
    async with running(trigger_on(names, lease_ms=300)) as fired:
        stale = await asyncio.wait_for(fired.get(), 5)
        assert stale.payload["reason"] == "stale" and stale.payload["stale"] == 2
        assert await nothing_within(fired, 0.2)  # once a lease, not at every look
    assert [claimed.event.contact_id for claimed in queue.claim("next-run", 5)] == ["1000", "1001"]


@pytest.mark.anyio
async def test_an_unreachable_redis_is_waited_out_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", f"redis://127.0.0.1:{free_port()}/0")
    trigger = ContactEventTrigger(redis_conn_id=CONN_ID)
    async with running(trigger) as fired:
        assert await nothing_within(fired, 2.5)  # still running (an exception would end `running` with it)


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[SandboxProcess]:
    now = datetime.now(UTC).replace(microsecond=0)
    with wired_sandbox(tmp_path_factory.mktemp("sandbox"), redis_url, 0, now) as sandbox:
        yield sandbox


@pytest.mark.integration
@pytest.mark.anyio
async def test_the_salesforce_poll_feeds_the_queue_and_the_queue_fires(
    crm: SandboxProcess, redis_url: str, names: dict[str, str]
) -> None:
    crm.admin("salesforce", "POST", "reset")
    seeded = crm.admin("salesforce", "POST", "seed", json={"contacts": [{"Email": "e@example.com", "LastName": "E"}]})
    (contact_id,) = seeded.json()["ids"]
    # The sandbox-wired connections: redis_default (the same Redis) holds the hook's rate-limit pool too.
    async with running(trigger_on(names, "redis_default", salesforce_poll_seconds=1)) as fired:
        event = await asyncio.wait_for(fired.get(), 30)
    assert event.payload["reason"] == "new"
    claimed = queue_of(redis_url, names).claim("run", 10)
    assert [(c.event.side, c.event.contact_id, c.event.kind) for c in claimed] == [
        (Side.SALESFORCE, contact_id, EventKind.CHANGED)
    ]
