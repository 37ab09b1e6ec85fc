"""Salesforce's failures sorted into the shared classes (`errors`): pure functions of what was raised or answered.

Transient: 429 and 5xx (with the Retry-After the answer named), 403 REQUEST_LIMIT_EXCEEDED for the
concurrent-request limit, timeouts and dropped connections, and a session that expired again right after a new
login (sessions revoked org-wide mid-call: nothing was applied). Every request the sync sends is idempotent
(upserts on the link, updates and deletes by Id, reads, a Bulk job read by its id), so each may be sent again.
Permanent (`SalesforceApiError`): any other refusal simple-salesforce raises, with Salesforce's errorCode and the
last line of its message (the lines before echo the query, so emails). Left as raised (None): an untrusted
certificate and refused credentials, which no retry heals and whose own exceptions say why, and anything that is
no answer of Salesforce's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)

from crm_sync.hooks.errors import CrmApiError, TransientError
from crm_sync.ratelimit.backoff import parse_retry_after
from include.sync_logic.sides import Side

REASON_CHARS = 200


class SalesforceApiError(CrmApiError):
    """A permanent Salesforce refusal; its text names the reason (the last line of Salesforce's message)."""

    side = Side.SALESFORCE


def classify(exc: Exception) -> TransientError | SalesforceApiError | None:
    """What `exc`, raised by a Salesforce call, is; None: raise it as it is."""
    if isinstance(exc, requests.exceptions.SSLError | SalesforceAuthenticationFailed):
        return None
    if isinstance(exc, requests.ConnectTimeout):
        return TransientError("connect timeout")
    if isinstance(exc, requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError):
        return TransientError(type(exc).__name__)
    if isinstance(exc, SalesforceExpiredSession):
        return TransientError("session expired again after a new login", status=401)
    if isinstance(exc, SalesforceRefusedRequest) and concurrency_limited(exc.content):
        return TransientError("REQUEST_LIMIT_EXCEEDED (concurrent requests)", status=403)
    if isinstance(exc, SalesforceGeneralError) and (exc.status == 429 or exc.status >= 500):
        return TransientError(f"HTTP {exc.status}", status=exc.status)
    if isinstance(exc, SalesforceError):
        content: Any = exc.content  # Salesforce's parsed JSON errors (simple-salesforce types it as bytes)
        first: Any = content[0] if isinstance(content, list) and content else {}
        first = first if isinstance(first, dict) else {}
        lines = [line.strip() for line in str(first.get("message", "")).splitlines() if line.strip()]
        reason = lines[-1][:REASON_CHARS] if lines else ""
        return SalesforceApiError(exc.status, first.get("errorCode"), reason, detail=reason)
    return None


def classify_answer(status: int, headers: Mapping[str, str], content: Any = None) -> TransientError | None:
    """A transient HTTP answer: 429 or 5xx, with the Retry-After a 429 or 503 names, or the concurrent-request
    limit in `content` (the parsed body); None for any other answer. Read on every response, before
    simple-salesforce turns the answer into an exception without its headers."""
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(headers.get("Retry-After")) if status in (429, 503) else None
        return TransientError(f"HTTP {status}", status=status, retry_after=retry_after)
    if concurrency_limited(content):
        return TransientError("REQUEST_LIMIT_EXCEEDED (concurrent requests)", status=status)
    return None


def concurrency_limited(content: Any) -> bool:
    """403 REQUEST_LIMIT_EXCEEDED is transient for the concurrent-request limit (ConcurrentPerOrgLongTxn),
    not for the org's spent daily budget (TotalRequests), which only time resets."""
    errors = content if isinstance(content, list) else []
    return any(
        isinstance(e, dict)
        and e.get("errorCode") == "REQUEST_LIMIT_EXCEEDED"
        and "TotalRequests" not in str(e.get("message", ""))
        for e in errors
    )
