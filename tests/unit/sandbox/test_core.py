"""sandbox.core and sandbox.tls: a tiny App served for real on loopback, spoken to with requests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import certifi
import pytest
import requests

from sandbox.core import App, Clock, Request, Response, RunningServer, Stats, serve
from sandbox.tls import BUNDLE_MARKER, make_tls


class EchoApp(App):
    name = "echo"

    def __init__(self) -> None:
        super().__init__(Clock(datetime(2026, 1, 1, tzinfo=UTC), frozen=True))
        self.items: list = []
        self.expired = 0
        self.aged_by: list[timedelta] = []
        self.route("GET", r"/items/(?P<item_id>\d+)", self.get_item)
        self.route("POST", r"/items", self.add_item)
        self.route("GET", r"/boom", self.boom)

    def get_item(self, req: Request, item_id: str) -> Response:
        index = int(item_id)
        if index >= len(self.items):
            return Response(404, {"missing": item_id})
        return Response(200, {"item": self.items[index], "now": self.clock.now().isoformat()})

    def add_item(self, req: Request) -> Response:
        self.items.append(req.json())
        return Response(201, {"id": len(self.items) - 1})

    def boom(self, req: Request) -> Response:
        raise RuntimeError("handler bug")

    def rate_limited_response(self, req: Request) -> Response:
        return Response(429, {"why": "burst"}, {"Retry-After": "2"})

    def server_error_response(self, req: Request, status: int) -> Response:
        return Response(status, {"why": "fault"})

    def expire_sessions(self) -> None:
        self.expired += 1

    def reset(self) -> None:
        self.items.clear()

    def seed(self, payload: list) -> dict:
        self.items.extend(payload)
        return {"seeded": len(payload)}

    def records(self, ids: set[str] | None = None) -> list:
        return self.items if ids is None else [item for n, item in enumerate(self.items) if str(n) in ids]

    def age_records(self, by: timedelta) -> int:
        self.aged_by.append(by)
        return len(self.items)


@pytest.fixture
def running() -> Iterator[tuple[EchoApp, RunningServer]]:
    app = EchoApp()
    server = serve(app)
    yield app, server
    server.shutdown()


def test_routes_params_and_stats_group_by_pattern(running):
    _app, server = running
    assert requests.post(f"{server.url}/items", json={"a": 1}).status_code == 201
    assert requests.post(f"{server.url}/items", json={"a": 2}).status_code == 201
    got = requests.get(f"{server.url}/items/1")
    assert got.status_code == 200
    assert got.json() == {"item": {"a": 2}, "now": "2026-01-01T00:00:00+00:00"}
    assert requests.get(f"{server.url}/items/7").status_code == 404
    assert requests.get(f"{server.url}/nowhere").status_code == 404
    assert requests.get(f"{server.url}/boom").status_code == 500
    stats = requests.get(f"{server.url}/__admin/stats").json()
    assert stats["GET /items/{item_id}"]["requests"] == 2
    assert stats["POST /items"]["requests"] == 2
    assert stats["GET /boom"]["5xx"] == 1
    assert stats["total"]["requests"] == 6  # admin calls are not counted
    assert stats["total"]["handler_seconds"] > 0


def test_admin_seed_records_reset_clock_and_sessions(running):
    app, server = running
    admin = f"{server.url}/__admin"
    assert requests.post(f"{admin}/seed", json=[{"x": 1}, {"x": 2}]).json() == {"seeded": 2}
    assert requests.get(f"{admin}/records").json() == [{"x": 1}, {"x": 2}]
    assert requests.get(f"{admin}/records?ids=1,7").json() == [{"x": 2}]
    clock = requests.post(f"{admin}/clock", json={"advance_seconds": 90}).json()
    assert clock["now"] == "2026-01-01T00:01:30+00:00"
    clock = requests.post(f"{admin}/clock", json={"set": "2026-02-01T10:00:00Z"}).json()
    assert clock["now"] == "2026-02-01T10:00:00+00:00"
    requests.post(f"{admin}/expire-sessions")
    assert app.expired == 1
    requests.post(f"{admin}/reset")
    assert requests.get(f"{admin}/records").json() == []
    assert requests.post(f"{admin}/faults", json={"nonsense": 1}).status_code == 400


@pytest.mark.parametrize("body", [{}, {"seconds": 0}, {"seconds": -60}, {"seconds": 1.5}, {"seconds": True}])
def test_admin_age_takes_whole_seconds_above_zero(running, body):
    app, server = running
    answer = requests.post(f"{server.url}/__admin/age", json=body)
    assert answer.status_code == 400 and "whole number of seconds" in answer.json()["error"]
    assert app.aged_by == []


def test_admin_age_hands_the_app_its_interval(running):
    app, server = running
    requests.post(f"{server.url}/__admin/seed", json=[{"x": 1}])
    assert requests.post(f"{server.url}/__admin/age", json={"seconds": 3600}).json() == {"aged": 1}
    assert app.aged_by == [timedelta(hours=1)]


def test_faults_burst_errors_latency_and_drops(running):
    _app, server = running
    admin = f"{server.url}/__admin"
    requests.post(f"{admin}/faults", json={"burst_429": 2})
    statuses = [requests.get(f"{server.url}/items/0").status_code for _ in range(3)]
    assert statuses == [429, 429, 404]
    requests.post(f"{admin}/faults", json={"burst_429": 1})
    limited = requests.get(f"{server.url}/boom")
    assert limited.headers["Retry-After"] == "2"
    assert requests.get(f"{admin}/stats").json()["total"]["429"] == 3

    requests.post(f"{admin}/faults", json={"error_rate_5xx": 1.0, "seed": 3})
    assert requests.get(f"{server.url}/items/0").status_code in (500, 503)
    requests.post(f"{admin}/faults", json={"error_rate_5xx": 0.0, "drop_rate": 1.0})
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/items/0")
    assert requests.get(f"{admin}/faults").json()["drop_rate"] == 1.0  # admin never faulted
    requests.post(f"{admin}/faults", json={"drop_rate": 0.0, "latency_ms": 150})
    assert requests.get(f"{server.url}/items/0").elapsed.total_seconds() >= 0.15


def test_error_rate_is_repeatable_with_a_seed(running):
    _app, server = running

    def run() -> list[int]:
        requests.post(f"{server.url}/__admin/faults", json={"error_rate_5xx": 0.5, "seed": 42})
        return [requests.get(f"{server.url}/items/0").status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert {404} < set(first)


def test_clock_ticks_unless_frozen():
    clock = Clock(datetime(2030, 5, 1, tzinfo=UTC))
    assert abs((clock.now() - datetime(2030, 5, 1, tzinfo=UTC)).total_seconds()) < 1
    clock.advance(3600)
    assert clock.now() >= datetime(2030, 5, 1, 1, tzinfo=UTC)
    clock.freeze(True)
    assert clock.now() == clock.now()


def test_stats_are_safe_under_threads():
    import threading

    stats = Stats()
    threads = [threading.Thread(target=lambda: [stats.record("GET /x", 429) for _ in range(1000)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stats.snapshot()["GET /x"]["429"] == 8000


def test_tls_bundle_verifies_loopback_and_keeps_system_cas(tmp_path, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    context, bundle = make_tls(tmp_path)
    text = Path(bundle).read_text()
    assert BUNDLE_MARKER in text
    assert text.count("BEGIN CERTIFICATE") > 50  # system roots kept
    app = EchoApp()
    server = serve(app, ssl_context=context)
    try:
        assert server.url.startswith("https://127.0.0.1:")
        assert requests.get(f"{server.url}/items/0", verify=bundle).status_code == 404
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{server.url}/items/0", verify=certifi.where())
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)  # the way the DAG's hooks are pointed at it
        assert requests.get(f"https://localhost:{server.port}/items/0").status_code == 404
    finally:
        server.shutdown()
    # a second bundle made while the first is in the environment does not nest sandbox CAs
    _, second = make_tls(tmp_path / "again")
    assert Path(second).read_text().count(BUNDLE_MARKER) == 1
