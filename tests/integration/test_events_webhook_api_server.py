"""HubSpot's webhook endpoint on Airflow's real api-server, as the plugin mounts it: open to HubSpot while the
health view's routes still need a login, the HubSpot sandbox's own signed webhooks queued once each, refusals
counted in Redis and StatsD, and what the endpoint takes at HubSpot's concurrency."""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests
from hubspot import HubSpot
from hubspot.crm.contacts import PublicGdprDeleteInput, PublicMergeInput, SimplePublicObjectInputForCreate
from hubspot.utils.signature import Signature

from crm_sync.events.queue import ContactEventQueue
from include.sync_logic.events import EventKind
from sandbox.testing import SandboxProcess, start_sandbox
from tests.integration.airflow_project import AirflowProject
from tests.integration.api_server import ApiServer, api_server
from tests.integration.receivers import StatsdReceiver, statsd_receiver

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "webhook-client-secret-0001"
REDIS_DB = 7
PATH = "/crm-sync-events/hubspot"


@pytest.fixture(scope="module")
def statsd() -> Iterator[StatsdReceiver]:
    with statsd_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def redis_db_url(redis_url: str) -> str:
    return f"{redis_url.rsplit('/', 1)[0]}/{REDIS_DB}"


def redis_connection(redis_db_url: str) -> str:
    """The Airflow connection of that db: RedisHook takes the db from the extra `db`, not the URL's path."""
    host, port = redis_db_url.split("//")[1].split("/")[0].split(":")
    return json.dumps({"conn_type": "redis", "host": host, "port": int(port), "extra": {"db": REDIS_DB}})


@pytest.fixture(scope="module")
def server(
    airflow_project: AirflowProject, redis_db_url: str, statsd: StatsdReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    env = {
        "AIRFLOW_CONN_HUBSPOT_WEBHOOK_DEFAULT": json.dumps({"conn_type": "generic", "password": SECRET}),
        "AIRFLOW_CONN_REDIS_DEFAULT": redis_connection(redis_db_url),
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(statsd.port),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
    }
    with api_server(airflow_project, env, tmp_path_factory.mktemp("api-server")) as running:
        yield running


@pytest.fixture
def rdb(redis_db_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_db_url) as conn:
        conn.flushdb()
        yield conn


def signed(body: bytes, url: str, secret: str = SECRET, age_ms: int = 0) -> dict[str, str]:
    timestamp = str(int(time.time() * 1000) - age_ms)
    signature = Signature.get_signature(secret, body.decode(), "v3", url, "POST", timestamp)
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp}


def delivery(first_id: int, n: int) -> bytes:
    now = int(time.time() * 1000)
    return json.dumps(
        [
            {
                "eventId": first_id + i,
                "subscriptionId": 1001,
                "portalId": 62515,
                "appId": 424242,
                "occurredAt": now,
                "subscriptionType": "contact.propertyChange",
                "attemptNumber": 0,
                "objectId": first_id + i,
                "propertyName": "lastname",
                "propertyValue": "Lovelace",
                "changeSource": "CRM_UI",
            }
            for i in range(n)
        ]
    ).encode()


