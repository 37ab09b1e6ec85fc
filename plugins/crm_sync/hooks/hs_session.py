"""The HubSpot hook's connection and hubspot-api-client, and the one request path every call takes.

Connection (CONTRACT.md): conn type http, password = private app token, host = API base URL (default
https://api.hubapi.com); extras `requests_per_10s` and `search_requests_per_s` size the shared pool.

Every call goes through `_request`: take from the Redis pool (search calls as kind "search", which also counts
against the 10-second limit), send through the generated client with `_preload_content=False` (raw JSON and the
response headers, no model round-trip), feed the X-HubSpot-RateLimit-* headers back, pause the whole pool on a
429, and retry transient failures through the shared base's single tenacity layer (`hooks/base.py`): call,
classify (`hs_errors`), raise. The client's own urllib3 retries are off, so each attempt is one send, counted
once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import cached_property
from typing import Any

import urllib3
from airflow.sdk import BaseHook
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException
from hubspot.crm.properties import ApiException as PropertiesApiException

from crm_sync.hooks.base import ContactsHookMixin
from crm_sync.hooks.hs_errors import classify, pool_pause
from crm_sync.hooks.pools import DEFAULT_REDIS_CONN_ID
from crm_sync.hooks.retry import RetryPolicy
from crm_sync.ratelimit import DEFAULT_KIND, SEARCH_KIND, Limit, RateLimitPool, hubspot_limits
from crm_sync.settings import DEFAULTS
from include.sync_logic.sides import Side

DEFAULT_HOST = "https://api.hubapi.com"


class HubSpotSession(ContactsHookMixin, BaseHook):
    """A HubSpot connection's client and request path (the contacts hook's base).

    :param hubspot_conn_id: the HubSpot connection.
    :param retry_policy: backoff for transient failures.
    :param redis_conn_id: the Redis holding the shared rate-limit pool.
    :param max_wait_seconds: longest wait for the pool before `RateLimitWaitTooLong` (None: no cap).
    :param pool: the rate-limit pool, instead of the connection's shared one (tests, benchmarks).
    :param request_timeout: (connect, read) seconds for every request.
    :param chunk_rows: rows per yielded frame when iterating contacts.
    """

    side = Side.HUBSPOT
    conn_name_attr = "hubspot_conn_id"
    default_conn_name = DEFAULTS.hubspot_conn_id
    conn_type = "http"

    def __init__(
        self,
        hubspot_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        redis_conn_id: str = DEFAULT_REDIS_CONN_ID,
        max_wait_seconds: float | None = None,
        pool: RateLimitPool | None = None,
        request_timeout: tuple[float, float] = (10.0, 60.0),
        chunk_rows: int = 5000,
    ) -> None:
        super().__init__()
        self.hubspot_conn_id = hubspot_conn_id
        self.init_contacts_hook(
            retry_policy=retry_policy, redis_conn_id=redis_conn_id, max_wait_seconds=max_wait_seconds, pool=pool
        )
        self.request_timeout = request_timeout
        self.chunk_rows = chunk_rows
        self.search_calls = 0

    # -- connection and client ------------------------------------------------------------------

    @property
    def connection_id(self) -> str:
        return self.hubspot_conn_id

    def pool_limits(self) -> list[Limit]:
        return hubspot_limits(self._extras)

    def probe(self) -> None:
        self._request("list", lambda: self._contacts.basic_api.get_page(limit=1, _preload_content=False))

    @property
    def host(self) -> str:
        host = (self._connection.host or "").rstrip("/")
        if not host:
            return DEFAULT_HOST
        if "://" not in host:
            host = f"https://{host}"
        port = self._connection.port
        if port and host.count(":") < 2:
            host = f"{host}:{port}"
        return host

    @cached_property
    def client(self) -> HubSpot:
        token = self._connection.password
        if not token:
            raise ValueError(f"connection {self.hubspot_conn_id}: set the private app token as password")
        options: dict[str, Any] = {}
        ca_bundle = self._extras.get("ca_bundle") or os.environ.get("REQUESTS_CA_BUNDLE")
        if ca_bundle:
            options["ssl_ca_cert"] = ca_bundle
        # urllib3 retries off: every retry must pass through the pool.
        return HubSpot(access_token=token, host=self.host, retry=urllib3.Retry(total=0, redirect=0), **options)

    def get_conn(self) -> HubSpot:
        return self.client

    @property
    def _contacts(self) -> Any:
        """The client's contacts APIs (`search_api`, `basic_api`, `batch_api`)."""
        return self.client.crm.contacts

    # -- the one request path -------------------------------------------------------------------

    def _request(
        self, what: str, send: Callable[[], Any], *, kind: str = DEFAULT_KIND, idempotent: bool = True
    ) -> tuple[int, Any]:
        """(status, parsed JSON body) of one call, throttled, observed and retried when transient.
        `idempotent=False` (a merge, a property create): not sent again once it may have been applied."""

        def attempt() -> tuple[int, Any]:
            self.rate_limit_pool.acquire(kind, max_wait_seconds=self.max_wait_seconds)
            self.api_calls += 1
            self.search_calls += kind == SEARCH_KIND
            try:
                response = send()
            except (ApiException, PropertiesApiException, urllib3.exceptions.HTTPError) as exc:
                error = classify(exc, idempotent=idempotent)
                if isinstance(exc, ApiException | PropertiesApiException) and exc.status:
                    self._observe_refusal(exc, error)
                raise error from exc
            self.rate_limit_pool.observe_response(response.status, response.headers)
            data = response.data
            return response.status, json.loads(data) if data else None

        return self.with_retry(what, attempt)

    def _observe_refusal(self, exc: ApiException | PropertiesApiException, error: Exception) -> None:
        """A refusal's rate-limit headers into the pool (a Retry-After pauses it); a 429 that names no wait pauses
        the pool for its limit's window, the one place such a wait is honoured: the next attempt's acquire waits it
        out, or defers the task when it is too long."""
        self.rate_limit_pool.observe_response(int(exc.status), exc.headers or {})
        pause = pool_pause(exc)
        if pause is not None:
            self.rate_limit_pool.pause_for(pause, f"HubSpot {error}")
