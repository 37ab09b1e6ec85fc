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
PostgreSQL resolves ON CONFLICT only on its arbiter key: two writers of the same pair can still make the
other unique key (hubspot_id) refuse one of them. That batch's transaction holds no partial effect and
merging the same fields again gives the same row, so it is run again (`_PAIR_RACE_ATTEMPTS`).

A run takes the due queue entries it will write with `claim_due`: one UPDATE .. RETURNING that leases them
to the run's try (PostgreSQL picks the rows with FOR UPDATE SKIP LOCKED; on SQLite the statement holds the
database write lock), so two runs never take the same entry.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from tenacity import RetryCallState, retry, retry_if_exception, stop_after_attempt, wait_random

from crm_sync.state.batch import key_in, rows_table
from crm_sync.state.policy import RetryPolicy
from crm_sync.state.schema import (
    ACTIONS,
    ADDED_COLUMNS,
    JSON_OBJECT_TEXT,
    PARKED,
    PENDING,
    STATUSES,
    TARGETS,
    UTCDateTime,
    metadata,
    pair_snapshots,
    retry_queue,
    tombstones,
)
from crm_sync.state.tombstones import TombstoneRecords

log = logging.getLogger(__name__)

LEASE_EXPIRED_CODE = "LEASE_EXPIRED"

SNAPSHOT_COLUMNS = ["salesforce_id", "hubspot_id", "field_values", "synced_at"]
QUEUE_COLUMNS = [column.name for column in retry_queue.columns]
WRITE_BATCH_ROWS = 5000  # rows per statement and transaction: short row locks, one round trip each
_SCHEMA_LOCK_KEY = 0x63726D73  # PostgreSQL advisory lock serialising create_schema across processes

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE
_PAIR_RACE_ATTEMPTS = 5


def _lost_unique_race(error: BaseException) -> bool:
    """A unique key refused a row a concurrent writer was writing too (PostgreSQL; SQLite writers take turns)."""
    return isinstance(error, sa.exc.IntegrityError) and getattr(error.orig, "sqlstate", None) == _UNIQUE_VIOLATION


def _log_unique_race(state: RetryCallState) -> None:
    """The constraint, never the statement: its parameters hold contacts' field values."""
    error = state.outcome.exception() if state.outcome else None
    diag = getattr(getattr(error, "orig", None), "diag", None)
    log.warning(
        "sync state: a concurrent writer took %s first; merging the batch again (attempt %d of %d)",
        getattr(diag, "constraint_name", None) or "a unique key",
        state.attempt_number + 1,
        _PAIR_RACE_ATTEMPTS,
    )


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


_PERMANENT, _RETRYABLE = "1", "0"  # the `permanent` flag as batch text


def _permanent_flags(entries: pd.DataFrame) -> pd.Series:
    """The optional boolean column `permanent` as batch text (missing column or value: retryable)."""
    if "permanent" not in entries:
        return pd.Series(_RETRYABLE, index=entries.index, dtype=object)
    flags = entries["permanent"].astype(object)
    wrong = sorted({repr(value) for value in flags.dropna() if not isinstance(value, (bool, np.bool_))})
    if wrong:
        raise ValueError(f"record_attempts: permanent must be true, false or missing, got {wrong}")
    return flags.eq(True).map({True: _PERMANENT, False: _RETRYABLE})


def _due_after(counted: sa.ColumnElement[int], due: list[sa.BindParameter[Any]]) -> sa.ColumnElement[Any]:
    """The next attempt after the `counted`-th: `due[i]` after attempt i + 1, the last step from there on."""
    if len(due) == 1:
        return due[0]
    return sa.case(*((counted == attempts, at) for attempts, at in enumerate(due[:-1], start=1)), else_=due[-1])


