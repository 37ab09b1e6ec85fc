"""When the event trigger fires: the queue's backlog for the event runs' group, and the rule that turns it into
DAG runs (no I/O; `crm_sync.events.trigger` reads the backlog from Redis and yields when this says so).

The trigger never takes entries itself: the event DAG's task claims and acknowledges them, so a trigger restart
loses nothing. It therefore has to remember what it has already fired for, or every poll would fire again for
entries the run it started has not claimed yet. It fires when
- entries arrived that it has not fired for (after they waited `batch_ms`, so a burst becomes one run);
- entries it fired for are still undelivered although a run has claimed since (a run took a micro-batch and
  left the rest), or nobody claimed them for `rearm_ms` (the run it started failed before claiming);
- pending entries went stale (a run that claimed them died; the next run takes them over), at most once a lease.
Redis stream ids are `<ms>-<seq>` on the Redis server's clock, and so is `now_ms` (Redis `TIME`).
"""

from __future__ import annotations

from dataclasses import dataclass


def stream_id(text: str) -> tuple[int, int]:
    """A Redis stream id as a comparable pair."""
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True)
class Backlog:
    """What the queue holds for the group: its oldest undelivered entry and newest entry (None: none), the
    group's last-delivered id, the pending entries idle past the lease, and the Redis clock."""

    oldest_undelivered: str | None
    newest: str | None
    last_delivered: str
    stale: int
    now_ms: int

    @property
    def undelivered_age_ms(self) -> int:
        if self.oldest_undelivered is None:
            return 0
        return max(0, self.now_ms - stream_id(self.oldest_undelivered)[0])


@dataclass(frozen=True)
class Decision:
    """Fire now (with the reason, for the asset event), or wait: `wait_ms` until the batch delay has passed,
    None to wait for the next entry."""

    fire: bool
    reason: str = ""
    wait_ms: int | None = None


@dataclass
class FireRule:
    """The trigger's memory of its last firing (lost on a restart, which costs one extra run at most)."""

    batch_ms: int
    rearm_ms: int
    stale_ms: int
    fired_newest: str | None = None
    fired_delivered: str | None = None
    fired_at_ms: int | None = None
    stale_fired_at_ms: int | None = None

    def decide(self, backlog: Backlog) -> Decision:
        """Whether to fire for this backlog; a firing is remembered."""
        now = backlog.now_ms
        if backlog.oldest_undelivered is not None and backlog.newest is not None:
            reason = self._undelivered_reason(backlog, backlog.newest)
            if reason:
                if backlog.undelivered_age_ms < self.batch_ms:
                    return Decision(False, wait_ms=self.batch_ms - backlog.undelivered_age_ms)
                self.fired_newest, self.fired_delivered, self.fired_at_ms = backlog.newest, backlog.last_delivered, now
                return Decision(True, reason)
        if backlog.stale and (self.stale_fired_at_ms is None or now - self.stale_fired_at_ms >= self.stale_ms):
            self.stale_fired_at_ms = now
            return Decision(True, "stale")
        return Decision(False)

    def _undelivered_reason(self, backlog: Backlog, newest: str) -> str:
        if self.fired_newest is None or stream_id(newest) > stream_id(self.fired_newest):
            return "new"
        if self.fired_delivered is not None and stream_id(backlog.last_delivered) > stream_id(self.fired_delivered):
            return "left"
        if self.fired_at_ms is not None and backlog.now_ms - self.fired_at_ms >= self.rearm_ms:
            return "unclaimed"
        return ""