def token(server: ApiServer) -> str:
    answer = requests.post(
        f"{server.url}/auth/token", json={"username": server.username, "password": server.password}, timeout=30
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def wait_for(statsd: StatsdReceiver, name: str, timeout: float = 10) -> list[float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not statsd.values(name):
        time.sleep(0.1)
    return statsd.values(name)


def test_the_webhook_needs_no_login_the_health_routes_do_and_refusals_are_counted(
    server: ApiServer, rdb: redis.Redis, statsd: StatsdReceiver
) -> None:
    url = server.url + PATH
    body = delivery(100, 3)
    headers = signed(body, url)
    assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 204
    refusals = {
        "replayed": headers,
        "forged": signed(body, url, secret="not-the-app-secret"),
        "stale": signed(body, url, age_ms=6 * 60 * 1000),
        "missing": {},
    }
    for reason, refused in refusals.items():
        assert requests.post(url, data=body, headers=refused, timeout=10).status_code == 401, reason

    for path in ("/crm-sync/", "/crm-sync/api/events", "/crm-sync/api/runs"):
        assert requests.get(server.url + path, timeout=30).status_code == 401, path
    forged_login = requests.get(server.url + "/crm-sync/api/events", cookies={"_token": "forged"}, timeout=30)
    assert forged_login.status_code in (401, 403)
    answer = requests.get(
        server.url + "/crm-sync/api/events", headers={"Authorization": f"Bearer {token(server)}"}, timeout=30
    )
    assert answer.status_code == 200
    figures = answer.json()
    assert figures["webhook"] == {
        "accepted": 1,
        "events_queued": 3,
        "replayed": 1,
        "forged": 1,
        "stale": 1,
        "missing": 1,
    }
    assert (figures["queue"]["length"], figures["queue"]["lag"], figures["queue"]["pending"]) == (3, 3, 0)
    for reason in ("accepted", *refusals):
        assert wait_for(statsd, f"airflow.crm_sync.webhook.{reason}") == [1], reason
    assert wait_for(statsd, "airflow.crm_sync.webhook.events_queued") == [3]


@pytest.fixture
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with start_sandbox(tmp_path_factory.mktemp("hubspot-webhooks"), no_salesforce=True) as process:
        process.admin("hubspot", "POST", "reset")
        yield process


def settled(sandbox: SandboxProcess, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats: dict[str, Any] = sandbox.admin("hubspot", "GET", "webhooks").json()
        if stats["pending"] == 0 and stats["in_flight_requests"] == 0:
            return stats
        time.sleep(0.1)
    raise AssertionError(f"webhooks still pending after {timeout}s: {stats}")


def test_the_hubspot_sandboxs_signed_webhooks_pass_and_each_event_is_queued_once(
    server: ApiServer, rdb: redis.Redis, sandbox: SandboxProcess
) -> None:
    settings = {
        "target_url": server.url + PATH,
        "client_secret": SECRET,
        "app_id": 424242,
        "batch_wait_ms": 30,
        "seed": 3,
        "faults": {"duplicate": 0.5, "reorder": True},  # HubSpot's "sometimes twice", unordered
    }
    sandbox.admin("hubspot", "POST", "webhooks", settings)
    hs = HubSpot(access_token=sandbox.hubspot_token, host=sandbox.hubspot_url)

    def create(**props: str) -> Any:
        return hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties=props))

    ada, bea, carl = create(email="ada@example.com"), create(email="bea@example.com"), create(email="carl@example.com")
    merged = hs.crm.contacts.basic_api.merge(PublicMergeInput(primary_object_id=ada.id, object_id_to_merge=bea.id))
    hs.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id=carl.id))
    stats = settled(sandbox)

    assert stats["failed"] == 0 and stats["duplicated"] > 0
    assert stats["delivered"] == stats["emitted"] + stats["duplicated"]
    events = [c.event for c in ContactEventQueue(rdb).claim("test", count=1000)]
    assert len(events) == stats["emitted"], "every event once, duplicates dropped"
    kinds = Counter(e.kind for e in events)
    assert kinds[EventKind.MERGED] == 1 and kinds[EventKind.PRIVACY_DELETED] == 1 and kinds[EventKind.DELETED] == 1
    [merge] = [e for e in events if e.kind is EventKind.MERGED]
    assert (merge.contact_id, merge.merged_ids) == (merged.id, tuple(sorted((ada.id, bea.id), key=int)))
    counts = {k.decode(): int(v) for k, v in rdb.hgetall("crm_sync:webhook:counts").items()}
    assert counts["accepted"] == stats["requests"] and "forged" not in counts
    assert counts["events_queued"] == stats["emitted"] and counts["events_duplicate"] == stats["duplicated"]


def test_the_endpoint_answers_hubspots_concurrency_well_within_five_seconds(
    server: ApiServer, rdb: redis.Redis
) -> None:
    # HubSpot sends up to 10 requests at once, each up to 100 events.
    url = server.url + PATH
    senders, per_sender, size = 10, 20, 100
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def send(sender: int) -> None:
        with requests.Session() as session:
            for n in range(per_sender):
                body = delivery(1_000_000 * (sender + 1) + n * size, size)
                started = time.monotonic()
                status = session.post(url, data=body, headers=signed(body, url), timeout=10).status_code
                with lock:
                    latencies.append(time.monotonic() - started)
                    statuses[status] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=send, args=(s,)) for s in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started

    assert statuses == {204: senders * per_sender}
    assert ContactEventQueue(rdb).lag() == senders * per_sender * size
    latencies.sort()
    p50, p95 = statistics.median(latencies), latencies[int(0.95 * len(latencies)) - 1]
    print(
        f"\nwebhook via api-server: {senders} concurrent senders x {per_sender} deliveries of {size} events: "
        f"{len(latencies) / wall:.0f} requests/s, {len(latencies) * size / wall:.0f} events/s; "
        f"answer p50 {1000 * p50:.0f} ms, p95 {1000 * p95:.0f} ms, max {1000 * latencies[-1]:.0f} ms"
    )
    assert latencies[-1] < 5, "HubSpot counts an answer after 5 s as a failure"
