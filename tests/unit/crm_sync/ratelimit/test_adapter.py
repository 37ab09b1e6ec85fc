"""The requests adapter, spoken to by a real `requests` session over loopback HTTP and a real Redis."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import redis
import requests

from crm_sync.ratelimit import (
    RateLimitedAdapter,
    RateLimitPool,
    RateLimitWaitTooLong,
    hubspot_limits,
    salesforce_limits,
)


class Handler(BaseHTTPRequestHandler):
    """`/throttled/<n>/<id>`: 429 (Retry-After: 1) for the first n hits of that path, then 200.
    `/sforce`: 200 with a Limit Info header. Anything else: 200 with HubSpot headers."""

    hits: ClassVar[dict[str, int]] = {}
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self) -> None:
        with self.lock:
            hits = self.hits[self.path] = self.hits.get(self.path, 0) + 1
        if self.path.startswith("/throttled/") and hits <= int(self.path.split("/")[2]):
            self.send_response(429)
            self.send_header("Retry-After", "1")
        elif self.path == "/sforce":
            self.send_response(200)
            self.send_header("Sforce-Limit-Info", "api-usage=14000/15000")
        else:
            self.send_response(200)
            self.send_header("X-HubSpot-RateLimit-Max", "100")
            self.send_header("X-HubSpot-RateLimit-Remaining", "10")
            self.send_header("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = _reply

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._reply()


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def pool(redis_url):
    return RateLimitPool(redis.Redis.from_url(redis_url), f"adapter-{uuid.uuid4().hex[:8]}", hubspot_limits({}))


def session_for(pool, **kwargs):
    session = requests.Session()
    session.mount("http://", RateLimitedAdapter(pool, **kwargs))
    return session


def test_each_send_takes_from_the_pool_and_headers_correct_it(pool, base_url):
    session = session_for(pool)
    assert session.get(f"{base_url}/contacts").status_code == 200
    # one request taken, then the server's "10 remaining" filled the window to 90
    assert pool.usage()["used"]["requests_per_10s"] == 90
    assert pool.stats.as_dict()["acquires"] == 1


def test_search_requests_are_routed_to_the_search_limit(pool, base_url):
    session = session_for(pool, kind_for=lambda req: "search" if req.path_url.endswith("/search") else "default")
    session.post(f"{base_url}/crm/v3/objects/contacts/search", json={"limit": 1})
    session.get(f"{base_url}/crm/v3/objects/contacts")
    assert pool.usage()["used"]["search_requests_per_s"] == 1


def test_a_429_is_sent_once_and_pauses_the_pool_for_every_worker(pool, base_url, redis_url):
    """The adapter never resends (the caller's retry layer does, counting each send); the pause it sets
    holds back the next acquire of any worker for Retry-After."""
    path = f"/throttled/1/{uuid.uuid4().hex}"
    session = session_for(pool)
    assert session.post(f"{base_url}{path}", json={"inputs": []}).status_code == 429
    assert Handler.hits[path] == 1
    stats = pool.stats.as_dict()
    assert stats["throttled_responses"] == 1 and stats["pauses"] == 1
    other_worker = RateLimitPool(redis.Redis.from_url(redis_url), pool.account, hubspot_limits({}))
    with pytest.raises(RateLimitWaitTooLong) as exc:
        other_worker.acquire(max_wait_seconds=0.2)
    assert "429" in exc.value.reason
    assert session.post(f"{base_url}{path}", json={"inputs": []}).status_code == 200
    assert 0.9 < pool.stats.as_dict()["wait_seconds"] < 2.5


def test_long_wait_raises_out_of_send(pool, base_url):
    pool.pause_for(30, "test pause")
    with pytest.raises(RateLimitWaitTooLong):
        session_for(pool, max_wait_seconds=5).get(f"{base_url}/contacts")


def test_salesforce_limit_info_syncs_the_daily_budget(redis_url, base_url):
    pool = RateLimitPool(
        redis.Redis.from_url(redis_url), f"sf-{uuid.uuid4().hex[:8]}", salesforce_limits({"api_reserve_share": 0})
    )
    session_for(pool).get(f"{base_url}/sforce")
    assert pool.usage()["used"] == {"daily_api_requests": 14000}
