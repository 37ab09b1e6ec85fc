"""Salesforce's change feed where the org has no Change Data Capture: a high-water-mark poll feeding the event queue.

Change Data Capture arrives over the Pub/Sub API (gRPC), out of reach here (no sandbox of it), so the event path
asks Salesforce every `poll_seconds` for the contacts whose `SystemModstamp` is at or after the mark: one SOQL
queryAll (`POLL_FIELDS`: ids, modstamp, deleted, master; plus the fields the event run's echo digests cover, so a
row our own write left is known for an echo at no extra call) through the Salesforce hook, so it goes through
the shared Redis rate-limit pool and counts against the org's daily budget like every other call.

Budget: one call a poll while fewer than a page (2,000) of contacts changed since the last one, so a quiet org
pays 86,400 / poll_seconds calls a day: 2,880 at 30 s, 1,440 at 60 s, against an Enterprise org's 100,000
(+1,000 a licence) shared by every integration. The interval is `[crm_sync] events_salesforce_poll_seconds`.

The mark (`include.sync_logic.high_water_mark`) lives in Redis beside the queue, so a restarted triggerer resumes
where the last poll stopped. Events are queued before the mark moves: a poll that dies in between reads its rows
again, and the queue drops the repeated event ids.

Salesforce stamps whole seconds, so a row whose second was not over when the poll asked is queued again by the
next poll (see the mark's module). Whether a second is over is judged on this host's clock, read before the query
and taken `clock_skew` back (the most it may run ahead of Salesforce's; the hook does not hand on the answer's
`Date`): the cost is one more event for each contact edited in the last `1 s + clock_skew` before a poll.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from include.sync_logic.high_water_mark import POLL_FIELDS, PollMark, news_since

if TYPE_CHECKING:
    from redis import Redis

    from crm_sync.hooks.contacts import ContactsHook
    from include.sync_logic.events import ContactEvent

DEFAULT_POLL_SECONDS = 30.0
"""2,880 calls a day; 60 s halves that and doubles the mean Salesforce latency (half an interval)."""
FIRST_LOOKBACK = timedelta(minutes=1)
"""A first poll (no mark in Redis) starts this far back: changes made just before the feed started are news."""
CLOCK_SKEW = timedelta(seconds=2)
"""How far this clock may run ahead of Salesforce's (NTP keeps it well under) plus a save's lag behind its stamp."""
MARK_KEY_PREFIX = "crm_sync:sf_poll:mark:"
"""`<prefix><salesforce conn id>`: the mark as JSON (`PollMark.to_json`)."""
_HORIZON = timedelta(days=3650)  # the query's upper bound: none, in effect, whatever the org's clock says

log = logging.getLogger(__name__)


class SalesforceChangePoll:
    """One Salesforce connection's poll: `poll(enqueue)` reads what changed since the mark and queues it."""

    def __init__(
        self,
        hook: ContactsHook,
        redis: Redis,
        *,
        conn_id: str,
        first_lookback: timedelta = FIRST_LOOKBACK,
        clock_skew: timedelta = CLOCK_SKEW,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.hook = hook
        self.redis = redis
        self.key = MARK_KEY_PREFIX + conn_id
        self.first_lookback = first_lookback
        self.clock_skew = clock_skew
        self.now = now

    def mark(self) -> PollMark:
        """The stored mark, or a first one `first_lookback` before now."""
        stored = self.redis.get(self.key)
        if stored is None:
            return PollMark.starting_at(self.now() - self.first_lookback)
        return PollMark.from_json(json.loads(stored))

    def poll(self, enqueue: Callable[[Sequence[ContactEvent]], object]) -> list[ContactEvent]:
        """Read the changes since the mark, queue them, then move the mark; returns the events queued."""
        import pandas as pd

        from crm_sync.events.echo_ledger import EchoLedger

        mark = self.mark()
        row_fields = EchoLedger(self.redis).row_fields()
        select = list(dict.fromkeys([*POLL_FIELDS, *row_fields]))
        calls = self.hook.api_calls
        polled_at = self.now()  # before the query: the org it reads is no older than this
        frames = list(
            self.hook.iter_changed_contacts(select, mark.second, mark.second + _HORIZON, include_deleted=True)
        )
        rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=select)
        outcome = news_since(rows, mark, polled_at=polled_at, clock_skew=self.clock_skew, row_fields=row_fields)
        if outcome.events:
            enqueue(outcome.events)
        self.redis.set(self.key, json.dumps(outcome.mark.to_json()))
        log.info(
            "Salesforce poll from %s: %d rows read, %d new events (%s), %d in a second not over (queued again next"
            " poll), %d API calls; mark now %s",
            mark.second.isoformat(),
            len(rows),
            len(outcome.events),
            ", ".join(f"{kind} {n}" for kind, n in _kinds(outcome.events).items()) or "none",
            outcome.still_open,
            self.hook.api_calls - calls,
            outcome.mark.second.isoformat(),
        )
        return outcome.events


def _kinds(events: Sequence[ContactEvent]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in events:
        counts[str(event.kind)] = counts.get(str(event.kind), 0) + 1
    return counts
