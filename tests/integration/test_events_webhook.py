"""HubSpot's webhook endpoint mounted as Airflow mounts it, with its connection and a real redis-server:
signed deliveries queued once, forged / stale / replayed / unsigned / oversized ones refused and counted,
and a Redis that stalls or is gone answered with 503 within HubSpot's 5 s."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hubspot.utils.signature import Signature

from crm_sync.events import webhook_counts
from crm_sync.events.queue import ContactEventQueue
from crm_sync.events.webhook_app import DEADLINE_SECONDS, create_app
from include.sync_logic.events import EventKind
from tests.local_services import free_port

pytestmark = pytest.mark.integration

SECRET = "webhook-client-secret-0001"
PREFIX = "/crm-sync-events"
URL = f"http://testserver{PREFIX}/hubspot"
OCCURRED = int(time.time() * 1000)  # a retried delivery repeats its events, occurredAt included


def hubspot_event(n: int, subscription: str = "contact.propertyChange", **fields: Any) -> dict[str, Any]:
    return {
        "eventId": 500 + n,
        "subscriptionId": 1001,
        "portalId": 62515,
        "appId": 424242,
        "occurredAt": OCCURRED + n,
        "subscriptionType": subscription,
        "attemptNumber": 0,
        "objectId": 900 + n,
        "changeSource": "CRM_UI",
        "propertyName": "email",
        "propertyValue": f"person{n}@example.com",
        **fields,
    }


def signed(body: bytes, url: str = URL, secret: str = SECRET, age_ms: int = 0) -> dict[str, str]:
    """Headers as HubSpot sends them, signed by HubSpot's own SDK."""
    timestamp = str(int(time.time() * 1000) - age_ms)
    signature = Signature.get_signature(secret, body.decode(), "v3", url, "POST", timestamp)
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": timestamp}


def connection(monkeypatch: pytest.MonkeyPatch, redis_url: str, **extra: Any) -> None:
    conn = {"conn_type": "generic", "password": SECRET, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_WEBHOOK_DEFAULT", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_CONN_REDIS_DEFAULT", redis_url)


def mounted() -> TestClient:
    """The endpoint under its prefix in a parent app, as Airflow's api-server mounts plugin apps."""
    parent = FastAPI()
    parent.mount(PREFIX, create_app())
    return TestClient(parent)


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch, clean_redis: str) -> TestClient:
    connection(monkeypatch, clean_redis)
    return mounted()


@pytest.fixture
def redis_client(clean_redis: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(clean_redis) as conn:
        yield conn


def queued(redis_client: redis.Redis) -> list[Any]:
    return [c.event for c in ContactEventQueue(redis_client).claim("test", count=1000)]


def post(client: TestClient, body: bytes, headers: dict[str, str], path: str = "/hubspot") -> int:
    return client.post(PREFIX + path, content=body, headers=headers).status_code


def test_a_signed_delivery_is_queued_and_its_retry_and_replay_are_not(
    client: TestClient, redis_client: redis.Redis
) -> None:
    body = json.dumps([hubspot_event(1), hubspot_event(2, "contact.privacyDeletion")]).encode()
    headers = signed(body)
    assert post(client, body, headers) == 204
    assert post(client, body, headers) == 401, "the same signed request again is a replay"
    time.sleep(0.002)
    retry = json.dumps([hubspot_event(1, attemptNumber=1), hubspot_event(2, "contact.privacyDeletion")]).encode()
    assert post(client, retry, signed(retry)) == 204, "HubSpot's retry is signed anew and answered"
    events = queued(redis_client)
    assert [(e.contact_id, e.kind) for e in events] == [("901", EventKind.CHANGED), ("902", EventKind.PRIVACY_DELETED)]
    assert webhook_counts.read(redis_client) == {
        "accepted": 2,
        "replayed": 1,
        "events_queued": 2,
        "events_duplicate": 2,
    }


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda body: signed(body, secret="someone-elses-secret"), "forged"),
        (lambda body: signed(body + b" "), "forged"),
        (lambda body: signed(body, url=URL.replace("/hubspot", "/other")), "forged"),
        (lambda body: signed(body, age_ms=5 * 60 * 1000 + 2000), "stale"),
        (lambda body: {}, "missing"),
        (lambda body: {"X-HubSpot-Signature-v3": signed(body)["X-HubSpot-Signature-v3"]}, "missing"),
    ],
)
def test_requests_not_from_hubspot_are_refused_before_anything_is_queued(
    client: TestClient, redis_client: redis.Redis, tamper: Any, reason: str
) -> None:
    body = json.dumps([hubspot_event(1)]).encode()
    assert post(client, body, tamper(body)) == 401
    assert queued(redis_client) == []
    assert webhook_counts.read(redis_client) == {reason: 1}