class SyncStateStore(TombstoneRecords):
    """The sync state in one SQL database (PostgreSQL in deployment, SQLite for the local demo).

    Tombstones (contacts gone from one CRM) are read and written by the methods of `TombstoneRecords`.

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
            self._add_missing_columns(conn)

    @staticmethod
    def _add_missing_columns(conn: sa.Connection) -> None:
        """Columns added since a deployment created its tables (nullable, so existing rows stay valid).

        The DDL is compiled from the metadata for the connection's dialect; nothing in it comes from input.
        """
        for table, names in ADDED_COLUMNS.items():
            present = {column["name"] for column in sa.inspect(conn).get_columns(table.name)}
            for name in (name for name in names if name not in present):
                quoted = conn.dialect.identifier_preparer.format_table(table)
                column = sa.schema.CreateColumn(table.c[name]).compile(dialect=conn.dialect)
                conn.execute(sa.text(f"ALTER TABLE {quoted} ADD COLUMN {column}"))
                log.info("sync state: column %s added to %s", name, table.name)

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
            self._merge_snapshot_batch(rows_table(self._dialect, columns, batch), now, run_id)
        log.info("sync state: %d pair snapshots merged (run %s)", len(rows), run_id)
        return len(rows)

    @retry(
        retry=retry_if_exception(_lost_unique_race),
        stop=stop_after_attempt(_PAIR_RACE_ATTEMPTS),
        wait=wait_random(0.01, 0.2),
        before_sleep=_log_unique_race,
        reraise=True,
    )
    def _merge_snapshot_batch(self, given: sa.FromClause, now: datetime, run_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(self._relinked_delete(given))
            conn.execute(self._snapshot_upsert(given, now, run_id))

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

    def relink_pair(self, side: str, old_id: str, new_id: str) -> int:
        """Move a pair's `side` id from `old_id` to `new_id` (a merge's survivor), its agreed values kept; returns
        1 when moved, 0 when no pair holds `old_id` or a pair already holds `new_id` (it keeps its own)."""
        _refuse_outside([{"side": side}], "side", TARGETS, "relink_pair")
        column = f"{side}_id"
        holder = pair_snapshots.alias("holder")
        stmt = (
            sa.update(pair_snapshots)
            .where(pair_snapshots.c[column] == old_id, ~sa.exists().where(holder.c[column] == new_id))
            .values({column: new_id})
        )
        with self.engine.begin() as conn:
            moved = conn.execute(stmt).rowcount
        log.info("sync state: %s pair %s %s to %s", side, old_id, "moved" if moved else "not moved", new_id)
        return moved

    def read_merged_into(self, side: str, survivor_ids: Iterable[str]) -> pd.DataFrame:
        """The `merged` tombstones of `side` whose survivor is one of these ids (tombstone columns)."""
        _refuse_outside([{"side": side}], "side", TARGETS, "read_merged_into")
        keys = _unique_ids(survivor_ids)
        stored = tombstones.c
        where = sa.and_(stored.side == side, stored.kind == "merged", key_in(self._dialect, stored.survivor_id, keys))
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(tombstones).where(where)).all() if keys else []
        return self._tombstone_frame(rows)

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

    def record_attempts(self, entries: pd.DataFrame, *, run_id: str, run_try: str = "0") -> None:
        """Count a failed or refused write per entry, schedule its next attempt, and end this try's lease on it.

        A new entry starts at 1 attempt; an entry whose `data_hash` is unchanged counts one more; one whose
        data changed starts again at 1, pending. The next attempt is due `policy.delay(attempts)` from now
        and the entry is parked once `attempts >= policy.max_attempts` (a parked entry attempted again waits
        the last of `policy.steps()`; only `release` makes it due). An optional boolean column `permanent`
        marks refusals no retry can change: such an entry is parked at once (attempt counted, code and
        message kept) and, like any entry, starts again pending when the contact's data changes.
        Concurrency: one INSERT .. ON CONFLICT DO UPDATE per batch whose attempts, status and due time are
        SQL CASE expressions over the stored row, so concurrent callers serialise on the row (PostgreSQL
        re-reads it after the other writer commits) or on the database lock (SQLite), and no increment is lost.
        """
        columns = ["target", "source_id", "target_id", "action", "data_hash", "code", "message"]
        flags = _permanent_flags(entries)
        rows = _records(entries.assign(permanent=flags), [*columns, "permanent"], "record_attempts")
        _refuse_duplicates(rows, ["target", "source_id"], "record_attempts")
        _refuse_outside(rows, "target", TARGETS, "record_attempts")
        _refuse_outside(rows, "action", ACTIONS, "record_attempts")
        rows.sort(key=lambda row: (row["target"], row["source_id"]))
        now = _utcnow()
        for batch in _chunks(rows, WRITE_BATCH_ROWS):
            given = rows_table(self._dialect, [*columns, "permanent"], batch)
            with self.engine.begin() as conn:
                conn.execute(self._attempt_upsert(given, now, run_id, run_try))
        parked = int((flags == _PERMANENT).sum())
        log.info("retry queue: %d failed writes recorded, %d parked as permanent (run %s)", len(rows), parked, run_id)

    def _attempt_upsert(self, given: sa.FromClause, now: datetime, run_id: str, run_try: str) -> Any:
        limit = self.policy.max_attempts
        due = [_bind(now + wait, UTCDateTime()) for wait in self.policy.steps()]
        permanent = given.c.permanent == _PERMANENT

        new_entry = {
            **{column.name: column for column in given.c if column.name != "permanent"},
            "attempts": sa.literal(1),
            "first_attempt_at": _bind(now, UTCDateTime()),
            "last_attempt_at": _bind(now, UTCDateTime()),
            "next_attempt_at": due[0],
            "status": sa.case((permanent, PARKED), else_=sa.literal(PARKED if limit <= 1 else PENDING)),
            "run_id": _bind(run_id, sa.String()),
        }
        rows = sa.select(*new_entry.values()).where(sa.true())  # see _snapshot_upsert
        stmt = self._insert(retry_queue).from_select(list(new_entry), rows)
        stored, excluded = retry_queue.c, stmt.excluded
        same_data = stored.data_hash.is_not_distinct_from(excluded.data_hash)
        counted = stored.attempts + 1
        own_lease = sa.and_(stored.lease_run_id == run_id, stored.lease_try == run_try)
        return stmt.on_conflict_do_update(
            index_elements=[stored.target, stored.source_id],
            set_={
                "attempts": sa.case((same_data, counted), else_=1),
                "next_attempt_at": sa.case((~same_data, excluded.next_attempt_at), else_=_due_after(counted, due)),
                # A parked insert is a permanent refusal (or a policy of one attempt): parked whatever the count.
                "status": sa.case(
                    (excluded.status == PARKED, PARKED),
                    (~same_data, PENDING),
                    (counted >= limit, PARKED),
                    else_=PENDING,
                ),
                "first_attempt_at": sa.case((same_data, stored.first_attempt_at), else_=excluded.first_attempt_at),
                "last_attempt_at": excluded.last_attempt_at,
                "target_id": sa.func.coalesce(excluded.target_id, stored.target_id),
                "action": excluded.action,
                "data_hash": excluded.data_hash,
                "code": excluded.code,
                "message": excluded.message,
                "run_id": excluded.run_id,
                # Another run's lease stays: that run is still writing the entry and will settle it.
                "lease_run_id": sa.case((own_lease, sa.null()), else_=stored.lease_run_id),
                "lease_try": sa.case((own_lease, sa.null()), else_=stored.lease_try),
                "lease_expires_at": sa.case((own_lease, sa.null()), else_=stored.lease_expires_at),
            },
        )

    def claim_due(
        self, *, run_id: str, run_try: str, targets: Iterable[str] = TARGETS, now: datetime | None = None
    ) -> pd.DataFrame:
        """Take the due entries writing to `targets` for this try of a run; returns them, by target and source id.

        Taken: pending entries that are due and held by no live lease, and those this run already holds (a task
        retry, or a cleared run's next try, takes back its own). Each is leased to (`run_id`, `run_try`) until
        `now + policy.lease`, and its next attempt moves to the lease's end, in one UPDATE .. RETURNING: its
        rows picked with FOR UPDATE SKIP LOCKED on PostgreSQL, under the database write lock on SQLite, so
        concurrent runs never take the same entry. `record_attempts` and `resolve` end the lease when the run
        settles; `release_claims` hands back what it took and did not try.

        An expired lease of another run is a run that took the entry and never settled (it died, or outlasted
        the lease): its write may have been sent, so the lost try counts as an attempt (code LEASE_EXPIRED),
        parking the entry at `max_attempts`; otherwise a contact that kills its run would be retried forever.
        """
        wanted = sorted(set(map(str, targets)))
        _refuse_outside([{"target": target} for target in wanted], "target", TARGETS, "claim_due")
        now = now or _utcnow()
        lease_end = _bind(now + self.policy.lease, UTCDateTime())
        stored = retry_queue.c
        takeable = sa.and_(
            stored.status == PENDING,
            stored.target.in_(wanted),
            sa.or_(self._due_clause(now), stored.lease_run_id == run_id),
        )
        picked = (
            sa.select(stored.target, stored.source_id)
            .where(takeable)
            .order_by(stored.target, stored.source_id)
            .with_for_update(skip_locked=True)
        )
        taken_over = sa.and_(stored.lease_run_id.is_not(None), stored.lease_run_id != run_id)
        counted = stored.attempts + 1
        parks = sa.and_(taken_over, counted >= self.policy.max_attempts)
        due = [_bind(now + wait, UTCDateTime()) for wait in self.policy.steps()]
        lost_try = sa.literal("run ", sa.Text) + stored.lease_run_id + " took it and settled nothing in its lease"
        stmt = (
            sa.update(retry_queue)
            .where(sa.tuple_(stored.target, stored.source_id).in_(picked))
            .values(
                attempts=sa.case((taken_over, counted), else_=stored.attempts),
                status=sa.case((parks, PARKED), else_=PENDING),
                code=sa.case((taken_over, LEASE_EXPIRED_CODE), else_=stored.code),
                message=sa.case((taken_over, lost_try), else_=stored.message),
                next_attempt_at=sa.case((parks, _due_after(counted, due)), else_=lease_end),
                lease_run_id=sa.case((parks, sa.null()), else_=_bind(run_id, sa.String())),
                lease_try=sa.case((parks, sa.null()), else_=_bind(run_try, sa.String())),
                lease_expires_at=sa.case((parks, sa.null()), else_=lease_end),
            )
            .returning(*retry_queue.c)
        )
        with self.engine.begin() as conn:
            touched = self._queue_frame(conn.execute(stmt).all())
        claimed = touched[touched["status"] == PENDING].sort_values(["target", "source_id"], ignore_index=True)
        log.info(
            "retry queue: %d due entries taken by run %s (try %s), %d parked after an expired lease",
            len(claimed),
            run_id,
            run_try,
            len(touched) - len(claimed),
        )
        return claimed

    def release_claims(self, *, run_id: str, run_try: str) -> int:
        """Hand back the entries this try took and did not settle (never tried): due again at once, uncounted."""
        stored = retry_queue.c
        stmt = (
            sa.update(retry_queue)
            .where(stored.lease_run_id == run_id, stored.lease_try == run_try)
            .values(lease_run_id=None, lease_try=None, lease_expires_at=None, next_attempt_at=_utcnow())
        )
        with self.engine.begin() as conn:
            released = conn.execute(stmt).rowcount
        log.info("retry queue: %d entries taken by run %s (try %s) handed back untried", released, run_id, run_try)
        return released

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
        """Pending entries due at `now` (default: the current time) that no live lease holds, oldest first."""
        query = (
            sa.select(retry_queue)
            .where(retry_queue.c.status == PENDING, self._due_clause(now or _utcnow()))
            .order_by(retry_queue.c.next_attempt_at, retry_queue.c.target, retry_queue.c.source_id)
        )
        with self.engine.connect() as conn:
            return self._queue_frame(conn.execute(query).all())

    @staticmethod
    def _due_clause(now: datetime) -> sa.ColumnElement[bool]:
        """Next attempt reached, and no run holds the entry (never leased, settled, or its lease ended)."""
        stored = retry_queue.c
        at = _bind(now, UTCDateTime())
        return sa.and_(
            stored.next_attempt_at <= at, sa.or_(stored.lease_expires_at.is_(None), stored.lease_expires_at <= at)
        )

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
            counts = {status: int(n) for status, n in conn.execute(query)}
        return {status: counts.get(status, 0) for status in STATUSES}

    def _queue_filter(
        self, target: str | None, status: str | None, source_ids: Iterable[str] | None
    ) -> sa.ColumnElement[bool]:
        """Every filter given, ANDed (source_ids None: any source; empty: none)."""
        if target is not None and target not in TARGETS:
            raise ValueError(f"target must be one of {list(TARGETS)}, got {target!r}")
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {list(STATUSES)}, got {status!r}")
        clauses: list[sa.ColumnElement[bool]] = [sa.true()]
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
        for column in ("first_attempt_at", "last_attempt_at", "next_attempt_at", "lease_expires_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        lease = {"lease_run_id": "object", "lease_try": "object"}  # no lease: None
        text = [name for name in QUEUE_COLUMNS if name not in {"attempts", *lease} and not name.endswith("_at")]
        return frame.astype({"attempts": "int64", **lease, **dict.fromkeys(text, "str")})
