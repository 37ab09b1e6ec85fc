"""Shared machinery for the local CRM sandboxes: clock, faults, stats, routing and the HTTP(S) server.

Each CRM is an `App` subclass that registers regex routes and implements a few hooks (its own 429 and
5xx bodies, reset/seed/records). The server is stdlib `ThreadingHTTPServer` speaking HTTP/1.1 with
keep-alive, because the real clients pool connections and a sandbox that reconnects per request would
distort timing. The admin API and the hooks are described in sandbox/README.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/__admin/"


def parse_iso(value: str) -> datetime:
    """Parse an ISO-8601 timestamp (a trailing Z allowed); naive values are taken as UTC."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Clock:
    """Sandbox time: real time plus an offset the admin API can set or advance; optionally frozen."""

    def __init__(self, start: datetime | None = None, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._frozen_at: datetime | None = None
        if frozen:
            self._frozen_at = (start or datetime.now(UTC)).astimezone(UTC)
        elif start is not None:
            self.set(start)

    def now(self) -> datetime:
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return datetime.now(UTC) + self._offset

    def set(self, when: datetime) -> None:
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        with self._lock:
            self._offset = when.astimezone(UTC) - datetime.now(UTC)
            if self._frozen_at is not None:
                self._frozen_at = when.astimezone(UTC)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)
            if self._frozen_at is not None:
                self._frozen_at += timedelta(seconds=seconds)

    def freeze(self, frozen: bool) -> None:
        """Stop (or restart) the clock at its current reading, for tests that need exact timestamps."""
        now = self.now()
        with self._lock:
            self._frozen_at = now if frozen else None
            self._offset = now - datetime.now(UTC)

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None


@dataclass
class FaultConfig:
    """What the server injects into API requests before routing them."""

    burst_429: int = 0
    error_rate_5xx: float = 0.0
    latency_ms: int = 0
    drop_rate: float = 0.0
    seed: int | None = None
    path_pattern: str | None = None  # a regex: only matching request paths are faulted (None: all)


class Stats:
    """Thread-safe counters per endpoint key, plus the server-side handling time for benchmarks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, float]] = {}

    def record(self, endpoint: str, status: int, seconds: float = 0.0) -> None:
        now = time.time()
        with self._lock:
            for key in (endpoint, "total"):
                row = self._data.setdefault(
                    key, {"requests": 0, "429": 0, "5xx": 0, "handler_seconds": 0.0, "first_at": now}
                )
                row["last_at"] = now  # first/last request (epoch s): a benchmark's achieved request rate
                row["requests"] += 1
                row["handler_seconds"] += seconds
                if status == 429:
                    row["429"] += 1
                elif status >= 500:
                    row["5xx"] += 1

    def snapshot(self) -> dict:
        with self._lock:
            snap = {key: dict(row) for key, row in self._data.items()}
        snap.setdefault("total", {"requests": 0, "429": 0, "5xx": 0, "handler_seconds": 0.0})
        return snap

    def reset(self) -> None:
        with self._lock:
            self._data.clear()


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (None when empty); raises ValueError on malformed JSON."""
        if not self.body:
            return None
        return json.loads(self.body)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    _encoded: tuple[bytes, str] | None = field(default=None, repr=False, compare=False)

    def encode(self) -> tuple[bytes, str]:
        """Body bytes and the default content type for them (computed once)."""
        if self._encoded is None:
            if self.body is None:
                self._encoded = b"", "text/plain"
            elif isinstance(self.body, bytes):
                self._encoded = self.body, "application/octet-stream"
            elif isinstance(self.body, str):
                self._encoded = self.body.encode(), "text/plain; charset=utf-8"
            else:
                self._encoded = (
                    json.dumps(self.body, separators=(",", ":")).encode(),
                    "application/json;charset=utf-8",
                )
        return self._encoded


def _ids(req: Request) -> set[str] | None:
    """The `ids` query parameter (comma-separated) of an admin read, as a set; None when absent."""
    value = req.arg("ids")
    return None if value is None else {part for part in value.split(",") if part}


class DropConnection(Exception):
    """Raised by App.handle to make the server close the connection without answering."""


Handler = Callable[..., Response]


@dataclass
class _Route:
    method: str
    regex: re.Pattern[str]
    handler: Handler
    label: str


def _label(pattern: str) -> str:
    """Turn `/x/(?P<id>[^/]+)` into `/x/{id}` so stats group by endpoint, not by record."""
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern).lstrip("^").rstrip("$")


