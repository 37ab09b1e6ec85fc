"""The HubSpot sandbox's webhooks, received over real HTTP by a tiny endpoint that checks each request as
HubSpot's docs tell a receiver to, while the unmodified hubspot-api-client makes the changes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    PublicGdprDeleteInput,
    PublicMergeInput,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.properties import PropertyCreate
from hubspot.utils.signature import Signature

from sandbox.hubspot.errors import PORTAL_ID
from sandbox.testing import start_sandbox

pytestmark = pytest.mark.integration

SECRET = "webhook-client-secret-0001"
FAST = {"batch_wait_ms": 30, "retry_time_scale": 0.0001}  # HubSpot's 24 h of retries in ~9 s
COMMON_FIELDS = {
    "eventId",
    "subscriptionId",
    "portalId",
    "appId",
    "occurredAt",
    "subscriptionType",
    "attemptNumber",
    "objectId",
    "changeSource",
}


def verify_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str, signature: str) -> bool:
    """HubSpot's "Validating requests" steps, written here independently of the sandbox: refuse a timestamp
    older than 5 minutes, then compare base64(HMAC-SHA256(secret, method + URI + body + timestamp))."""
    if time.time() * 1000 - int(timestamp) > 300_000:
        return False
    digest = hmac.new(secret.encode(), method.encode() + uri.encode() + body + timestamp.encode(), hashlib.sha256)
    return hmac.compare_digest(base64.b64encode(digest.digest()).decode(), signature)


@dataclass
class Delivery:
    arrived: float  # time.monotonic()
    events: list[dict[str, Any]]
    verified: bool  # by verify_v3
    sdk_verified: bool  # by HubSpot's own Python SDK (hubspot.utils.signature)
    status: int


@dataclass
class Receiver:
    """A webhook endpoint on loopback. `answers` scripts the next answers: an int is the status to send, a
    float the seconds to wait before a 204; once it runs out every request gets 204."""

    url: str = ""
    answers: list[int | float] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers["Content-Length"]))
        uri = f"http://{handler.headers['Host']}{handler.path}"
        timestamp, signature = handler.headers["X-HubSpot-Request-Timestamp"], handler.headers["X-HubSpot-Signature-v3"]
        verified = verify_v3(SECRET, handler.command, uri, body, timestamp, signature)
        sdk = Signature.is_valid(signature, SECRET, body.decode(), uri, "POST", "v3", timestamp)
        with self.lock:
            answer = self.answers.pop(0) if self.answers else 204
        status = answer if isinstance(answer, int) else 204
        if isinstance(answer, float):
            time.sleep(answer)
        with self.lock:
            self.deliveries.append(Delivery(time.monotonic(), json.loads(body), verified, sdk, status))
        handler.send_response(status)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def wait_for(self, requests: int, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while len(self.deliveries) < requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.deliveries) == requests

    def events(self, ok_only: bool = True) -> list[dict[str, Any]]:
        with self.lock:
            return [e for d in self.deliveries if d.status < 300 or not ok_only for e in d.events]

    def kinds(self) -> Counter[str]:
        return Counter(e["subscriptionType"] for e in self.events())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            endpoint.handle(self)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/hubspot?portal=main"
    yield endpoint
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with start_sandbox(tmp_path_factory.mktemp("hubspot-webhooks"), no_salesforce=True) as proc:
        yield proc


@pytest.fixture
def hs(sandbox) -> HubSpot:
    sandbox.admin("hubspot", "DELETE", "webhooks")  # webhook settings outlive a reset, as other settings do
    sandbox.admin("hubspot", "POST", "reset")
    sandbox.admin("hubspot", "POST", "limits", {"requests_per_10s": 100_000, "search_requests_per_s": 100_000})
    return HubSpot(access_token=sandbox.hubspot_token, host=sandbox.hubspot_url)


def subscribe(sandbox, receiver: Receiver, **settings: Any) -> dict:
    body = {"target_url": receiver.url, "client_secret": SECRET, "app_id": 424242, **FAST, **settings}
    return sandbox.admin("hubspot", "POST", "webhooks", body).json()


def settled(sandbox, timeout: float = 30) -> dict:
    """The delivery counters once nothing is queued or in flight."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = sandbox.admin("hubspot", "GET", "webhooks").json()
        if stats["pending"] == 0 and stats["in_flight_requests"] == 0:
            return stats
        time.sleep(0.05)
    raise AssertionError(f"webhooks still pending after {timeout}s: {stats}")


def create(hs: HubSpot, **props: str):
    return hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties=props))


def ms(when) -> int:
    return int(when.timestamp() * 1000)


def balanced(stats: dict) -> bool:
    flowed_in = stats["emitted"] - stats["dropped"] + stats["duplicated"]
    return flowed_in == stats["delivered"] + stats["gave_up"] + stats["pending"]


