"""The sync-state store: last-agreed snapshots per linked pair and the retry queue (SQLAlchemy Core, no Airflow).

Every write is a set-based statement whose new values are SQL expressions over the stored row, so two
runs writing the same pair or queue entry at once never lose each other's update:

- snapshots: INSERT .. ON CONFLICT (salesforce_id) DO UPDATE, merging the JSON in the database
  (PostgreSQL jsonb `||`; SQLite json_each/json_group_object, because json_patch would drop the keys
  whose agreed value is null);
- the queue: INSERT .. ON CONFLICT (target, source_id) DO UPDATE with `attempts = attempts + 1`
  evaluated against the row as committed (PostgreSQL waits for a concurrent writer's row lock and
  re-reads; SQLite holds the database write lock).

Rows are written in key order in batches, one transaction each, so concurrent writers take row locks
in the same order and cannot deadlock on PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

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
WRITE_BATCH_ROWS = 2000  # rows per transaction (and per relink DELETE)
READ_CHUNK_KEYS = 5000  # keys per IN list: well under SQLite's 32,766 bound parameters
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
    return sorted({str(value) for value in ids or ()})


def _pair_filters(salesforce_ids: Iterable[str], hubspot_ids: Iterable[str]) -> Iterator[sa.ColumnElement[bool]]:
    """IN filters on either id, chunked: 200,000 keys become 40 indexed look-ups, not one huge statement."""
    for column, ids in ((pair_snapshots.c.salesforce_id, salesforce_ids), (pair_snapshots.c.hubspot_id, hubspot_ids)):
        for chunk in _chunks(_unique_ids(ids), READ_CHUNK_KEYS):
            yield column.in_(chunk)


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
        self._insert = _INSERTS[engine.dialect.name]

    def create_schema(self) -> None:
        """Create the tables and index when missing; safe to call from many processes at once."""
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
            metadata.create_all(conn, checkfirst=True)

    # -- snapshots ----------------------------------------------------------------------------------

    def read_snapshots(self, salesforce_ids: Iterable[str] = (), hubspot_ids: Iterable[str] = ()) -> pd.DataFrame:
        """Snapshots of the pairs whose salesforce_id is in the first OR whose hubspot_id is in the second."""
        rows: list[Any] = []
        with self.engine.connect() as conn:
            for where in _pair_filters(salesforce_ids, hubspot_ids):
                rows.extend(conn.execute(self._snapshot_select().where(where)))
        frame = self._snapshot_frame(rows)
        return frame.drop_duplicates("salesforce_id", ignore_index=True)

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
        rows = _records(pairs, ["salesforce_id", "hubspot_id", "field_values"], "merge_snapshots")
        _refuse_duplicates(rows, ["salesforce_id"], "merge_snapshots")
        _refuse_duplicates(rows, ["hubspot_id"], "merge_snapshots")
        rows.sort(key=lambda row: row["salesforce_id"])
        now = _utcnow()
        for row in rows:
            row.update(synced_at=now, run_id=run_id)
        upsert = self._snapshot_upsert()
        for batch in _chunks(rows, WRITE_BATCH_ROWS):
            with self.engine.begin() as conn:
                conn.execute(self._relinked_delete(batch))
                conn.execute(upsert, list(batch))
        log.info("sync state: %d pair snapshots merged (run %s)", len(rows), run_id)
        return len(rows)

    def delete_snapshots(self, salesforce_ids: Iterable[str] = (), hubspot_ids: Iterable[str] = ()) -> int:
        """Forget pairs (unlinked or deleted contacts); returns the number of snapshots deleted."""
        deleted = 0
        with self.engine.begin() as conn:
            for where in _pair_filters(salesforce_ids, hubspot_ids):
                deleted += conn.execute(sa.delete(pair_snapshots).where(where)).rowcount
        log.info("sync state: %d pair snapshots deleted", deleted)
        return deleted

    @staticmethod
    def _snapshot_select() -> sa.Select[Any]:
        return sa.select(*(pair_snapshots.c[name] for name in SNAPSHOT_COLUMNS))

    @staticmethod
    def _snapshot_frame(rows: Sequence[Any]) -> pd.DataFrame:
        frame = pd.DataFrame.from_records(list(rows), columns=SNAPSHOT_COLUMNS)
        frame["synced_at"] = pd.to_datetime(frame["synced_at"], utc=True)
        return frame.astype({"salesforce_id": "str", "hubspot_id": "str", "field_values": "str"})

    def _relinked_delete(self, batch: Sequence[dict[str, Any]]) -> sa.Delete:
        """Pairs holding a hubspot_id of the batch with another salesforce_id (the batch's hubspot_ids are unique)."""
        return sa.delete(pair_snapshots).where(
            pair_snapshots.c.hubspot_id.in_([row["hubspot_id"] for row in batch]),
            sa.tuple_(pair_snapshots.c.hubspot_id, pair_snapshots.c.salesforce_id).not_in(
                [(row["hubspot_id"], row["salesforce_id"]) for row in batch]
            ),
        )

    def _snapshot_upsert(self) -> Any:
        stmt = self._insert(pair_snapshots)
        stored, given = pair_snapshots.c, stmt.excluded.field_values
        same_pair = stored.hubspot_id == stmt.excluded.hubspot_id
        return stmt.on_conflict_do_update(
            index_elements=[pair_snapshots.c.salesforce_id],
            set_={
                "hubspot_id": stmt.excluded.hubspot_id,
                "field_values": sa.case((same_pair, self._merged_fields(stored.field_values, given)), else_=given),
                "synced_at": stmt.excluded.synced_at,
                "run_id": stmt.excluded.run_id,
            },
        )

    def _merged_fields(self, stored: sa.ColumnElement[Any], given: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """The stored JSON object with the given keys overwritten (null values kept), as one SQL expression."""
        if self.engine.dialect.name == "postgresql":
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
        and the entry is parked once `attempts >= policy.max_attempts` (a parked entry attempted again keeps
        the longest wait, `cap_minutes`). Concurrency: INSERT .. ON CONFLICT DO UPDATE whose new attempts,
        status and due time are SQL CASE expressions over the stored row, so concurrent callers serialise
        on the row (PostgreSQL) or the database lock (SQLite) and no increment is lost.
        """
        columns = ["target", "source_id", "target_id", "action", "data_hash", "code", "message"]
        rows = _records(entries, columns, "record_attempts")
        _refuse_duplicates(rows, ["target", "source_id"], "record_attempts")
        _refuse_outside(rows, "target", TARGETS, "record_attempts")
        _refuse_outside(rows, "action", ACTIONS, "record_attempts")
        rows.sort(key=lambda row: (row["target"], row["source_id"]))
        now = _utcnow()
        first_status = PARKED if self.policy.max_attempts <= 1 else PENDING
        for row in rows:
            row.update(
                attempts=1,
                first_attempt_at=now,
                last_attempt_at=now,
                next_attempt_at=now + self.policy.delay(1),
                status=first_status,
                run_id=run_id,
            )
        upsert = self._attempt_upsert(now)
        for batch in _chunks(rows, WRITE_BATCH_ROWS):
            with self.engine.begin() as conn:
                conn.execute(upsert, list(batch))
        log.info("retry queue: %d failed writes recorded (run %s)", len(rows), run_id)

    def _attempt_upsert(self, now: datetime) -> Any:
        stmt = self._insert(retry_queue)
        stored, given = retry_queue.c, stmt.excluded
        same_data = stored.data_hash.is_not_distinct_from(given.data_hash)
        counted = stored.attempts + 1

        def at(minutes_from_now: datetime) -> sa.BindParameter[datetime]:
            return sa.bindparam(None, minutes_from_now, type_=UTCDateTime())

        limit = self.policy.max_attempts
        due_after = [(counted == n, at(now + self.policy.delay(n))) for n in range(1, limit + 1)]
        longest = now + self.policy.delay(limit + 1)
        return stmt.on_conflict_do_update(
            index_elements=[stored.target, stored.source_id],
            set_={
                "attempts": sa.case((same_data, counted), else_=1),
                "next_attempt_at": sa.case((~same_data, given.next_attempt_at), *due_after, else_=at(longest)),
                "status": sa.case((~same_data, given.status), (counted >= limit, PARKED), else_=PENDING),
                "first_attempt_at": sa.case((same_data, stored.first_attempt_at), else_=given.first_attempt_at),
                "last_attempt_at": given.last_attempt_at,
                "target_id": sa.func.coalesce(given.target_id, stored.target_id),
                "action": given.action,
                "data_hash": given.data_hash,
                "code": given.code,
                "message": given.message,
                "run_id": given.run_id,
            },
        )

    def record_outcomes(self, entries: pd.DataFrame) -> int:
        """Set the CRM's answer (code, message) on existing entries, attempts unchanged; returns rows updated."""
        rows = _records(entries, ["target", "source_id", "code", "message"], "record_outcomes")
        if not rows:
            return 0
        rows.sort(key=lambda row: (row["target"], row["source_id"]))
        params = [{f"b_{key}": value for key, value in row.items()} for row in rows]
        stmt = (
            sa.update(retry_queue)
            .where(retry_queue.c.target == sa.bindparam("b_target"))
            .where(retry_queue.c.source_id == sa.bindparam("b_source_id"))
            .values(code=sa.bindparam("b_code"), message=sa.bindparam("b_message"))
        )
        updated = 0
        for batch in _chunks(params, WRITE_BATCH_ROWS):
            with self.engine.begin() as conn:
                updated += conn.execute(stmt, list(batch)).rowcount
        return updated

    def resolve(self, keys: pd.DataFrame) -> int:
        """Drop entries that were written (or have nothing left to write); returns entries deleted."""
        rows = _records(keys, ["target", "source_id"], "resolve")
        deleted = 0
        with self.engine.begin() as conn:
            for target in sorted({row["target"] for row in rows}):
                ids = _unique_ids(row["source_id"] for row in rows if row["target"] == target)
                for chunk in _chunks(ids, READ_CHUNK_KEYS):
                    where = (retry_queue.c.target == target) & retry_queue.c.source_id.in_(chunk)
                    deleted += conn.execute(sa.delete(retry_queue).where(where)).rowcount
        log.info("retry queue: %d entries resolved", deleted)
        return deleted

    def due(self, now: datetime | None = None) -> pd.DataFrame:
        """Pending entries whose next attempt is due at `now` (default: the current time)."""
        when = now or _utcnow()
        query = (
            sa.select(retry_queue)
            .where(retry_queue.c.status == PENDING, retry_queue.c.next_attempt_at <= when)
            .order_by(retry_queue.c.next_attempt_at, retry_queue.c.target, retry_queue.c.source_id)
        )
        with self.engine.connect() as conn:
            return self._queue_frame(conn.execute(query).all())

    def entries(
        self, *, target: str | None = None, status: str | None = None, source_ids: Iterable[str] | None = None
    ) -> pd.DataFrame:
        """Entries matching every filter given (for the CLI and the UI), ordered by target and source id."""
        rows: list[Any] = []
        with self.engine.connect() as conn:
            for where in self._queue_filters(target, status, source_ids):
                rows.extend(conn.execute(sa.select(retry_queue).where(where)).all())
        frame = self._queue_frame(rows)
        return frame.sort_values(["target", "source_id"], ignore_index=True)

    def release(
        self, *, target: str | None = None, source_ids: Iterable[str] | None = None, status: str | None = None
    ) -> int:
        """Retry now: matching entries become pending, due at once, attempts back to 0; returns entries released."""
        values = {"status": PENDING, "attempts": 0, "next_attempt_at": _utcnow()}
        released = 0
        with self.engine.begin() as conn:
            for where in self._queue_filters(target, status, source_ids):
                released += conn.execute(sa.update(retry_queue).where(where).values(values)).rowcount
        log.info("retry queue: %d entries released", released)
        return released

    def clear(
        self, *, target: str | None = None, source_ids: Iterable[str] | None = None, status: str | None = None
    ) -> int:
        """Delete matching entries (all of them when no filter is given); returns entries deleted."""
        deleted = 0
        with self.engine.begin() as conn:
            for where in self._queue_filters(target, status, source_ids):
                deleted += conn.execute(sa.delete(retry_queue).where(where)).rowcount
        log.info("retry queue: %d entries cleared", deleted)
        return deleted

    def queue_size(self) -> dict[str, int]:
        """Entries per status; every status is present, 0 when none."""
        query = sa.select(retry_queue.c.status, sa.func.count()).group_by(retry_queue.c.status)
        with self.engine.connect() as conn:
            counts = dict(conn.execute(query).all())
        return {status: int(counts.get(status, 0)) for status in STATUSES}

    @staticmethod
    def _queue_filters(
        target: str | None, status: str | None, source_ids: Iterable[str] | None
    ) -> Iterator[sa.ColumnElement[bool]]:
        """WHERE clauses covering the filters, one per chunk of source ids (none given: no source filter)."""
        if target is not None and target not in TARGETS:
            raise ValueError(f"target must be one of {list(TARGETS)}, got {target!r}")
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {list(STATUSES)}, got {status!r}")
        base = sa.and_(
            sa.true(),
            *([retry_queue.c.target == target] if target is not None else []),
            *([retry_queue.c.status == status] if status is not None else []),
        )
        if source_ids is None:
            yield base
            return
        for chunk in _chunks(_unique_ids(source_ids), READ_CHUNK_KEYS):
            yield base & retry_queue.c.source_id.in_(chunk)

    @staticmethod
    def _queue_frame(rows: Sequence[Any]) -> pd.DataFrame:
        frame = pd.DataFrame.from_records(list(rows), columns=QUEUE_COLUMNS)
        for column in ("first_attempt_at", "last_attempt_at", "next_attempt_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        text = [name for name in QUEUE_COLUMNS if name not in {"attempts"} and not name.endswith("_at")]
        return frame.astype({"attempts": "int64", **dict.fromkeys(text, "str")})
