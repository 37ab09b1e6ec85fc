"""The sync-state store: last-agreed snapshots per linked pair and the retry queue (SQLAlchemy Core, no Airflow).

Every write is a set-based statement whose new values are SQL expressions over the stored row, so two
runs writing the same pair or queue entry at once never lose each other's update:

- snapshots: INSERT .. ON CONFLICT (salesforce_id) DO UPDATE, merging the JSON in the database
  (PostgreSQL jsonb `||`; SQLite json_each/json_group_object, because json_patch would drop the keys
  whose agreed value is null);
- the queue: INSERT .. ON CONFLICT (target, source_id) DO UPDATE with `attempts = attempts + 1`
  evaluated against the row as committed (PostgreSQL waits for a concurrent writer's row lock and
  re-reads; SQLite holds the database write lock).

Rows are written in key order in batches, one short transaction each, so concurrent upserts of
overlapping pairs take their row locks in the same order (no deadlock between them on PostgreSQL).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from crm_sync.state.batch import key_in, rows_table
from crm_sync.state.policy import RetryPolicy
from crm_sync.state.schema import (
    ACTIONS,
    JSON_OBJECT_TEXT,
    PARKED,
    PENDING,
    STATUSES,
    TARGETS,
    UTCDateTime,
    metadata,
    pair_snapshots,
    retry_queue,
)

log = logging.getLogger(__name__)

SNAPSHOT_COLUMNS = ["salesforce_id", "hubspot_id", "field_values", "synced_at"]
QUEUE_COLUMNS = [column.name for column in retry_queue.columns]
WRITE_BATCH_ROWS = 5000  # rows per statement and transaction: short row locks, one round trip each
_SCHEMA_LOCK_KEY = 0x63726D73  # PostgreSQL advisory lock serialising create_schema across processes

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _records(frame: pd.DataFrame, columns: Sequence[str], what: str) -> list[dict[str, Any]]:
    """The frame's rows as dicts of plain Python values (missing values as None), columns checked."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing columns {missing}")
    values = [frame[column].astype(object).where(frame[column].notna(), None).tolist() for column in columns]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def _refuse_duplicates(rows: list[dict[str, Any]], key: Sequence[str], what: str) -> None:
    """One statement may not touch a row twice (PostgreSQL refuses it; the outcome would be order-dependent)."""
    seen = {tuple(row[column] for column in key) for row in rows}
    if len(seen) != len(rows):
        raise ValueError(f"{what}: {len(rows) - len(seen)} duplicate keys on {list(key)}")


def _refuse_outside(rows: list[dict[str, Any]], column: str, allowed: Sequence[str], what: str) -> None:
    wrong = sorted({str(row[column]) for row in rows} - set(allowed))
    if wrong:
        raise ValueError(f"{what}: {column} must be one of {list(allowed)}, got {wrong}")


def _unique_ids(ids: Iterable[str] | None) -> list[str]:
    return sorted({str(value) for value in (() if ids is None else ids)})


def _bind(value: Any, type_: sa.types.TypeEngine[Any]) -> sa.BindParameter[Any]:
    """A value shared by every row of a batch, bound once."""
    return sa.bindparam(None, value, type_=type_)


