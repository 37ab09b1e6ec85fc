"""Which Salesforce refusals are worth retrying."""

from __future__ import annotations

from typing import Any


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
