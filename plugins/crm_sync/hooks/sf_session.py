"""The Salesforce hook's connection, token and client, and the one request path every call takes.

It subclasses the provider's `SalesforceHook` (same conn type and connection id) but authenticates itself,
because simple-salesforce only logs in to `*.salesforce.com`: the token comes from
`{login_url}/services/oauth2/token` (see `sf_auth`) and the client is built from the instance URL and access
token, on a requests session that carries the shared rate-limit adapter. TLS is always verified; a private CA
is trusted through REQUESTS_CA_BUNDLE.

Every request runs through `_call`, under the shared base's tenacity policy, the only retry layer (the
rate-limit adapter never resends): call, classify (`sf_errors`), raise. Transient failures are retried with
backoff, an expired session (401 INVALID_SESSION_ID) is re-authenticated once, permanent errors fail the task.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from typing import Any, TypeVar, cast

import requests
from airflow.providers.salesforce.hooks.salesforce import SalesforceHook
from simple_salesforce.api import DEFAULT_API_VERSION, Salesforce
from simple_salesforce.bulk2 import _Bulk2Client
from simple_salesforce.exceptions import SalesforceExpiredSession

from crm_sync.hooks.base import ContactsHookMixin
from crm_sync.hooks.errors import TransientError
from crm_sync.hooks.pools import DEFAULT_REDIS_CONN_ID
from crm_sync.hooks.retry import RetryPolicy
from crm_sync.hooks.sf_auth import SalesforceCredentials, fetch_token
from crm_sync.hooks.sf_bulk import DONE_STATES, BulkJobFailed, poll_intervals
from crm_sync.hooks.sf_errors import classify, classify_answer
from crm_sync.ratelimit import Limit, RateLimitedAdapter, RateLimitPool, salesforce_limits
from include.sync_logic.sides import Side

T = TypeVar("T")

DUPLICATE_RULE_HEADER = "Sforce-Duplicate-Rule-Header"  # REST API 52.0+; Bulk API jobs ignore it


class SalesforceSession(ContactsHookMixin, SalesforceHook):
    """A Salesforce connection's authenticated client and request path (the contacts hook's base).

    :param salesforce_conn_id: a `salesforce` connection (see CONTRACT.md for the flows and extras).
    :param chunk_rows: rows per yielded frame when iterating contacts.
    :param bulk_threshold: above this many matching contacts a window is read with a Bulk API 2.0
        query job; defaults to the connection extra `bulk_threshold`, else 10,000.
    :param retry_policy: backoff for transient failures.
    :param bulk_poll_seconds: first wait before polling a Bulk API job (later waits grow).
    :param bulk_timeout_seconds: how long to poll a Bulk API job before giving up on it.
    :param request_timeout: (connect, read) seconds for every request.
    :param redis_conn_id: the Redis holding the shared rate-limit pool.
    :param max_wait_seconds: longest wait for the pool before `RateLimitWaitTooLong` (None: no cap).
    :param pool: the rate-limit pool, instead of the connection's shared one (tests, benchmarks).
    """

    side = Side.SALESFORCE

    def __init__(
        self,
        salesforce_conn_id: str = SalesforceHook.default_conn_name,
        *,
        chunk_rows: int = 5000,
        bulk_threshold: int | None = None,
        retry_policy: RetryPolicy | None = None,
        bulk_poll_seconds: float = 1.0,
        bulk_timeout_seconds: float = 3600.0,
        request_timeout: tuple[float, float] = (10.0, 120.0),
        redis_conn_id: str = DEFAULT_REDIS_CONN_ID,
        max_wait_seconds: float | None = None,
        pool: RateLimitPool | None = None,
    ) -> None:
        super().__init__(salesforce_conn_id=salesforce_conn_id)
        self.init_contacts_hook(
            retry_policy=retry_policy, redis_conn_id=redis_conn_id, max_wait_seconds=max_wait_seconds, pool=pool
        )
        self.chunk_rows = chunk_rows
        self._bulk_threshold = bulk_threshold
        self.bulk_poll_seconds = bulk_poll_seconds
        self.bulk_timeout_seconds = bulk_timeout_seconds
        self.request_timeout = request_timeout
        self.reauthentications = 0

    # -- what the shared base needs ---------------------------------------------------------------

    @property
    def connection_id(self) -> str:
        return self.conn_id

    def pool_limits(self) -> list[Limit]:
        """The org's daily API budget (see `salesforce_limits` for the extras)."""
        return salesforce_limits(self._extras)

    def probe(self) -> None:
        self._call("limits", lambda sf: sf.limits())

    def api_stats(self) -> dict[str, int | float]:
        """The shared counters and the sessions renewed after INVALID_SESSION_ID."""
        return {**super().api_stats(), "salesforce_reauthentications": self.reauthentications}

    # -- connection extras --------------------------------------------------------------------------

    @cached_property
    def _credentials(self) -> SalesforceCredentials:
        connection = self._connection
        return SalesforceCredentials.from_connection(connection.login, connection.password, self._extras)

    @property
    def api_version(self) -> str:
        return str(self._extras.get("version") or DEFAULT_API_VERSION)

    @property
    def duplicate_rule_header(self) -> dict[str, str]:
        """The REST writes' Sforce-Duplicate-Rule-Header from the connection extra `duplicate_rule_allow_save`
        (default false, as Salesforce's: an alert-only duplicate rule then blocks the save)."""
        allow = str(self._extras.get("duplicate_rule_allow_save", "false")).strip().lower() in ("true", "1", "yes")
        return {DUPLICATE_RULE_HEADER: f"allowSave={'true' if allow else 'false'}"}

    @property
    def bulk_threshold(self) -> int:
        if self._bulk_threshold is not None:
            return self._bulk_threshold
        from include.sync_logic.plan import SALESFORCE_BULK_THRESHOLD

        return int(self._extras.get("bulk_threshold") or SALESFORCE_BULK_THRESHOLD)

    # -- session, token, client ---------------------------------------------------------------------

    @cached_property
    def http_session(self) -> requests.Session:
        """The one session every Salesforce request uses (token, REST, Bulk): the throttling point."""
        session = requests.Session()
        session.mount(
            "https://",
            RateLimitedAdapter(
                self.rate_limit_pool, max_wait_seconds=self.max_wait_seconds, timeout=self.request_timeout
            ),
        )
        session.hooks["response"].append(self._on_response)
        return session

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Count every answer; raise a transient one here, where its Retry-After is still at hand (the exception
        simple-salesforce makes of it carries no headers)."""
        self.api_calls += 1
        error = classify_answer(response.status_code, response.headers)
        if error is not None:
            response.close()
            raise error

    @cached_property
    def conn(self) -> Salesforce:
        """The client on a fresh token (no retry here: `get_conn` and every method go through `_call`)."""
        token = fetch_token(self.http_session, self._credentials, timeout=self.request_timeout[1])
        self.log.info("Salesforce: authenticated (%s flow)", self._credentials.flow)
        return Salesforce(
            instance_url=token.instance_url,
            session_id=token.access_token,
            version=self.api_version,
            session=self.http_session,
        )

    def get_conn(self) -> Salesforce:
        """The authenticated simple-salesforce client (the token request retried when transient)."""
        return self._call("login", lambda sf: sf)

    def _reauthenticate(self) -> None:
        self.__dict__.pop("conn", None)
        self.reauthentications += 1
        self.log.info("Salesforce: session expired, re-authenticating")
        _ = self.conn

    # -- the one request path -------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[Salesforce], T]) -> T:
        """Run `fn(client)` under the retry policy: call, classify (`sf_errors`), raise."""

        def attempt() -> T:
            try:
                return self._in_session(fn)
            except Exception as exc:
                error = classify(exc)
                if error is None:
                    raise
                # A permanent error leaves simple-salesforce's text behind: it holds the URL and the echoed query.
                raise error from (exc if isinstance(error, TransientError) else None)

        return self.with_retry(what, attempt)

    def _in_session(self, fn: Callable[[Salesforce], T]) -> T:
        """`fn(client)`, once more on a new session when the session expired (one that expires again at once is
        transient: the retry logs in anew)."""
        try:
            return fn(self.conn)
        except SalesforceExpiredSession:
            self._reauthenticate()
            return fn(self.conn)

    # -- Bulk API 2.0 jobs (reads and writes) ------------------------------------------------------

    def _wait_for_job(self, job_id: str, *, is_query: bool) -> None:
        """Poll the job by id until it is done, waits growing from `bulk_poll_seconds`; each poll is one
        retried request through the pool, so a 5xx or an expired session costs a poll, not the job."""
        waited, polls = 0.0, 0
        for wait in poll_intervals(self.bulk_poll_seconds):
            time.sleep(wait)
            waited += wait
            polls += 1
            info = self._call("bulk poll", lambda sf: bulk_client(sf).get_job(job_id, is_query))
            state = info["state"]
            if state in DONE_STATES:
                break
            if waited > self.bulk_timeout_seconds:
                raise TimeoutError(f"Salesforce bulk job {job_id} still {state} after {waited:.0f}s")
        self.log.info("Salesforce: bulk job %s %s after %d polls (%.1fs)", job_id, state, polls, waited)
        if state != "JobComplete":
            raise BulkJobFailed(job_id, state, info.get("errorMessage"))


def bulk_client(sf: Salesforce) -> _Bulk2Client:
    """simple-salesforce's Bulk API 2.0 client for Contact: one request per method, no hidden retries."""
    handler: Any = sf.bulk2  # its sObjects are attributes, which its types do not follow
    return cast("_Bulk2Client", handler.Contact._client)
