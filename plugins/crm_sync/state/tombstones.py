"""Tombstones: contacts gone from one CRM (deleted, archived, privacy-deleted, purged, merged away), no Airflow.

A tombstone keeps the pair from being re-created by the next edit of the counterpart: reconcile reads the
tombstones of the contacts it sees and decides by the mapping's `on_counterpart_deleted`. A restore or undelete
clears it. Writes are one INSERT .. ON CONFLICT per batch; a privacy deletion is never downgraded by a later,
weaker finding about the same id (a read answering nothing cannot tell a privacy deletion from a purge).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from crm_sync.state.batch import key_in, rows_table
from crm_sync.state.schema import TARGETS, TOMBSTONE_KINDS, UTCDateTime, pair_snapshots, tombstones
from include.sync_logic.sides import Side

log = logging.getLogger(__name__)

PRIVACY_DELETED = "privacy_deleted"
TOMBSTONE_COLUMNS = [column.name for column in tombstones.columns]
_GIVEN = ["side", "contact_id", "kind", "happened_at", "survivor_id", "counterpart_id"]
_BATCH_ROWS = 5000
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def _given_rows(frame: pd.DataFrame, dialect: str) -> list[dict[str, Any]]:
    """The frame's rows, checked: side and kind from their vocabularies, one row per key, times as UTC text.

    The text is what each database stores for `UTCDateTime`: ISO with offset (cast to timestamptz) on
    PostgreSQL, SQLAlchemy's fixed-width naive UTC text on SQLite (so it orders and reads back like the rest).
    """
    missing = [name for name in ("side", "contact_id", "kind") if name not in frame.columns]
    if missing:
        raise ValueError(f"record_tombstones: missing columns {missing}")
    given = frame.reindex(columns=_GIVEN).astype(object)

    def text(at: pd.Timestamp) -> str:
        return at.isoformat() if dialect == "postgresql" else at.strftime(_SQLITE_TIME)

    given["happened_at"] = pd.to_datetime(given["happened_at"], utc=True).map(text, na_action="ignore")  # NaT stays
    rows = [
        {str(name): (None if pd.isna(value) else str(value)) for name, value in row.items()}
        for row in given.to_dict("records")
    ]
    for column, allowed in (("side", TARGETS), ("kind", TOMBSTONE_KINDS)):
        wrong = sorted({str(row[column]) for row in rows} - set(allowed))
        if wrong:
            raise ValueError(f"record_tombstones: {column} must be one of {list(allowed)}, got {wrong}")
    keys = {(row["side"], row["contact_id"]) for row in rows}
    if len(keys) != len(rows) or None in {row["contact_id"] for row in rows}:
        raise ValueError("record_tombstones: every row needs a contact_id, once per side")
    return sorted(rows, key=lambda row: (row["side"], row["contact_id"]))


class TombstoneRecords:
    """The tombstone table's reads and writes; mixed into `SyncStateStore` (needs `engine`, `_dialect`, `_insert`)."""

    engine: sa.Engine
    _dialect: str
    _insert: Any

    def record_tombstones(self, frame: pd.DataFrame, *, run_id: str) -> int:
        """Upsert tombstones from `side`, `contact_id`, `kind` (+ optional happened_at, survivor_id, counterpart_id).

        A stored counterpart or survivor id is kept when the new row has none; a stored privacy deletion stays one.
        Returns the number of rows written.
        """
        rows = _given_rows(frame, self._dialect)
        now = datetime.now(UTC)
        for start in range(0, len(rows), _BATCH_ROWS):
            given = rows_table(self._dialect, _GIVEN, rows[start : start + _BATCH_ROWS])
            with self.engine.begin() as conn:
                conn.execute(self._tombstone_upsert(given, now, run_id))
        log.info("sync state: %d tombstones recorded (run %s)", len(rows), run_id)
        return len(rows)

    def _tombstone_upsert(self, given: sa.Subquery, now: datetime, run_id: str) -> Any:
        happened: sa.ColumnElement[Any] = given.c.happened_at
        if self._dialect == "postgresql":
            happened = sa.cast(happened, sa.DateTime(timezone=True))
        rows = sa.select(
            given.c.side,
            given.c.contact_id,
            given.c.kind,
            happened,
            given.c.survivor_id,
            given.c.counterpart_id,
            sa.bindparam(None, run_id, type_=sa.String()),
            sa.bindparam(None, now, type_=UTCDateTime()),
        ).where(sa.true())  # SQLite would read `ON CONFLICT` after a bare FROM as a join constraint
        stmt = self._insert(tombstones).from_select(TOMBSTONE_COLUMNS, rows)
        stored, excluded = tombstones.c, stmt.excluded
        return stmt.on_conflict_do_update(
            index_elements=[stored.side, stored.contact_id],
            set_={
                "kind": sa.case((stored.kind == PRIVACY_DELETED, stored.kind), else_=excluded.kind),
                "happened_at": sa.func.coalesce(excluded.happened_at, stored.happened_at),
                "survivor_id": sa.func.coalesce(excluded.survivor_id, stored.survivor_id),
                "counterpart_id": sa.func.coalesce(excluded.counterpart_id, stored.counterpart_id),
                "run_id": excluded.run_id,
                "recorded_at": excluded.recorded_at,
            },
        )

    def read_tombstones(self, salesforce_ids: Iterable[str] = (), hubspot_ids: Iterable[str] = ()) -> pd.DataFrame:
        """Tombstones of the given Salesforce ids and HubSpot ids (each list one bound parameter), by side and id."""
        stored = tombstones.c
        found: list[Any] = []
        with self.engine.connect() as conn:
            for side, ids in ((Side.SALESFORCE, salesforce_ids), (Side.HUBSPOT, hubspot_ids)):
                keys = sorted({str(value) for value in ids})
                if keys:
                    where = sa.and_(stored.side == side.value, key_in(self._dialect, stored.contact_id, keys))
                    found.extend(conn.execute(sa.select(tombstones).where(where)))
        return self._tombstone_frame(found)

    def read_all_tombstones(self) -> pd.DataFrame:
        """Every tombstone (a full resync, the health view)."""
        with self.engine.connect() as conn:
            return self._tombstone_frame(conn.execute(sa.select(tombstones)).all())

    def read_pair_ids(self) -> pd.DataFrame:
        """Every pair's `salesforce_id` and `hubspot_id`, without the field values: what a full resync's tombstone
        detection needs to know which partner each contact had (a tenth of `read_all_snapshots`' memory)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(pair_snapshots.c.salesforce_id, pair_snapshots.c.hubspot_id)).all()
        return pd.DataFrame.from_records([tuple(row) for row in rows], columns=["salesforce_id", "hubspot_id"])

    def clear_tombstones(self, frame: pd.DataFrame) -> int:
        """Forget the tombstones of (`side`, `contact_id`) rows (a restore or undelete); returns rows deleted."""
        missing = [name for name in ("side", "contact_id") if name not in frame.columns]
        if missing:
            raise ValueError(f"clear_tombstones: missing columns {missing}")
        keys = sorted(
            {(str(side), str(contact_id)) for side, contact_id in zip(frame["side"], frame["contact_id"], strict=True)}
        )
        deleted = 0
        with self.engine.begin() as conn:
            for start in range(0, len(keys), _BATCH_ROWS):
                batch = [{"side": side, "contact_id": cid} for side, cid in keys[start : start + _BATCH_ROWS]]
                given = rows_table(self._dialect, ["side", "contact_id"], batch)
                listed = sa.tuple_(tombstones.c.side, tombstones.c.contact_id).in_(
                    sa.select(given.c.side, given.c.contact_id)
                )
                deleted += conn.execute(sa.delete(tombstones).where(listed)).rowcount
        log.info("sync state: %d tombstones cleared", deleted)
        return deleted

    @staticmethod
    def _tombstone_frame(rows: Sequence[Any]) -> pd.DataFrame:
        frame = pd.DataFrame.from_records([tuple(row) for row in rows], columns=TOMBSTONE_COLUMNS)
        for column in ("happened_at", "recorded_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        for column in ("survivor_id", "counterpart_id"):  # no id: None
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
        return frame.sort_values(["side", "contact_id"], ignore_index=True)
