"""HubSpot's webhook endpoint: the FastAPI app the plugin mounts at `/crm-sync-events` on the api-server.

The only route of the plugin open without an Airflow login: HubSpot cannot log in, so the request's v3
signature is the authentication. `POST /hubspot` refuses with 401, before reading any event, a request
without a valid signature (`forged`), outside the 5-minute window (`stale`), lacking the headers
(`missing`) or repeating a signature already used (`replayed`); a body over the limit gets 413. A verified
delivery's events are queued (`ContactEventQueue`) and the answer is 204, well within HubSpot's 5 s: the
work runs against a deadline, and a delivery that misses it or finds Redis down gets 503, which HubSpot
retries (the queue drops what a late first try already queued). Events that are ignored or malformed are
counted and logged (ids and reasons, never property values) without failing the delivery: HubSpot would
retry a 4xx for a day to no end. Every outcome is counted (`webhook_counts`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import anyio
import redis
from airflow.sdk.exceptions import AirflowNotFoundException
from fastapi import FastAPI, Request, Response

from crm_sync.events import queue_names, webhook_counts
from crm_sync.events.hubspot_payload import MalformedDelivery, ParsedDelivery, parse_delivery
from crm_sync.events.queue import AddResult, ContactEventQueue
from crm_sync.events.signature import WINDOW_MS, verify
from crm_sync.events.webhook_settings import WEBHOOK_CONN_ID, CachedWebhookSettings, WebhookSettings

log = logging.getLogger(__name__)

DEADLINE_SECONDS = 3.0  # HubSpot counts an answer after 5 s as a failure
REPLAY_KEY_PREFIX = "crm_sync:webhook:replay:"
SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"

T = TypeVar("T")


class WebhookEndpoint:
    """The endpoint's state in one api-server worker: its settings (cached) and its Redis client."""

    def __init__(self, conn_id: str, redis_conn_id: str) -> None:
        self.settings = CachedWebhookSettings(conn_id)
        self.redis_conn_id = redis_conn_id
        self._queue: ContactEventQueue | None = None

    @property
    def queue(self) -> ContactEventQueue:
        if self._queue is None:
            from crm_sync.events.queue import contact_event_queue

            self._queue = contact_event_queue(self.redis_conn_id)
        return self._queue

    @property
    def client(self) -> redis.Redis:
        return self.queue.client

    def refuse(self, reason: str, status: int, detail: str) -> Response:
        webhook_counts.record(self.client, {reason: 1})
        log.warning("HubSpot webhook refused (%s): %s", reason, detail)
        return Response(status_code=status)

    def first_use(self, signature: str) -> bool:
        """Whether this signature is new; it is remembered for as long as it could pass the window."""
        return bool(self.client.set(REPLAY_KEY_PREFIX + signature, 1, nx=True, px=2 * WINDOW_MS))

    def accept(self, body: bytes, signature: str, settings: WebhookSettings) -> Response:
        """Replay check, parse, queue, count: the Redis work of a verified delivery."""
        if not self.first_use(signature):
            return self.refuse(webhook_counts.REPLAYED, 401, "a signature already used")
        try:
            parsed = parse_delivery(json.loads(body), settings.portal_id)
        except (MalformedDelivery, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            return self.refuse(webhook_counts.MALFORMED, 400, f"signed body is not a delivery: {exc}")
        added = self.queue.add_counted(parsed.events)
        webhook_counts.record(self.client, _counts(parsed, added))
        _log_skipped(parsed)
        log.info(
            "HubSpot webhook: %d events, %d queued, %d repeated, %d ignored, %d rejected",
            len(parsed.events) + len(parsed.ignored) + len(parsed.rejected),
            added.added,
            added.duplicates,
            len(parsed.ignored),
            len(parsed.rejected),
        )
        return Response(status_code=204)


def _counts(parsed: ParsedDelivery, added: AddResult) -> dict[str, int]:
    return {
        webhook_counts.ACCEPTED: 1,
        webhook_counts.EVENTS_QUEUED: added.added,
        webhook_counts.EVENTS_DUPLICATE: added.duplicates,
        webhook_counts.EVENTS_TRIMMED: added.trimmed,
        webhook_counts.EVENTS_IGNORED: len(parsed.ignored),
        webhook_counts.EVENTS_REJECTED: len(parsed.rejected),
    }


def _log_skipped(parsed: ParsedDelivery) -> None:
    for skipped in parsed.rejected:
        log.warning(
            "HubSpot webhook event #%d rejected: %s (eventId %s, objectId %s)",
            skipped.index,
            skipped.reason,
            skipped.event_id,
            skipped.object_id,
        )
    for skipped in parsed.ignored:
        log.debug("HubSpot webhook event #%d ignored: %s", skipped.index, skipped.reason)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The raw body (what HubSpot signed), or None once it exceeds `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def signed_url(request: Request, settings: WebhookSettings) -> str:
    """The URL HubSpot called: the configured target URL (plus the query sent), else the request's own."""
    if settings.target_url is None:
        return str(request.url)
    query = request.url.query
    return settings.target_url + (f"?{query}" if query else "")


async def _in_thread(work: Callable[[], T]) -> T:
    """Blocking work (Redis, the connection lookup) off the event loop. Abandoned when the deadline cancels
    it: the thread finishes on its own, and a late enqueue is harmless (the retry's events are repeats)."""
    return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)


async def _answer(endpoint: WebhookEndpoint, request: Request) -> Response:
    settings = await _in_thread(endpoint.settings.get)
    body = await _read_body(request, settings.max_body_bytes)
    if body is None:
        detail = f"body over {settings.max_body_bytes} bytes"
        return await _in_thread(partial(endpoint.refuse, webhook_counts.TOO_LARGE, 413, detail))
    signature = request.headers.get(SIGNATURE_HEADER)
    verdict = verify(
        settings.client_secret,
        request.method,
        signed_url(request, settings),
        body,
        signature,
        request.headers.get(TIMESTAMP_HEADER),
        int(time.time() * 1000),
    )
    if verdict.refusal is not None or not signature:
        detail = f"age {verdict.age_ms} ms, from {request.client.host if request.client else '?'}"
        return await _in_thread(partial(endpoint.refuse, str(verdict.refusal), 401, detail))
    return await _in_thread(partial(endpoint.accept, body, signature, settings))


def create_app(conn_id: str = WEBHOOK_CONN_ID, redis_conn_id: str = queue_names.REDIS_CONN_ID) -> FastAPI:
    """The endpoint's app; the connection ids say where its secret and its Redis are."""
    endpoint = WebhookEndpoint(conn_id, redis_conn_id)
    app = FastAPI(title="CRM sync events", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/hubspot")
    async def hubspot(request: Request) -> Response:
        try:
            with anyio.move_on_after(DEADLINE_SECONDS):
                return await _answer(endpoint, request)
        except (redis.RedisError, OSError, ValueError, AirflowNotFoundException) as exc:
            return _unavailable(f"{type(exc).__name__}: {exc}")
        return _unavailable(f"the answer missed the {DEADLINE_SECONDS:.0f} s deadline")

    return app


def _unavailable(detail: str) -> Response:
    """503: HubSpot retries the delivery. Counted in StatsD only (Redis may be what failed)."""
    log.error("HubSpot webhook not taken, HubSpot will retry: %s", detail)
    webhook_counts.send_stats({webhook_counts.UNAVAILABLE: 1})
    return Response(status_code=503, headers={"Retry-After": "60"})


app = create_app()