def test_bad_events_are_counted_without_failing_the_delivery(client: TestClient, redis_client: redis.Redis) -> None:
    body = json.dumps(
        [hubspot_event(1), hubspot_event(2, objectId="x"), hubspot_event(3, "company.creation"), "junk"]
    ).encode()
    assert post(client, body, signed(body)) == 204
    assert [e.contact_id for e in queued(redis_client)] == ["901"]
    counts = webhook_counts.read(redis_client)
    assert (counts["events_queued"], counts["events_rejected"], counts["events_ignored"]) == (1, 2, 1)


def test_a_signed_body_that_is_not_a_delivery_is_a_400(client: TestClient, redis_client: redis.Redis) -> None:
    for body in (b"not json", b'{"eventId": 1}'):
        assert post(client, body, signed(body)) == 400
    assert webhook_counts.read(redis_client) == {"malformed": 2}


def test_an_oversized_body_is_refused_unread(
    monkeypatch: pytest.MonkeyPatch, clean_redis: str, redis_client: redis.Redis
) -> None:
    connection(monkeypatch, clean_redis, max_body_bytes=2000)
    client = mounted()
    body = json.dumps([hubspot_event(n) for n in range(20)]).encode()
    assert len(body) > 2000
    assert post(client, body, signed(body)) == 413
    small = json.dumps([hubspot_event(1)]).encode()
    assert post(client, small, signed(small)) == 204
    assert webhook_counts.read(redis_client)["too_large"] == 1


def test_behind_a_proxy_the_configured_target_url_is_what_hubspot_signed(
    monkeypatch: pytest.MonkeyPatch, clean_redis: str, redis_client: redis.Redis
) -> None:
    target = "https://airflow.example.org/crm-sync-events/hubspot"
    connection(monkeypatch, clean_redis, target_url=target, portal_id=62515)
    client = mounted()
    body = json.dumps([hubspot_event(1), hubspot_event(2, portalId=7)]).encode()
    assert post(client, body, signed(body, url=target + "?src=hs"), path="/hubspot?src=hs") == 204
    assert post(client, body, signed(body)) == 401, "signed over the URL the api-server sees: not HubSpot's"
    assert [e.contact_id for e in queued(redis_client)] == ["901"]
    assert webhook_counts.read(redis_client)["events_ignored"] == 1, "another portal's event"


def test_without_redis_or_the_connection_the_answer_is_a_prompt_503(
    monkeypatch: pytest.MonkeyPatch, clean_redis: str
) -> None:
    connection(monkeypatch, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    body = json.dumps([hubspot_event(1)]).encode()
    assert post(mounted(), body, signed(body)) == 503
    monkeypatch.delenv("AIRFLOW_CONN_HUBSPOT_WEBHOOK_DEFAULT")
    assert post(mounted(), body, signed(body)) == 503


def test_a_stalled_redis_gets_a_503_within_the_deadline_and_the_retry_queues_once(
    client: TestClient, redis_client: redis.Redis, clean_redis: str
) -> None:
    warm = json.dumps([hubspot_event(0)]).encode()
    assert post(client, warm, signed(warm)) == 204  # the endpoint's client is connected
    with redis.Redis.from_url(clean_redis) as admin:
        admin.execute_command("CLIENT", "PAUSE", 4000, "WRITE")  # writes wait 4 s: past the deadline
        body = json.dumps([hubspot_event(1)]).encode()
        started = time.monotonic()
        status = post(client, body, signed(body))
        took = time.monotonic() - started
    assert status == 503 and DEADLINE_SECONDS <= took < 5
    time.sleep(4.5 - took)  # the pause ends; the abandoned attempt finishes and queues the event
    retry = json.dumps([hubspot_event(1, attemptNumber=1)]).encode()
    assert post(client, retry, signed(retry)) == 204
    assert [e.contact_id for e in queued(redis_client)] == ["900", "901"]


def test_concurrent_deliveries_of_the_same_events_queue_them_once(
    client: TestClient, redis_client: redis.Redis
) -> None:
    events = [hubspot_event(n) for n in range(100)]
    statuses: list[int] = []

    def deliver(attempt: int) -> None:
        body = json.dumps([{**e, "attemptNumber": attempt} for e in events]).encode()
        statuses.append(post(client, body, signed(body)))

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [204] * 8
    assert len(queued(redis_client)) == 100