class App:
    """Base of each CRM sandbox: admin routes, fault injection, routing and per-endpoint stats.

    Subclass hooks beyond the agreed API: `before_request` (auth, rate limits) may answer early, and
    `after_request` may add headers to every API response. Handlers run under `self.lock`, so app
    state needs no further locking.
    """

    name = "app"

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.faults = FaultConfig()
        self.stats = Stats()
        self.lock = threading.RLock()
        self._rng = random.Random()
        self._fault_lock = threading.Lock()
        self._routes: list[_Route] = []
        self._admin_routes: list[_Route] = []
        self._register_admin()

    # ---- routing ---------------------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler, label: str | None = None) -> None:
        """Register a handler; the regex is matched against the raw path, named groups arrive URL-decoded."""
        self._routes.append(_Route(method.upper(), re.compile(pattern), handler, label or _label(pattern)))

    def admin_route(self, method: str, path: str, handler: Callable[[Request], Any]) -> None:
        """Register `/__admin/<path>`; the handler gets the request and returns a JSON-able value."""
        pattern = "^" + re.escape(ADMIN_PREFIX + path.lstrip("/")) + "$"
        self._admin_routes.append(_Route(method.upper(), re.compile(pattern), handler, path))

    def handle(self, req: Request) -> Response:
        if req.path.startswith(ADMIN_PREFIX):
            return self._handle_admin(req)
        started = time.perf_counter()
        self._inject_delay_or_drop()
        route, params = self._match(req)
        endpoint = f"{req.method} {route.label if route else req.path}"
        resp = self._faulted_response(req)
        if resp is None:
            try:
                with self.lock:
                    resp = self.before_request(req, endpoint)
                    if resp is None:
                        resp = route.handler(req, **params) if route else self.not_found_response(req)
            except Exception:
                log.exception("%s: handler for %s failed", self.name, endpoint)
                resp = self.server_error_response(req, 500)
        with self.lock:
            resp = self.after_request(req, resp)
        resp.encode()  # JSON encoding is the sandbox's cost too, so it counts in handler_seconds
        self.stats.record(endpoint, resp.status, time.perf_counter() - started)
        return resp

    def _match(self, req: Request) -> tuple[_Route | None, dict[str, str]]:
        for route in self._routes:
            if route.method == req.method:
                match = route.regex.fullmatch(req.path)
                if match:
                    return route, {k: unquote(v) for k, v in match.groupdict().items()}
        return None, {}

    # ---- faults ----------------------------------------------------------------------------------
    def set_faults(self, **changes: Any) -> FaultConfig:
        names = {f.name for f in fields(FaultConfig)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        with self._fault_lock:
            self.faults = FaultConfig(**{**asdict(self.faults), **changes})
            if "seed" in changes:
                self._rng = random.Random(self.faults.seed)
            return self.faults

    def _inject_delay_or_drop(self) -> None:
        faults = self.faults
        if faults.latency_ms:
            time.sleep(faults.latency_ms / 1000)
        if faults.drop_rate:
            with self._fault_lock:
                drop = self._rng.random() < faults.drop_rate
            if drop:
                raise DropConnection

    def _faulted_response(self, req: Request) -> Response | None:
        if self.faults.path_pattern and not re.search(self.faults.path_pattern, req.path):
            return None
        with self._fault_lock:
            if self.faults.burst_429 > 0:
                self.faults.burst_429 -= 1
                burst = True
            else:
                burst = False
            error = bool(self.faults.error_rate_5xx) and self._rng.random() < self.faults.error_rate_5xx
            status = self._rng.choice((500, 503)) if error else 0
        if burst:
            return self.rate_limited_response(req)
        if error:
            return self.server_error_response(req, status)
        return None

    # ---- admin -----------------------------------------------------------------------------------
    def _register_admin(self) -> None:
        self.admin_route("POST", "reset", lambda req: self.reset_all())
        self.admin_route("POST", "seed", lambda req: self.seed(req.json()))
        self.admin_route("GET", "records", lambda req: self.records(_ids(req)))
        self.admin_route("GET", "stats", lambda req: self.stats_snapshot())
        self.admin_route("POST", "stats/reset", lambda req: self.reset_stats() or {"ok": True})
        self.admin_route("GET", "clock", lambda req: self._clock_state())
        self.admin_route("POST", "clock", self._admin_clock)
        self.admin_route("GET", "faults", lambda req: asdict(self.faults))
        self.admin_route("POST", "faults", lambda req: asdict(self.set_faults(**(req.json() or {}))))
        self.admin_route("POST", "expire-sessions", lambda req: self.expire_sessions() or {"ok": True})
        self.admin_route("POST", "age", self._admin_age)

    def _handle_admin(self, req: Request) -> Response:
        for route in self._admin_routes:
            if route.method == req.method and route.regex.fullmatch(req.path):
                try:
                    with self.lock:
                        result = route.handler(req)
                except (ValueError, TypeError, KeyError) as exc:
                    return Response(400, {"error": str(exc)})
                return result if isinstance(result, Response) else Response(200, result)
        return Response(404, {"error": f"no admin route {req.method} {req.path}"})

    def _clock_state(self) -> dict:
        return {"now": self.clock.now().isoformat(), "frozen": self.clock.frozen}

    def _admin_clock(self, req: Request) -> dict:
        body = req.json() or {}
        if "set" in body:
            self.clock.set(parse_iso(body["set"]))
        if "advance_seconds" in body:
            self.clock.advance(float(body["advance_seconds"]))
        if "frozen" in body:
            self.clock.freeze(bool(body["frozen"]))
        return self._clock_state()

    def _admin_age(self, req: Request) -> dict[str, int]:
        seconds = (req.json() or {}).get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
            raise ValueError("age takes {'seconds': n}, a whole number of seconds above 0")
        return {"aged": self.age_records(timedelta(seconds=seconds))}

    def stats_snapshot(self) -> dict:
        """Admin `GET stats`: a row per endpoint plus `total`, which also carries app-wide figures such as
        the rate limits' peaks (`total.rate_limits`). Every key besides `total` stays an endpoint row."""
        snap = self.stats.snapshot()
        peaks = self._limit_peaks()
        if peaks is not None:
            snap["total"]["rate_limits"] = peaks
        return snap

    def reset_stats(self) -> None:
        self.stats.reset()
        reset_peaks = getattr(getattr(self, "limits", None), "reset_peaks", None)
        if callable(reset_peaks):
            reset_peaks()

    def _limit_peaks(self) -> dict | None:
        """The peaks of an app's rate limits, when its `limits` report them (`peaks()`, as HubSpot's do)."""
        peaks = getattr(getattr(self, "limits", None), "peaks", None)
        return peaks() if callable(peaks) else None

    def reset_all(self) -> dict:
        """Admin reset: data, stats and faults back to a fresh start (limits and credentials stay)."""
        self.reset()
        self.reset_stats()
        with self._fault_lock:
            self.faults = FaultConfig()
            self._rng = random.Random()
        return {"ok": True}

    # ---- hooks for subclasses --------------------------------------------------------------------
    def before_request(self, req: Request, endpoint: str) -> Response | None:
        return None

    def after_request(self, req: Request, resp: Response) -> Response:
        return resp

    def not_found_response(self, req: Request) -> Response:
        return Response(404, {"message": f"no route for {req.method} {req.path}"})

    def rate_limited_response(self, req: Request) -> Response:
        return Response(429, {"message": "rate limited"}, {"Retry-After": "1"})

    def server_error_response(self, req: Request, status: int) -> Response:
        return Response(status, {"message": "internal error"})

    def expire_sessions(self) -> None:
        return None

    def reset(self) -> None:
        raise NotImplementedError

    def seed(self, payload: Any) -> Any:
        raise NotImplementedError

    def records(self, ids: set[str] | None = None) -> Any:
        """Every record (archived and deleted ones included), or only those with these ids."""
        raise NotImplementedError

    def age_records(self, by: timedelta) -> int:
        """Move every record's created and modified stamps `by` into the past, as if all of it had happened
        that much earlier (a later window read no longer holds them); answer how many records moved."""
        raise NotImplementedError


# ---- HTTP server ---------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: App, ssl_context: ssl.SSLContext | None) -> None:
        self.app = app
        self.ssl_context = ssl_context
        super().__init__(address, _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Failed TLS handshakes and peers that vanish are the client's business, not a server fault.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        # Headers and body leave as separate writes: without TCP_NODELAY, Nagle's algorithm plus the
        # client's delayed ACK adds ~40 ms to every keep-alive request.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # TLS handshake here, in the connection's own thread, so a slow client never blocks accept().
        if self.server.ssl_context is not None:
            self.request = self.server.ssl_context.wrap_socket(self.request, server_side=True)
        super().setup()

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, ssl.SSLError, TimeoutError):
            self.close_connection = True

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        req = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
        )
        try:
            resp = self.server.app.handle(req)
        except DropConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        body, content_type = resp.encode()
        self.send_response(resp.status)
        headers = {"Content-Type": content_type, **resp.headers}
        for name, value in headers.items():
            self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


@dataclass
class RunningServer:
    port: int
    url: str
    _server: _Server
    _thread: threading.Thread

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(app: App, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None) -> RunningServer:
    """Start serving `app` in a daemon thread; port 0 picks a free port."""
    server = _Server((host, port), app, ssl_context)
    bound = server.server_address[1]
    scheme = "https" if ssl_context else "http"
    thread = threading.Thread(target=server.serve_forever, name=f"sandbox-{app.name}", daemon=True)
    thread.start()
    return RunningServer(port=bound, url=f"{scheme}://{host}:{bound}", _server=server, _thread=thread)