def test_every_kind_of_contact_change_arrives_signed_in_hubspots_format(sandbox, hs, receiver):
    subscribe(sandbox, receiver)
    ada = create(hs, email="ada@example.com", firstname="Ada", lastname="Lovelace")
    updated = hs.crm.contacts.basic_api.update(
        ada.id, SimplePublicObjectInput(properties={"firstname": "Ada", "jobtitle": "Analyst", "phone": ""})
    )
    bea = create(hs, email="bea@example.com", lastname="Byron", phone="+44 20 0000")
    merged = hs.crm.contacts.basic_api.merge(PublicMergeInput(primary_object_id=ada.id, object_id_to_merge=bea.id))
    carl = create(hs, email="carl@example.com")
    hs.crm.contacts.basic_api.archive(carl.id)
    sandbox.admin("hubspot", "POST", "restore", {"ids": [carl.id]})
    dora = create(hs, email="dora@example.com")
    hs.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id=dora.id))
    stats = settled(sandbox)

    assert receiver.kinds() == {
        "contact.creation": 4,
        "contact.propertyChange": 3 + 1 + 3 + 1 + 1,  # 3 set by ada's create, jobtitle, bea's 3, carl's, dora's
        "contact.merge": 1,
        "contact.deletion": 2,  # carl's archive, and dora's privacy deletion fires one too
        "contact.restore": 1,
        "contact.privacyDeletion": 1,
    }
    assert all(d.verified and d.sdk_verified for d in receiver.deliveries)
    assert stats["delivered"] == stats["emitted"] == 18 and stats["failed"] == 0 and balanced(stats)
    events = receiver.events()
    assert len({e["eventId"] for e in events}) == 18
    for event in events:
        assert set(event) >= COMMON_FIELDS
        assert (event["portalId"], event["appId"], event["attemptNumber"]) == (PORTAL_ID, 424242, 0)
    [jobtitle] = [e for e in events if e.get("propertyName") == "jobtitle"]
    assert (jobtitle["objectId"], jobtitle["propertyValue"]) == (int(ada.id), "Analyst")
    assert jobtitle["occurredAt"] == ms(updated.updated_at)  # the write's lastmodifieddate
    [merge] = [e for e in events if e["subscriptionType"] == "contact.merge"]
    assert merge["objectId"] == merge["primaryObjectId"] == int(ada.id)
    assert merge["mergedObjectIds"] == [int(bea.id)]
    assert merge["newObjectId"] == int(merged.id) != int(ada.id)
    assert merge["numberOfPropertiesMoved"] == 1  # bea's phone: ada had none
    assert {e["objectId"] for e in events if e["subscriptionType"].endswith("eletion")} == {int(carl.id), int(dora.id)}
    [creation] = [e for e in events if e["subscriptionType"] == "contact.creation" and e["objectId"] == int(ada.id)]
    assert creation["occurredAt"] == ms(ada.created_at)


def test_only_subscribed_properties_that_the_portal_has_fire(sandbox, hs, receiver):
    subscribe(
        sandbox,
        receiver,
        subscriptions=[
            {"eventType": "contact.propertyChange", "propertyName": "jobtitle"},
            {"eventType": "contact.propertyChange", "propertyName": "favourite_colour"},
            {"eventType": "contact.propertyChange", "propertyName": "lastname", "active": False},
        ],
    )
    eve = create(hs, email="eve@example.com", lastname="Eve")
    hs.crm.contacts.basic_api.update(eve.id, SimplePublicObjectInput(properties={"jobtitle": "CFO", "lastname": "E"}))
    colour = PropertyCreate(
        name="favourite_colour", label="Colour", type="string", field_type="text", group_name="contactinformation"
    )
    hs.crm.properties.core_api.create("contacts", colour)
    hs.crm.contacts.basic_api.update(eve.id, SimplePublicObjectInput(properties={"favourite_colour": "teal"}))
    settled(sandbox)
    assert [(e["propertyName"], e["propertyValue"]) for e in receiver.events()] == [
        ("jobtitle", "CFO"),
        ("favourite_colour", "teal"),
    ]


def test_requests_carry_at_most_100_events(sandbox, hs, receiver):
    subscribe(sandbox, receiver, batch_wait_ms=500, subscriptions=[{"eventType": "contact.creation"}])
    for start in (0, 100):
        hs.crm.contacts.batch_api.create(
            BatchInputSimplePublicObjectBatchInputForCreate(
                inputs=[{"properties": {"email": f"p{i}@example.com"}} for i in range(start, start + 100)]
            )
        )
    stats = settled(sandbox)
    sizes = [len(d.events) for d in receiver.deliveries]
    assert sum(sizes) == 200 and max(sizes) == 100 == stats["largest_batch"]
    assert len({e["objectId"] for e in receiver.events()}) == 200


