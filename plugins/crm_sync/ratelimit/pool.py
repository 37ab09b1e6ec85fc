"""The shared rate-limit pool: every worker, mapped task and run of one CRM account takes from it.

State lives in Redis under `crm_sync:rl:{<account>}:<limit>` and `crm_sync:rl:{<account>}:pause`
(the braces are a Redis Cluster hash tag: one account's keys share a slot, as a multi-key
script needs). Check-and-take is one Lua script timed by Redis's own clock, so workers' clock
skew does not matter. Waiting never spins: the script says how long to wait, the caller sleeps.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import redis

from crm_sync.ratelimit.backoff import parse_retry_after
from crm_sync.ratelimit.errors import RateLimitBackendError, RateLimitWaitTooLong
from crm_sync.ratelimit.headers import Observation, parse_rate_headers
from crm_sync.ratelimit.limits import DEFAULT_KIND, Limit

log = logging.getLogger(__name__)

KEY_PREFIX = "crm_sync:rl"
_SCRIPTS = files("crm_sync.ratelimit")


@dataclass(frozen=True)
class Grant:
    """A granted acquire: how long the caller slept for it and when Redis granted it (epoch s)."""

    waited_seconds: float
    server_time: float


class WaitStats:
    """Counts for the run report: acquires, how many waited, seconds waited, 429s, pauses."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.acquires = 0
        self.waited_acquires = 0
        self.wait_seconds = 0.0
        self.max_wait_seconds = 0.0
        self.too_long = 0
        self.throttled_responses = 0
        self.pauses = 0

    def record_wait(self, seconds: float, *, granted: bool) -> None:
        with self._lock:
            if granted:
                self.acquires += 1
            else:
                self.too_long += 1
            if seconds > 0:
                self.waited_acquires += 1
                self.wait_seconds += seconds
                self.max_wait_seconds = max(self.max_wait_seconds, seconds)

    def record_response(self, *, throttled: bool, paused: bool) -> None:
        with self._lock:
            self.throttled_responses += throttled
            self.pauses += paused

    def as_dict(self) -> dict[str, float | int]:
        """A JSON-ready snapshot (for XCom and the run report)."""
        with self._lock:
            return {
                "acquires": self.acquires,
                "waited_acquires": self.waited_acquires,
                "wait_seconds": round(self.wait_seconds, 3),
                "max_wait_seconds": round(self.max_wait_seconds, 3),
                "too_long": self.too_long,
                "throttled_responses": self.throttled_responses,
                "pauses": self.pauses,
            }


