"""A `requests` transport adapter that sends every request through the shared pool.

Mount it on simple-salesforce's session (`sf.session.mount("https://", adapter)`): each send
first acquires from the pool, every response corrects the pool from its headers, and a 429
pauses the whole pool for Retry-After before the request is sent again (a 429 means the
server did not act on it, so resending is safe even for POST).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

from crm_sync.ratelimit.limits import DEFAULT_KIND
from crm_sync.ratelimit.pool import RateLimitPool


def _default_kind(_: PreparedRequest) -> str:
    return DEFAULT_KIND


class RateLimitedAdapter(HTTPAdapter):
    """Acquire before each send, observe headers after, pause the pool and resend on a 429.

    Do not give it a urllib3 `Retry` that retries 429s itself (`max_retries`): those retries
    would bypass the pool. `RateLimitWaitTooLong` from the pool propagates out of `send`.
    """

    def __init__(
        self,
        pool: RateLimitPool,
        *,
        kind_for: Callable[[PreparedRequest], str] = _default_kind,
        max_wait_seconds: float | None = None,
        max_429_retries: int = 3,
        timeout: float | tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.timeout = timeout  # for sends without their own: clients such as simple-salesforce never pass one
        self.pool = pool
        self.kind_for = kind_for
        self.max_wait_seconds = max_wait_seconds
        self.max_429_retries = max_429_retries

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:  # type: ignore[override]
        kind = self.kind_for(request)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        attempt = 0
        while True:
            self.pool.acquire(kind, max_wait_seconds=self.max_wait_seconds)
            response = super().send(request, **kwargs)
            headers: Mapping[str, str] = response.headers
            self.pool.observe_response(response.status_code, headers)
            if response.status_code != 429 or attempt >= self.max_429_retries:
                return response
            response.close()
            attempt += 1
