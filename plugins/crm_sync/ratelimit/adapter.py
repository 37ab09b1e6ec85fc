"""A `requests` transport adapter that sends every request through the shared pool.

Mount it on simple-salesforce's session (`sf.session.mount("https://", adapter)`): each send
first acquires from the pool, and every response corrects the pool from its headers; a 429
pauses the whole pool for Retry-After, so every worker holds back. It never resends: retrying
belongs to the caller's one retry layer (the hook's policy), which counts each send once.
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
    """Acquire before each send, observe headers (and a 429's pause) after.

    Do not give it a urllib3 `Retry` (`max_retries`): its resends would bypass the pool and the
    caller's attempt count. `RateLimitWaitTooLong` from the pool propagates out of `send`.
    """

    def __init__(
        self,
        pool: RateLimitPool,
        *,
        kind_for: Callable[[PreparedRequest], str] = _default_kind,
        max_wait_seconds: float | None = None,
        timeout: float | tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.timeout = timeout  # for sends without their own: clients such as simple-salesforce never pass one
        self.pool = pool
        self.kind_for = kind_for
        self.max_wait_seconds = max_wait_seconds

    def send(
        self,
        request: PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float | None, float | None] | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        proxies: dict[str, str] | None = None,
    ) -> Response:
        """HTTPAdapter.send's own signature: the pool's grant first, the adapter's timeout when none is given."""
        self.pool.acquire(self.kind_for(request), max_wait_seconds=self.max_wait_seconds)
        response = super().send(
            request,
            stream=stream,
            timeout=self.timeout if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )
        headers: Mapping[str, str] = response.headers
        self.pool.observe_response(response.status_code, headers)
        return response