def _state_args(lim: Limit) -> tuple[str, int, int]:
    """How the scripts keep a limit: (state kind, window in us, bucket span in us or 0)."""
    bucket_us = round(lim.bucket_seconds * 1_000_000) if lim.bucket_seconds else 0
    return ("buckets" if bucket_us else "log", lim.effective_window_us, bucket_us)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RateLimitPool:
    """The pool of one CRM account, shared through Redis by every process that builds one.

    `account` names the CRM account (e.g. `"hubspot:<portal id or conn id>"`); pools built
    with the same account and Redis share their limits and their pause.
    """

    def __init__(
        self,
        client: redis.Redis,
        account: str,
        limits: Sequence[Limit],
        *,
        jitter_seconds: float = 0.02,
        pause_without_retry_after: float = 2.0,
        stats: WaitStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        names = [lim.name for lim in limits]
        if len(set(names)) != len(names):
            raise ValueError(f"limit names must be unique: {names}")
        if not account:
            raise ValueError("account must not be empty")
        self.account = account
        self.limits = tuple(limits)
        self.jitter_seconds = jitter_seconds
        self.pause_without_retry_after = pause_without_retry_after
        self.stats = stats or WaitStats()
        self._sleep = sleep
        self._client = client
        self._rng = rng or random.Random()
        self._kinds = {DEFAULT_KIND}.union(*(lim.kinds or () for lim in self.limits))
        self._acquire = client.register_script(_SCRIPTS.joinpath("acquire.lua").read_text())
        self._correct = client.register_script(_SCRIPTS.joinpath("correct.lua").read_text())
        self._pause = client.register_script(_SCRIPTS.joinpath("pause.lua").read_text())

    # -- keys -------------------------------------------------------------------------------
    def key(self, name: str) -> str:
        """The Redis key of one limit (or of `"pause"`)."""
        return f"{KEY_PREFIX}:{{{self.account}}}:{name}"

    def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """The script's reply as redis-py decodes it: acquire's a list, pause's the pause left (ms)."""
        try:
            return script(keys=keys, args=args)
        except redis.RedisError as exc:
            raise RateLimitBackendError(f"rate-limit pool {self.account}: Redis failed: {exc}") from exc

    def _call(self, limits: Sequence[Limit], cost: int, take: bool) -> tuple[bool, float, str, float, list[int]]:
        keys = [self.key("pause")] + [self.key(lim.name) for lim in limits]
        args: list[Any] = [uuid.uuid4().hex, cost, 1 if take else 0]
        for lim in limits:
            kind, window_us, bucket_us = _state_args(lim)
            args += [kind, lim.limit, window_us, bucket_us]
        reply = self._run(self._acquire, keys, args)
        granted, wait_us, blocking = int(reply[0]), int(reply[1]), int(reply[2])
        if blocking == -1:
            reason = f"pool paused: {_text(reply[3]) or 'no reason given'}"
        elif blocking > 0:
            reason = limits[blocking - 1].full_reason()
        else:
            reason = ""
        return (
            bool(granted),
            wait_us / 1_000_000,
            reason,
            int(reply[4]) / 1_000_000,
            [int(u) for u in reply[5:]],
        )

    # -- taking -----------------------------------------------------------------------------
    def acquire(self, kind: str = DEFAULT_KIND, *, cost: int = 1, max_wait_seconds: float | None = None) -> Grant:
        """Take `cost` requests from every limit that applies to `kind`, all or none, waiting as needed.

        Raises `RateLimitWaitTooLong` (without sleeping) when the total wait would pass
        `max_wait_seconds`, and `RateLimitBackendError` when Redis fails.
        """
        if kind not in self._kinds:
            raise ValueError(f"unknown request kind {kind!r}; known: {sorted(self._kinds)}")
        limits = [lim for lim in self.limits if lim.applies_to(kind)]
        too_big = [lim.name for lim in limits if cost > lim.limit]
        if cost < 1 or too_big:
            raise ValueError(f"cost {cost} can never be granted (limits {too_big})")
        waited = 0.0
        while True:
            granted, wait, reason, server_time, _ = self._call(limits, cost, take=True)
            if granted:
                self.stats.record_wait(waited, granted=True)
                return Grant(waited, server_time)
            if max_wait_seconds is not None and waited + wait > max_wait_seconds:
                self.stats.record_wait(waited, granted=False)
                log.info("rate-limit pool %s: wait %.1fs too long for %s (%s)", self.account, wait, kind, reason)
                raise RateLimitWaitTooLong(wait, reason)
            nap = max(wait, 0.001) + self._rng.uniform(0.0, self.jitter_seconds)
            log.debug("rate-limit pool %s: %s waits %.3fs (%s)", self.account, kind, nap, reason)
            self._sleep(nap)
            waited += nap

    def usage(self) -> dict[str, Any]:
        """Requests counted in each limit's window now, and the pause left (seconds); takes nothing."""
        _, wait, reason, _, used = self._call(self.limits, 1, take=False)
        paused = wait if reason.startswith("pool paused") else 0.0
        return {
            "used": dict(zip((lim.name for lim in self.limits), used, strict=True)),
            "paused_seconds": paused,
        }

    # -- feedback ---------------------------------------------------------------------------
    def pause_for(self, seconds: float, reason: str = "server asked to back off") -> float:
        """Pause the whole pool for `seconds` (never shortening a longer pause); returns the pause left."""
        ms = max(1, round(seconds * 1000))
        left = int(self._run(self._pause, [self.key("pause")], [ms, reason]))
        log.info("rate-limit pool %s paused %.1fs: %s", self.account, left / 1000, reason)
        return left / 1000

    def observe_headers(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        """Correct the pool from a response's rate-limit headers; only ever to slow down, except
        Salesforce's daily count, which is synced to the org-wide figure both ways."""
        for obs in parse_rate_headers(headers):
            self._apply(obs)

    def observe_response(self, status: int, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> float:
        """`observe_headers`, and on a 429 pause the pool for Retry-After (or the default pause).

        Returns the pause set in seconds (0.0 when none). Use it around hubspot-api-client calls:
        with `*_with_http_info` results, and with `ApiException.status` / `.headers`.
        """
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
        self.observe_headers(pairs)
        if status != 429:
            self.stats.record_response(throttled=False, paused=False)
            return 0.0
        retry_after = parse_retry_after(next((v for k, v in pairs if str(k).lower() == "retry-after"), None))
        seconds = retry_after if retry_after is not None else self.pause_without_retry_after
        self.stats.record_response(throttled=True, paused=seconds > 0)
        if seconds <= 0:
            return 0.0
        return self.pause_for(seconds, f"HTTP 429, retry after {seconds:.1f}s")

    def reported(self) -> dict[str, dict[str, int]]:
        """The account-wide usage and maximum last reported by the vendor, per header-fed limit (for
        budget alerts and the view: the pool's own count is shifted to the ceiling, see `_apply`)."""
        out = {}
        for lim in self.limits:
            try:
                stored = self._client.hgetall(self.key(f"{lim.name}:reported"))
            except redis.RedisError as exc:
                raise RateLimitBackendError(f"rate-limit pool {self.account}: Redis failed: {exc}") from exc
            if stored:
                out[lim.name] = {_text(key): int(value) for key, value in stored.items()}
        return out

    def _remember_reported(self, lim: Limit, used: int, maximum: int | None) -> None:
        key = self.key(f"{lim.name}:reported")
        try:
            self._client.hset(key, mapping={"used": used, "maximum": maximum or 0})
            self._client.expire(key, int(lim.window_seconds) * 2)
        except redis.RedisError as exc:
            raise RateLimitBackendError(f"rate-limit pool {self.account}: Redis failed: {exc}") from exc

    def _apply(self, obs: Observation) -> None:
        for lim in self.limits:
            if lim.header != obs.source:
                continue
            if obs.window_ms is not None and abs(obs.window_ms - lim.window_seconds * 1000) > 1:
                log.debug(
                    "rate-limit pool %s: %s window %sms does not match %s",
                    self.account,
                    obs.source,
                    obs.window_ms,
                    lim.name,
                )
                continue
            if obs.used is not None:
                self._remember_reported(lim, obs.used, obs.maximum)
                # Salesforce: org-wide usage. Shift it so that our count reaches `limit` exactly when the
                # org's usage reaches the ceiling (its maximum less the reserve, within the cap).
                target = obs.used + lim.limit - lim.ceiling(obs.maximum)
                mode = "set"
            else:
                target = lim.limit - (obs.remaining or 0)
                mode = "raise"
            target = max(0, target)
            args = [*_state_args(lim), target, mode, uuid.uuid4().hex]
            before, after = self._run(self._correct, [self.key(lim.name)], args)
            if int(before) != int(after):
                # Off-by-a-few corrections (requests in flight) happen on every response: debug only.
                big = abs(int(after) - int(before)) > max(5, lim.limit // 100)
                log.log(
                    logging.INFO if big else logging.DEBUG,
                    "rate-limit pool %s: %s corrected from %s to %s by %s",
                    self.account,
                    lim.name,
                    before,
                    after,
                    obs.source,
                )
        tracked = any(lim.header == obs.source for lim in self.limits)
        if obs.source == "hubspot-secondly" and obs.remaining == 0 and not tracked:
            self.pause_for(1.0, "HubSpot reports no requests left this second")
