"""Typed failures of the rate-limit pool, so operators can tell waiting from breaking."""

from __future__ import annotations


class RateLimitWaitTooLong(Exception):
    """The pool would make this caller wait longer than it allowed.

    Raised instead of sleeping so a long wait (pool paused, daily budget spent) does not hold
    a worker slot: the operator can defer for `wait_seconds` or end the shard for a retry.
    """

    def __init__(self, wait_seconds: float, reason: str) -> None:
        super().__init__(wait_seconds, reason)
        self.wait_seconds = wait_seconds
        self.reason = reason

    def __str__(self) -> str:
        return f"rate-limit wait of {self.wait_seconds:.1f}s exceeds the allowed wait ({self.reason})"


class RateLimitBackendError(RuntimeError):
    """Redis could not be reached or answered wrongly; no request may go out unthrottled."""
