"""Events lost, repeated and out of order still converge: HubSpot's signed webhooks (the sandbox dropping, duplicating
and reordering them) through the plugin's endpoint on the real api-server, and Salesforce's changes through the
poll, into the queue; an event run syncs what arrived (each contact re-read, so an old event brings the newest
value), and the next windowed run catches exactly the contacts whose every event was lost."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis

from crm_sync.events.queue import ContactEventQueue
from crm_sync.events.sf_poll import SalesforceChangePoll
from crm_sync.hooks.contacts import contacts_hook
from include.sync_logic.sides import Side
from sandbox.testing import SandboxProcess
from tests.integration.api_server import api_server
from tests.integration.conftest import crm_env
from tests.integration.crm_edits import (
    at,
    edit_hubspot,
    edit_salesforce,
    hubspot_contact,
    salesforce_contact,
    seed_pair,
)
from tests.integration.test_dag_events import ANN_HS, ANN_SF, MINUTE, T, event_run, windowed
from tests.integration.test_dag_sync import writes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "convergence-webhook-secret"
PAIRS = 10  # edited in HubSpot, their webhooks faulted
TWICE = range(5)  # edited twice: whichever of their events arrives, the newest value wins
POLLED = 4  # more pairs, edited in Salesforce (found by the poll)
FAULTS = {"drop": 0.5, "duplicate": 0.5, "reorder": True}


@pytest.fixture
def world(airflow_project, sandbox_factory, clean_redis, state_conn, tmp_path) -> Iterator[tuple[Any, ...]]:
    sandbox = sandbox_factory(contacts=0, freeze_clock=True, clock=(T - 20 * MINUTE).isoformat())
    env = crm_env(sandbox, clean_redis, state_conn)
    env["AIRFLOW_CONN_HUBSPOT_WEBHOOK_DEFAULT"] = json.dumps({"conn_type": "generic", "password": SECRET})
    with api_server(airflow_project, env, tmp_path) as server:
        yield airflow_project, sandbox, env, clean_redis, server


def settled(sandbox: SandboxProcess, timeout: float = 120) -> dict[str, Any]:
    """The sandbox's webhook counters once nothing is queued or in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats: dict[str, Any] = sandbox.admin("hubspot", "GET", "webhooks").json()
        if stats["pending"] == 0 and stats["in_flight_requests"] == 0:
            return stats
        time.sleep(0.2)
    raise AssertionError(f"webhooks still pending after {timeout} s: {stats}")


def queued(redis_url: str) -> list[tuple[str, str]]:
    """(side, contact id) of each entry waiting in the queue, read without claiming it."""
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/0", decode_responses=True)
    entries = client.xrange(ContactEventQueue(client).stream)
    return [(fields["side"], fields["contact_id"]) for _entry_id, fields in entries]


def poll_salesforce(redis_url: str, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> int:
    """One Salesforce poll into the queue, as the trigger runs it (its first mark a minute before the edits)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/0")
    hook = contacts_hook(Side.SALESFORCE, "salesforce_default", redis_conn_id="redis_default")
    poll = SalesforceChangePoll(
        hook, client, conn_id="salesforce_default", first_lookback=timedelta(minutes=10), now=lambda: T + 12 * MINUTE
    )
    return len(poll.poll(ContactEventQueue(client).add))


def test_dropped_duplicated_and_reordered_events_converge_with_the_windowed_dag(
    world, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, sandbox, env, redis_url, server = world
    server_url: str = server.url
    seeded = [
        seed_pair(
            sandbox, T - 20 * MINUTE, {**ANN_SF, "Email": f"p{n}@example.com"}, {**ANN_HS, "email": f"p{n}@example.com"}
        )
        for n in range(PAIRS + POLLED)
    ]
    pairs, polled = seeded[:PAIRS], seeded[PAIRS:]
    windowed(project, sandbox, env, T)  # links every pair
    sandbox.admin(
        "hubspot",
        "POST",
        "webhooks",
        {
            "target_url": f"{server_url}/crm-sync-events/hubspot",
            "client_secret": SECRET,
            "batch_wait_ms": 30,
            "seed": 7,
            "faults": FAULTS,
        },
    )
    at(sandbox, T + 2 * MINUTE)
    for n, (_sf_id, hs_id) in enumerate(pairs):
        edit_hubspot(sandbox, hs_id, {"jobtitle": f"first {n}"})
    for n, (sf_id, _hs_id) in enumerate(polled):
        edit_salesforce(sandbox, sf_id, {"Phone": f"+1415555{n:04d}"})
    at(sandbox, T + 3 * MINUTE)
    for n in TWICE:
        edit_hubspot(sandbox, pairs[n][1], {"jobtitle": f"second {n}"})
    stats = settled(sandbox)
    assert stats["dropped"] and stats["duplicated"], stats
    entries = queued(redis_url)
    arrived = {cid for side, cid in entries if side == "hubspot"}
    lost = [(sf_id, hs_id) for sf_id, hs_id in pairs if hs_id not in arrived]
    assert lost and len(lost) < PAIRS, f"seed {stats['config']['seed']} must lose some contacts' events, not all"
    assert len(entries) == stats["emitted"] - stats["dropped"], "each event once, however often delivered"
    assert poll_salesforce(redis_url, monkeypatch, env) == POLLED

    event_run(project, sandbox, env, T + 13 * MINUTE)
    for n, (_sf_id, hs_id) in enumerate(polled):
        assert hubspot_contact(sandbox, hs_id)["phone"] == f"+1415555{n:04d}", "a polled Salesforce edit not synced"
    for n, (sf_id, hs_id) in enumerate(pairs):
        newest = f"second {n}" if n in TWICE else f"first {n}"
        title = salesforce_contact(sandbox, sf_id)["Title"]
        assert (title == newest) is (hs_id in arrived), (n, title, hs_id in arrived)

    after = windowed(project, sandbox, env, T + 15 * MINUTE)  # the window of every edit
    assert writes(after.report) == {"salesforce.update": len(lost)}, after.report["decisions"]
    for sf_id, hs_id in pairs:
        assert salesforce_contact(sandbox, sf_id)["Title"] == hubspot_contact(sandbox, hs_id)["jobtitle"]
