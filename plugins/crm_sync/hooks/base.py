"""What the two contact hooks share: connection extras, the rate-limit pool, the one retry layer, refs,
batching loops, result logging, the run report's API counters and `test_connection`.

A mixin rather than a `BaseHook` subclass, so the Salesforce hook keeps the provider's `SalesforceHook`
as its base. A hook using it sets `side`, implements `connection_id`, `pool_limits` and `probe`, and
calls `init_contacts_hook` in `__init__`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from crm_sync.hooks.contacts import LookupKey
from crm_sync.hooks.pools import DEFAULT_REDIS_CONN_ID, build_pool, max_wait_from
from crm_sync.hooks.results import RecordResult, written_without
from crm_sync.hooks.retry import RetryPolicy, call_with_retry
from crm_sync.ratelimit import Limit, RateLimitPool
from include.sync_logic.sides import Side

if TYPE_CHECKING:
    from airflow.sdk import Connection

T = TypeVar("T")
R = TypeVar("R")  # one record of a write, as the CRM's API takes it


class ContactsHookMixin:
    """Connection, pool, retry and per-record bookkeeping common to both CRMs' contact hooks."""

    side: ClassVar[Side]  # the pool's key prefix, the log prefix and the report's counter prefix
    secondary_emails: ClassVar[str | None] = None  # see `ContactsHook.secondary_emails`
    own_id_field: ClassVar[str]  # the field holding the CRM's own record id
    email_field: ClassVar[str]  # the contact's (primary) email
    log: Any  # the hook's logger, from Airflow's LoggingMixin (structlog's in a task, logging's elsewhere)

    if TYPE_CHECKING:

        @classmethod
        def get_connection(cls, conn_id: str) -> Connection: ...  # BaseHook's, the hook's other base

    def init_contacts_hook(
        self,
        *,
        retry_policy: RetryPolicy | None,
        redis_conn_id: str = DEFAULT_REDIS_CONN_ID,
        max_wait_seconds: float | None = None,
        pool: RateLimitPool | None = None,
    ) -> None:
        """The shared settings; call from the hook's `__init__`."""
        self.retry_policy = retry_policy or RetryPolicy()
        self.redis_conn_id = redis_conn_id
        self._max_wait_seconds = max_wait_seconds
        self._pool = pool
        self.api_calls = 0

    # -- what each hook supplies ------------------------------------------------------------------

    @property
    def connection_id(self) -> str:
        """The Airflow connection id of this CRM."""
        raise NotImplementedError

    def pool_limits(self) -> Sequence[Limit]:
        """The limits of this CRM account, sized from the connection extras."""
        raise NotImplementedError

    def probe(self) -> None:
        """One cheap authenticated call, for `test_connection`."""
        raise NotImplementedError

    # -- connection and pool ----------------------------------------------------------------------

    @cached_property
    def _connection(self) -> Connection:
        return self.get_connection(self.connection_id)

    @cached_property
    def _extras(self) -> dict[str, Any]:
        extras: dict[str, Any] = self._connection.extra_dejson
        return extras

    @property
    def max_wait_seconds(self) -> float:
        """Longest wait for the pool before `RateLimitWaitTooLong` (argument, else connection extra)."""
        return max_wait_from(self._max_wait_seconds, self._extras)

    @cached_property
    def rate_limit_pool(self) -> RateLimitPool:
        """The account's pool shared by every worker and run, on the Redis of `redis_conn_id`."""
        if self._pool is not None:
            return self._pool
        return build_pool(self.side, self.connection_id, self.pool_limits(), self.redis_conn_id)

    def api_stats(self) -> dict[str, int | float]:
        """This hook's request count and its pool's waits, keys prefixed by the side, for the run report."""
        pool = self.rate_limit_pool.stats.as_dict()
        return {
            f"{self.side}_api_calls": self.api_calls,
            **{f"{self.side}_rate_limit_{key}": value for key, value in pool.items()},
        }

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.probe()
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return True, "Connection successfully tested"

    def lookup_field(self, key: LookupKey, link_field: str | None) -> str:
        """The field a look-up by `key` matches: the own id, the email, or the link field (the counterpart's id)."""
        if key is LookupKey.COUNTERPART_ID:
            if not link_field:
                raise ValueError("a look-up by counterpart id needs the link field")
            return link_field
        return self.own_id_field if key is LookupKey.OWN_ID else self.email_field

    # -- calls and results ------------------------------------------------------------------------

    def with_retry(self, what: str, attempt: Callable[[], T]) -> T:
        """Run one call under the hook's retry policy: the only retry layer of that call."""
        return call_with_retry(attempt, policy=self.retry_policy, what=f"{self.side} {what}")

    def write_in_batches(
        self, what: str, total: int, size: int, write: Callable[[slice], list[RecordResult]]
    ) -> list[RecordResult]:
        """Call `write` for each `size`-long slice of `total` inputs; log and return all results."""
        results: list[RecordResult] = []
        for start in range(0, total, size):
            results.extend(write(slice(start, min(start + size, total))))
        self.log_results(what, results)
        return results

    def resend_without_refused(
        self,
        what: str,
        records: Sequence[R],
        results: list[RecordResult],
        trimmed: Callable[[RecordResult, R], R | None],
        send: Callable[[list[int], list[R]], list[RecordResult]],
    ) -> list[RecordResult]:
        """Records refused for values of fields they carry, sent once more without them (`trimmed`: the record
        without those fields, None when it is not to be sent again) through `send(positions, records)`, so their
        other fields are written and the refusal stays on their result (as reconcile rejects a refused value alone;
        updates only: a create is refused whole)."""
        again = [
            (index, trim)
            for index, (record, result) in enumerate(zip(records, results, strict=True))
            if (trim := trimmed(result, record)) is not None
        ]
        if not again:
            return results
        self.log.info("%s %s: %d records sent again without their refused fields", self.side.label, what, len(again))
        retried = send([index for index, _ in again], [trim for _, trim in again])
        for (index, _), result in zip(again, retried, strict=True):
            results[index] = written_without(result, results[index])
        return results

    def log_results(self, what: str, results: Sequence[RecordResult]) -> None:
        """Counts and the CRM's error codes, never values (messages may echo emails); a record written without
        the fields the CRM refused counts as ok and its refusal's code is listed."""
        codes = Counter(r.error_code or "UNKNOWN" for r in results if not r.ok or r.refused_fields)
        failed = sum(not r.ok for r in results)
        self.log.info(
            "%s %s: %d records, %d ok, %d failed, %d written without refused fields, %d permanent refusals%s",
            self.side,
            what,
            len(results),
            len(results) - failed,
            failed,
            sum(r.ok and bool(r.refused_fields) for r in results),
            sum(r.permanent for r in results),
            f" ({', '.join(f'{code} {n}' for code, n in codes.most_common())})" if codes else "",
        )


def parallel_refs(items: Sequence[Any], refs: Sequence[str]) -> list[str]:
    """The caller's reference per input, checked to be parallel to `items`."""
    if len(refs) != len(items):
        raise ValueError("refs must be parallel to the inputs")
    return [str(ref) for ref in refs]
