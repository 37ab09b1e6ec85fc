"""Delivers webhook events the way HubSpot does: signed POSTs of up to 100 events from background threads,
retried with backoff, in no guaranteed order, and (with faults) dropped, duplicated or late.

Sources (HubSpot developer docs):
- "Validating requests from HubSpot": X-HubSpot-Signature-v3 = base64(HMAC-SHA256(client secret, method +
  URI + body + timestamp)) with X-HubSpot-Request-Timestamp in epoch ms; receivers refuse timestamps older
  than 5 minutes; a few %-escapes in the URI are decoded before signing (URI_DECODES). Requests also carry
  the older X-HubSpot-Signature (v1: hex SHA-256 of secret + body) with X-HubSpot-Signature-Version v1,
  "for backwards compatibility". Checked against the known-answer vector of HubSpot's Python SDK tests.
- "Webhooks API", Retries: a request is failed when the connection fails, when the answer takes longer than
  five seconds, or on any 4xx/5xx; failed notifications are retried up to 10 times "spread out over the
  next 24 hours", individually and with randomised delays (so retries join later requests: no order).
  `retry_time_scale` compresses the 24 hours for tests. attemptNumber counts tries from 0.
- Settings: "a concurrency limit of 10 requests" in flight; "each request can contain up to 100 events";
  HubSpot "does not guarantee" order or single delivery.

The request timestamp is real time (receivers compare it with their own clock); occurredAt is the sandbox
clock, the same instant as the record's lastmodifieddate.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import itertools
import json
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

from sandbox.hubspot.webhooks import Change, WebhookConfig, events_for

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0
MAX_RETRIES = 10
RETRY_WINDOW_SECONDS = 24 * 3600
RETRY_JITTER = 0.2  # each retry's delay varies by up to ±20%
USER_AGENT = "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon-executor (sandbox)"
# Escapes HubSpot decodes in the request URI before signing v3 ("Validating requests from HubSpot").
URI_DECODES = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
STAT_KEYS = ("emitted", "dropped", "duplicated", "requests", "sent", "delivered", "failed", "retried", "gave_up")


def signed_uri(url: str) -> str:
    """The URI as HubSpot signs it: the target URL with the documented escapes decoded (either case)."""
    for escaped, plain in URI_DECODES.items():
        url = url.replace(escaped, plain).replace(escaped.lower(), plain)
    return url


def signature_v3(client_secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    source = method.encode() + signed_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(client_secret.encode(), source, hashlib.sha256).digest()).decode()


def retry_delay(attempt: int, scale: float, rng: random.Random) -> float:
    """Seconds before retry `attempt` (1..10): doubling delays that add up to 24 hours, jittered, scaled."""
    base = RETRY_WINDOW_SECONDS / (2**MAX_RETRIES - 1)
    return base * 2 ** (attempt - 1) * rng.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER) * scale


@dataclass(order=True)
class _Pending:
    due: float  # time.monotonic() from which it may be sent
    seq: int
    event: dict[str, Any] = field(compare=False)
    attempt: int = field(default=0, compare=False)


class WebhookSender:
    """Queues the events of contact changes and sends them from a scheduler thread (one short-lived thread
    per request, at most `max_concurrent` at once). Thread-safe; `emit` never blocks on the network."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._config: WebhookConfig | None = None
        self._rng = random.Random(0)
        self._waiting: list[_Pending] = []  # heap by due time
        self._ready: list[_Pending] = []  # due, in the order they became due
        self._ready_since: float | None = None  # when the oldest ready event became due
        self._in_flight_requests = 0
        self._in_flight_events = 0
        self._seq = itertools.count()
        self._event_ids = itertools.count(1)
        self._generation = 0  # bumped by clear(): answers to older requests are ignored
        self._stats: Counter[str] = Counter()
        self._largest_batch = 0
        self._stopped = False
        self._thread: threading.Thread | None = None

    # ---- control ---------------------------------------------------------------------------------
    def configure(self, config: WebhookConfig | None) -> None:
        """Apply settings (None turns webhooks off; queued events wait for new settings)."""
        with self._cond:
            self._config = config
            if config is not None:
                self._rng = random.Random(config.seed)
                if self._thread is None:
                    self._thread = threading.Thread(target=self._schedule, name="hubspot-webhooks", daemon=True)
                    self._thread.start()
            self._cond.notify_all()

    @property
    def config(self) -> WebhookConfig | None:
        return self._config

    def clear(self) -> None:
        """Forget queued events and counters (the admin reset); settings stay."""
        with self._cond:
            self._generation += 1
            self._waiting, self._ready, self._ready_since = [], [], None
            self._in_flight_events = 0
            self._stats.clear()
            self._largest_batch = 0
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT_SECONDS + 1)

    def stats(self) -> dict[str, int]:
        """Counts per event delivery. At rest: emitted - dropped + duplicated == delivered + gave_up + pending."""
        with self._cond:
            stats = {key: self._stats[key] for key in STAT_KEYS}
            stats["pending"] = len(self._waiting) + len(self._ready) + self._in_flight_events
            stats["in_flight_requests"] = self._in_flight_requests
            stats["largest_batch"] = self._largest_batch
            return stats

    # ---- producing -------------------------------------------------------------------------------
    def emit(self, change: Change) -> None:
        """Queue the events of one change, applying the drop and duplicate faults (seeded, per event)."""
        with self._cond:
            config = self._config
            if config is None:
                return
            faults, now = config.faults, time.monotonic()
            due = now + faults.delay_ms / 1000
            for event in events_for(config, change, lambda: next(self._event_ids)):
                self._stats["emitted"] += 1
                dropped, duplicated = self._rng.random() < faults.drop, self._rng.random() < faults.duplicate
                if dropped:
                    self._stats["dropped"] += 1
                    continue
                self._push(_Pending(due, next(self._seq), event))
                if duplicated:  # the copy comes later, so it rides in another request
                    self._stats["duplicated"] += 1
                    self._push(_Pending(due + config.batch_wait_ms / 1000 + 0.05, next(self._seq), event))
            self._cond.notify_all()

    def _push(self, pending: _Pending) -> None:
        heapq.heappush(self._waiting, pending)

    # ---- scheduling ------------------------------------------------------------------------------
    def _schedule(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
                if batch is None:
                    return
                config, generation = self._config, self._generation
                assert config is not None
                self._in_flight_requests += 1
                self._in_flight_events += len(batch)
                self._largest_batch = max(self._largest_batch, len(batch))
            threading.Thread(target=self._deliver, args=(batch, config, generation), daemon=True).start()

    def _next_batch(self) -> list[_Pending] | None:
        """Wait (holding the condition) until a request is due: a full batch, or the oldest due event has
        waited `batch_wait_ms`, and a concurrency slot is free. None once stopped."""
        while not self._stopped:
            config, now = self._config, time.monotonic()
            while self._waiting and self._waiting[0].due <= now:
                self._ready.append(heapq.heappop(self._waiting))
                if self._ready_since is None:
                    self._ready_since = now
            timeout: float | None = self._waiting[0].due - now if self._waiting else None
            if config is not None and self._ready and self._in_flight_requests < config.max_concurrent:
                assert self._ready_since is not None
                flush_at = self._ready_since + config.batch_wait_ms / 1000
                if len(self._ready) >= config.max_batch or now >= flush_at:
                    return self._take(config)
                timeout = min(timeout, flush_at - now) if timeout is not None else flush_at - now
            self._cond.wait(timeout)
        return None

    def _take(self, config: WebhookConfig) -> list[_Pending]:
        if config.faults.reorder:
            self._rng.shuffle(self._ready)
        batch, self._ready = self._ready[: config.max_batch], self._ready[config.max_batch :]
        if not self._ready:
            self._ready_since = None  # else the rest is as old as the batch and goes next
        return batch

    # ---- delivering ------------------------------------------------------------------------------
    def _deliver(self, batch: list[_Pending], config: WebhookConfig, generation: int) -> None:
        body = json.dumps([{**p.event, "attemptNumber": p.attempt} for p in batch], separators=(",", ":")).encode()
        started = time.monotonic()
        outcome = self._post(config, body)
        ok = outcome.isdigit() and 200 <= int(outcome) < 300 and time.monotonic() - started <= TIMEOUT_SECONDS
        with self._cond:
            self._in_flight_requests -= 1
            if generation == self._generation:
                self._settle(batch, config, ok)
            self._cond.notify_all()
        log.info(
            "webhook request: %d events (event ids %s..%s), attempt(s) %s, answer %s, %.0f ms",
            len(batch),
            batch[0].event["eventId"],
            batch[-1].event["eventId"],
            sorted({p.attempt for p in batch}),
            outcome,
            (time.monotonic() - started) * 1000,
        )

    def _post(self, config: WebhookConfig, body: bytes) -> str:
        """POST one signed request; the answer's status code, or the name of the failure."""
        timestamp = str(int(time.time() * 1000))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-HubSpot-Signature-v3": signature_v3(config.client_secret, "POST", config.target_url, body, timestamp),
            "X-HubSpot-Request-Timestamp": timestamp,
            "X-HubSpot-Signature": hashlib.sha256(config.client_secret.encode() + body).hexdigest(),
            "X-HubSpot-Signature-Version": "v1",
        }
        with requests.Session() as session:
            session.trust_env = False  # proxies from the environment must not sit between sandbox and receiver
            try:
                resp = session.post(
                    config.target_url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False
                )
            except requests.RequestException as exc:
                return type(exc).__name__
        return str(resp.status_code)

    def _settle(self, batch: list[_Pending], config: WebhookConfig, ok: bool) -> None:
        self._in_flight_events -= len(batch)
        self._stats["requests"] += 1
        self._stats["sent"] += len(batch)
        if ok:
            self._stats["delivered"] += len(batch)
            return
        self._stats["failed"] += len(batch)
        now = time.monotonic()
        for pending in batch:
            if pending.attempt >= MAX_RETRIES:
                self._stats["gave_up"] += 1
                continue
            self._stats["retried"] += 1
            delay = retry_delay(pending.attempt + 1, config.retry_time_scale, self._rng)
            self._push(_Pending(now + delay, next(self._seq), pending.event, pending.attempt + 1))