def test_a_failed_request_is_retried_with_the_next_attempt_number(sandbox, hs, receiver):
    subscribe(sandbox, receiver, subscriptions=[{"eventType": "contact.creation"}])
    receiver.answers = [500, 503]
    fay = create(hs, email="fay@example.com")
    stats = settled(sandbox)
    assert [(d.status, [e["attemptNumber"] for e in d.events]) for d in receiver.deliveries] == [
        (500, [0]),
        (503, [1]),
        (204, [2]),
    ]
    assert {e["eventId"] for d in receiver.deliveries for e in d.events} == {receiver.events()[0]["eventId"]}
    assert receiver.events()[0]["objectId"] == int(fay.id)
    assert (stats["requests"], stats["failed"], stats["retried"], stats["delivered"]) == (3, 2, 2, 1)
    assert balanced(stats)


def test_an_answer_slower_than_five_seconds_counts_as_a_failure(sandbox, hs, receiver):
    subscribe(sandbox, receiver, subscriptions=[{"eventType": "contact.creation"}])
    receiver.answers = [5.5]
    create(hs, email="slow@example.com")
    stats = settled(sandbox)
    receiver.wait_for(2)  # the endpoint still answers the first request, too late
    assert sorted(e["attemptNumber"] for e in receiver.events()) == [0, 1]
    assert (stats["failed"], stats["delivered"]) == (1, 1)


def test_after_ten_retries_the_event_is_given_up(sandbox, hs, receiver):
    subscribe(sandbox, receiver, subscriptions=[{"eventType": "contact.creation"}], retry_time_scale=0.00001)
    receiver.answers = [500] * 11
    create(hs, email="never@example.com")
    stats = settled(sandbox)
    assert [e["attemptNumber"] for e in receiver.events(ok_only=False)] == list(range(11))
    assert (stats["gave_up"], stats["retried"], stats["delivered"]) == (1, 10, 0) and balanced(stats)


def test_drop_and_duplicate_faults_are_seeded_and_counted(sandbox, hs, receiver):
    faults = {"drop": 0.3, "duplicate": 0.2}
    received = []
    for _ in range(2):  # the same seed drops and doubles the same events
        sandbox.admin("hubspot", "POST", "reset")
        receiver.deliveries.clear()
        subscribe(sandbox, receiver, seed=7, faults=faults, subscriptions=[{"eventType": "contact.creation"}])
        inputs = [{"properties": {"email": f"c{i}@example.com"}} for i in range(60)]
        hs.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
        stats = settled(sandbox)
        objects = Counter(e["objectId"] for e in receiver.events())
        assert 0 < stats["dropped"] < 60 and 0 < stats["duplicated"] < 60 and balanced(stats)
        assert len(objects) == 60 - stats["dropped"]
        assert sum(objects.values()) == 60 - stats["dropped"] + stats["duplicated"]
        assert sum(1 for n in objects.values() if n == 2) == stats["duplicated"]
        received.append(objects)
    assert received[0] == received[1]


def test_delay_holds_events_back_and_reorder_shuffles_them(sandbox, hs, receiver):
    contact = create(hs, email="order@example.com")
    orders = {}
    for reorder in (False, True):
        receiver.deliveries.clear()
        subscribe(
            sandbox,
            receiver,
            max_concurrent=1,
            max_batch=5,
            batch_wait_ms=300,
            subscriptions=[{"eventType": "contact.propertyChange", "propertyName": "jobtitle"}],
            faults={"delay_ms": 400, "reorder": reorder},
        )
        written = time.monotonic()
        for i in range(20):
            hs.crm.contacts.basic_api.update(contact.id, SimplePublicObjectInput(properties={"jobtitle": f"t{i}"}))
        settled(sandbox)
        assert receiver.deliveries[0].arrived - written >= 0.4
        orders[reorder] = [int(e["propertyValue"][1:]) for e in receiver.events()]
    assert orders[False] == list(range(20))  # one request at a time and no reorder: as they happened
    assert sorted(orders[True]) == list(range(20)) and orders[True] != list(range(20))


def test_the_admin_route_refuses_bad_settings_and_never_shows_the_secret(sandbox, receiver):
    for bad in ({"max_batch": 101}, {"subscriptions": [{"eventType": "contact.propertyChange"}]}):
        with pytest.raises(Exception, match="400"):
            subscribe(sandbox, receiver, **bad)
    shown = subscribe(sandbox, receiver)
    assert SECRET not in json.dumps(shown) and shown["config"]["target_url"] == receiver.url
    assert sandbox.admin("hubspot", "DELETE", "webhooks").json()["config"] is None


def test_webhooks_from_the_cli_skip_the_seeded_data(tmp_path, receiver):
    settings = json.dumps({"target_url": receiver.url, "client_secret": SECRET, **FAST})
    with start_sandbox(tmp_path, contacts=20, no_salesforce=True, hubspot_webhooks=settings) as proc:
        hs = HubSpot(access_token=proc.hubspot_token, host=proc.hubspot_url)
        create(hs, email="new@example.com", firstname="New")
        stats = settled(proc)
    assert receiver.kinds() == {"contact.creation": 1, "contact.propertyChange": 2}
    assert stats["delivered"] == 3 and all(d.verified for d in receiver.deliveries)