class SyncStateStore:
    """The sync state in one SQL database (PostgreSQL in deployment, SQLite for the local demo).

    :param engine: a SQLAlchemy engine (see `crm_sync.state.engine.create_state_engine`).
    :param policy: the retry queue's backoff and parking rule.
    """

    def __init__(self, engine: sa.Engine, policy: RetryPolicy = RetryPolicy()) -> None:  # noqa: B008 (frozen)
        if engine.dialect.name not in _INSERTS:
            raise ValueError(f"the sync state needs PostgreSQL or SQLite, not {engine.dialect.name}")
        self.engine = engine
        self.policy = policy
        self._dialect = engine.dialect.name
        self._insert = _INSERTS[self._dialect]

    def create_schema(self) -> None:
        """Create the tables and index when missing; safe to call from many processes at once."""
        with self.engine.begin() as conn:
            if self._dialect == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
            metadata.create_all(conn, checkfirst=True)

    # -- snapshots ----------------------------------------------------------------------------------

    def read_snapshots(self, salesforce_ids: Iterable[str] = (), hubspot_ids: Iterable[str] = ()) -> pd.DataFrame:
        """Snapshots of the pairs whose salesforce_id is in the first OR whose hubspot_id is in the second.

        Each id list is one bound parameter joined on its index (any number of keys, one round trip).
        """
        stored = pair_snapshots.c
        rows: list[Any] = []
        with self.engine.connect() as conn:
            for column, ids in ((stored.salesforce_id, salesforce_ids), (stored.hubspot_id, hubspot_ids)):
                keys = _unique_ids(ids)
                if keys:
                    rows.extend(conn.execute(self._snapshot_select().where(key_in(self._dialect, column, keys))))
        return self._snapshot_frame(rows).drop_duplicates("salesforce_id", ignore_index=True)

    def pair_count(self) -> int:
        """How many pairs the state holds: a lower bound on each CRM's contacts (one indexed count)."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(pair_snapshots)).scalar_one())

    def read_all_snapshots(self) -> pd.DataFrame:
        """Every snapshot (a full resync)."""
        with self.engine.connect() as conn:
            return self._snapshot_frame(conn.execute(self._snapshot_select()).all())

    def merge_snapshots(self, pairs: pd.DataFrame, *, run_id: str) -> int:
        """Record what both CRMs now agree on; returns the number of pairs written.

        `pairs` has `salesforce_id`, `hubspot_id` and `field_values` (JSON object text: canonical
        field name -> canonical value string or null). The given fields overwrite the stored ones and
        the stored fields not given are kept, in one statement per batch (never read-modify-write), so
        two runs confirming different fields of one pair both land. A pair whose ids changed (a relink)
        starts from the given fields alone: another pair holding the hubspot_id is deleted first, and a
        stored pair with the same salesforce_id but another hubspot_id gets the given fields only.
        """
        columns = ["salesforce_id", "hubspot_id", "field_values"]
        rows = _records(pairs, columns, "merge_snapshots")
        _refuse_duplicates(rows, ["salesforce_id"], "merge_snapshots")
        _refuse_duplicates(rows, ["hubspot_id"], "merge_snapshots")
        rows.sort(key=lambda row: row["salesforce_id"])
        now = _utcnow()
        for batch in _chunks(rows, WRITE_BATCH_ROWS):
            given = rows_table(self._dialect, columns, batch)
            with self.engine.begin() as conn:
                conn.execute(self._relinked_delete(given))
                conn.execute(self._snapshot_upsert(given, now, run_id))
        log.info("sync state: %d pair snapshots merged (run %s)", len(rows), run_id)
        return len(rows)

    def delete_snapshots(self, salesforce_ids: Iterable[str] = (), hubspot_ids: Iterable[str] = ()) -> int:
        """Forget pairs (unlinked or deleted contacts); returns the number of snapshots deleted."""
        stored = pair_snapshots.c
        deleted = 0
        with self.engine.begin() as conn:
            for column, ids in ((stored.salesforce_id, salesforce_ids), (stored.hubspot_id, hubspot_ids)):
                keys = _unique_ids(ids)
                if keys:
                    where = key_in(self._dialect, column, keys)
                    deleted += conn.execute(sa.delete(pair_snapshots).where(where)).rowcount
        log.info("sync state: %d pair snapshots deleted", deleted)
        return deleted

    @staticmethod
    def _snapshot_select() -> sa.Select[Any]:
        return sa.select(*(pair_snapshots.c[name] for name in SNAPSHOT_COLUMNS))

    @staticmethod
    def _snapshot_frame(rows: Sequence[Any]) -> pd.DataFrame:
        frame = pd.DataFrame.from_records([tuple(row) for row in rows], columns=SNAPSHOT_COLUMNS)
        frame["synced_at"] = pd.to_datetime(frame["synced_at"], utc=True)
        return frame.astype({"salesforce_id": "str", "hubspot_id": "str", "field_values": "str"})

    @staticmethod
    def _relinked_delete(given: sa.FromClause) -> sa.Delete:
        """Pairs holding a given hubspot_id with another salesforce_id: the contact was linked anew.

        IN over subqueries, not a correlated EXISTS: both databases build the batch's key set once.
        """
        stored = pair_snapshots.c
        return sa.delete(pair_snapshots).where(
            stored.hubspot_id.in_(sa.select(given.c.hubspot_id)),
            sa.tuple_(stored.hubspot_id, stored.salesforce_id).not_in(
                sa.select(given.c.hubspot_id, given.c.salesforce_id)
            ),
        )

    def _snapshot_upsert(self, given: sa.FromClause, now: datetime, run_id: str) -> Any:
        rows = sa.select(
            given.c.salesforce_id,
            given.c.hubspot_id,
            sa.cast(given.c.field_values, JSON_OBJECT_TEXT),
            _bind(now, UTCDateTime()),
            _bind(run_id, sa.String()),
        ).where(sa.true())  # SQLite would read `ON CONFLICT` after a bare FROM as a join constraint
        stmt = self._insert(pair_snapshots).from_select(
            ["salesforce_id", "hubspot_id", "field_values", "synced_at", "run_id"], rows
        )
        stored, excluded = pair_snapshots.c, stmt.excluded
        merged = self._merged_fields(stored.field_values, excluded.field_values)
        return stmt.on_conflict_do_update(
            index_elements=[stored.salesforce_id],
            set_={
                "hubspot_id": excluded.hubspot_id,
                "field_values": sa.case(
                    (stored.hubspot_id == excluded.hubspot_id, merged), else_=excluded.field_values
                ),
                "synced_at": excluded.synced_at,
                "run_id": excluded.run_id,
            },
        )

    def _merged_fields(self, stored: sa.ColumnElement[Any], given: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """The stored JSON object with the given keys overwritten (null values kept), as one SQL expression."""
        if self._dialect == "postgresql":
            return stored.op("||", return_type=JSON_OBJECT_TEXT)(given)
        old = sa.func.json_each(stored).table_valued("key", "value").alias("stored_fields")
        new = sa.func.json_each(given).table_valued("key", "value").alias("given_fields")
        new_keys = sa.func.json_each(given).table_valued("key").alias("given_keys")
        kept = sa.select(old.c.key, old.c.value).where(old.c.key.not_in(sa.select(new_keys.c.key)))
        fields = sa.union_all(kept, sa.select(new.c.key, new.c.value)).subquery("fields")
        return sa.select(sa.func.json_group_object(fields.c.key, fields.c.value)).scalar_subquery()

    # -- retry queue ----------------------------------------------------------------------------------

    def record_attempts(self, entries: pd.DataFrame, *, run_id: str) -> None:
        """Count a failed or refused write per entry and schedule its next attempt.

        A new entry starts at 1 attempt; an entry whose `data_hash` is unchanged counts one more; one whose
        data changed starts again at 1, pending. The next attempt is due `policy.delay(attempts)` from now
        and the entry is parked once `attempts >= policy.max_attempts` (a parked entry attempted again waits
        the last of `policy.steps()`; only `release` makes it due). Concurrency: one
        INSERT .. ON CONFLICT DO UPDATE per batch whose attempts, status and due time are SQL CASE
        expressions over the stored row, so concurrent callers serialise on the row (PostgreSQL re-reads
        it after the other writer commits) or on the database lock (SQLite), and no increment is lost.
        """
        columns = ["target", "source_id", "target_id", "action", "data_hash", "code", "message"]
        rows = _records(entries, columns, "record_attempts")
        _refuse_duplicates(rows, ["target", "source_id"], "record_attempts")
        _refuse_outside(rows, "target", TARGETS, "record_attempts")
        _refuse_outside(rows, "action", ACTIONS, "record_attempts")
        rows.sort(key=lambda row: (row["target"], row["source_id"]))
        now = _utcnow()
        for batch in _chunks(rows, WRITE_BATCH_ROWS):
            with self.engine.begin() as conn:
                conn.execute(self._attempt_upsert(rows_table(self._dialect, columns, batch), now, run_id))
        log.info("retry queue: %d failed writes recorded (run %s)", len(rows), run_id)

    def _attempt_upsert(self, given: sa.FromClause, now: datetime, run_id: str) -> Any:
        limit = self.policy.max_attempts
        due = [_bind(now + wait, UTCDateTime()) for wait in self.policy.steps()]

        new_entry = {
            **{column.name: column for column in given.c},
            "attempts": sa.literal(1),
            "first_attempt_at": _bind(now, UTCDateTime()),
            "last_attempt_at": _bind(now, UTCDateTime()),
            "next_attempt_at": due[0],
            "status": sa.literal(PARKED if limit <= 1 else PENDING),
            "run_id": _bind(run_id, sa.String()),
        }
        rows = sa.select(*new_entry.values()).where(sa.true())  # see _snapshot_upsert
        stmt = self._insert(retry_queue).from_select(list(new_entry), rows)
        stored, excluded = retry_queue.c, stmt.excluded
        same_data = stored.data_hash.is_not_distinct_from(excluded.data_hash)
        counted = stored.attempts + 1
        return stmt.on_conflict_do_update(
            index_elements=[stored.target, stored.source_id],
            set_={
                "attempts": sa.case((same_data, counted), else_=1),
                "next_attempt_at": sa.case(
                    (~same_data, excluded.next_attempt_at),
                    *((counted == attempts, at) for attempts, at in enumerate(due[:-1], start=1)),
                    else_=due[-1],
                ),
                "status": sa.case((~same_data, excluded.status), (counted >= limit, PARKED), else_=PENDING),
                "first_attempt_at": sa.case((same_data, stored.first_attempt_at), else_=excluded.first_attempt_at),
                "last_attempt_at": excluded.last_attempt_at,
                "target_id": sa.func.coalesce(excluded.target_id, stored.target_id),
                "action": excluded.action,
                "data_hash": excluded.data_hash,
                "code": excluded.code,
                "message": excluded.message,
                "run_id": excluded.run_id,
            },
        )

    def record_outcomes(self, entries: pd.DataFrame) -> int:
        """Set the CRM's answer (code, message) on existing entries, attempts unchanged; returns rows updated."""
        columns = ["target", "source_id", "code", "message"]
        rows = _records(entries, columns, "record_outcomes")
        _refuse_duplicates(rows, ["target", "source_id"], "record_outcomes")
        rows.sort(key=lambda row: (row["target"], row["source_id"]))
        updated = 0
        for batch in _chunks(rows, WRITE_BATCH_ROWS):
            given = rows_table(self._dialect, columns, batch)
            stmt = (
                sa.update(retry_queue)
                .where(retry_queue.c.target == given.c.target, retry_queue.c.source_id == given.c.source_id)
                .values(code=given.c.code, message=given.c.message)
            )
            with self.engine.begin() as conn:
                updated += conn.execute(stmt).rowcount
        return updated

    def resolve(self, keys: pd.DataFrame) -> int:
        """Drop entries that were written (or have nothing left to write); returns entries deleted."""
        rows = _records(keys, ["target", "source_id"], "resolve")
        deleted = 0
        with self.engine.begin() as conn:
            for batch in _chunks(rows, WRITE_BATCH_ROWS):
                given = rows_table(self._dialect, ["target", "source_id"], batch)
                written = sa.tuple_(retry_queue.c.target, retry_queue.c.source_id).in_(
                    sa.select(given.c.target, given.c.source_id)
                )
                deleted += conn.execute(sa.delete(retry_queue).where(written)).rowcount
        log.info("retry queue: %d entries resolved", deleted)
        return deleted

    def due(self, now: datetime | None = None) -> pd.DataFrame:
        """Pending entries whose next attempt is due at `now` (default: the current time), oldest first."""
        query = (
            sa.select(retry_queue)
            .where(retry_queue.c.status == PENDING, retry_queue.c.next_attempt_at <= (now or _utcnow()))
            .order_by(retry_queue.c.next_attempt_at, retry_queue.c.target, retry_queue.c.source_id)
        )
        with self.engine.connect() as conn:
            return self._queue_frame(conn.execute(query).all())

    def entries(
        self, *, target: str | None = None, status: str | None = None, source_ids: Iterable[str] | None = None
    ) -> pd.DataFrame:
        """Entries matching every filter given (for the CLI and the UI), ordered by target and source id."""
        query = sa.select(retry_queue).where(self._queue_filter(target, status, source_ids))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(retry_queue.c.target, retry_queue.c.source_id)).all()
        return self._queue_frame(rows)

    def release(
        self, *, target: str | None = None, source_ids: Iterable[str] | None = None, status: str | None = None
    ) -> int:
        """Retry now: matching entries become pending, due at once, attempts back to 0; returns entries released."""
        stmt = (
            sa.update(retry_queue)
            .where(self._queue_filter(target, status, source_ids))
            .values(status=PENDING, attempts=0, next_attempt_at=_utcnow())
        )
        with self.engine.begin() as conn:
            released = conn.execute(stmt).rowcount
        log.info("retry queue: %d entries released", released)
        return released

    def clear(
        self, *, target: str | None = None, source_ids: Iterable[str] | None = None, status: str | None = None
    ) -> int:
        """Delete matching entries (all of them when no filter is given); returns entries deleted."""
        with self.engine.begin() as conn:
            deleted = conn.execute(
                sa.delete(retry_queue).where(self._queue_filter(target, status, source_ids))
            ).rowcount
        log.info("retry queue: %d entries cleared", deleted)
        return deleted

    def queue_size(self) -> dict[str, int]:
        """Entries per status; every status is present, 0 when none."""
        query = sa.select(retry_queue.c.status, sa.func.count()).group_by(retry_queue.c.status)
        with self.engine.connect() as conn:
            counts = dict(conn.execute(query).all())
        return {status: int(counts.get(status, 0)) for status in STATUSES}

    def _queue_filter(
        self, target: str | None, status: str | None, source_ids: Iterable[str] | None
    ) -> sa.ColumnElement[bool]:
        """Every filter given, ANDed (source_ids None: any source; empty: none)."""
        if target is not None and target not in TARGETS:
            raise ValueError(f"target must be one of {list(TARGETS)}, got {target!r}")
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {list(STATUSES)}, got {status!r}")
        clauses = [sa.true()]
        if target is not None:
            clauses.append(retry_queue.c.target == target)
        if status is not None:
            clauses.append(retry_queue.c.status == status)
        if source_ids is not None:
            clauses.append(key_in(self._dialect, retry_queue.c.source_id, _unique_ids(source_ids)))
        return sa.and_(*clauses)

    @staticmethod
    def _queue_frame(rows: Sequence[Any]) -> pd.DataFrame:
        frame = pd.DataFrame.from_records([tuple(row) for row in rows], columns=QUEUE_COLUMNS)
        for column in ("first_attempt_at", "last_attempt_at", "next_attempt_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        text = [name for name in QUEUE_COLUMNS if name != "attempts" and not name.endswith("_at")]
        return frame.astype({"attempts": "int64", **dict.fromkeys(text, "str")})
