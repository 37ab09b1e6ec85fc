"""The state tables, as SQLAlchemy Core metadata that works on PostgreSQL and SQLite (no Airflow)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, UserDefinedType

from include.sync_logic.sides import WRITE_ACTIONS, Side

TARGETS = tuple(side.value for side in Side)  # what a target or side column holds
ACTIONS = (*(action.value for action in WRITE_ACTIONS), "link")  # a retry entry's: a write, or link-back's
PENDING, PARKED = "pending", "parked"
STATUSES = (PENDING, PARKED)


class _JSONBText(UserDefinedType[str]):
    """jsonb in PostgreSQL, JSON text on the wire: the store never parses and re-serialises in Python."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "JSONB"

    def bind_expression(self, bindvalue: Any) -> sa.ColumnElement[Any]:
        return sa.cast(bindvalue, JSONB)

    def column_expression(self, colexpr: Any) -> sa.ColumnElement[Any]:
        return sa.cast(colexpr, sa.Text)


# JSON object text in Python; jsonb on PostgreSQL (the `||` merge), TEXT on SQLite (json_each).
JSON_OBJECT_TEXT = sa.Text().with_variant(_JSONBText(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps in UTC: timestamptz on PostgreSQL, fixed-width UTC text on SQLite (ordered as text).

    Naive datetimes are refused rather than guessed; values read back are always tz-aware UTC.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the sync state stores UTC only")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

# One row per linked pair: the field values both CRMs last agreed on (the base of the three-way merge).
pair_snapshots = sa.Table(
    "crm_sync_pairs",
    metadata,
    sa.Column("salesforce_id", sa.String(64), primary_key=True),
    sa.Column("hubspot_id", sa.String(64), nullable=False, unique=True),
    sa.Column("field_values", JSON_OBJECT_TEXT, nullable=False),
    sa.Column("synced_at", UTCDateTime(), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.CheckConstraint("jsonb_typeof(field_values) = 'object'", name="crm_sync_pairs_field_values_object").ddl_if(
        dialect="postgresql"
    ),
    sa.CheckConstraint(
        "json_valid(field_values) AND json_type(field_values) = 'object'", name="crm_sync_pairs_field_values_object"
    ).ddl_if(dialect="sqlite"),
)

# Contacts whose write failed or was refused, keyed by the CRM written to and the source contact.
# lease_*: the run and its try (see `crm_sync.operators.base.run_try`) that took the entry to write it, until when.
retry_queue = sa.Table(
    "crm_sync_retry_queue",
    metadata,
    sa.Column("target", sa.String(16), primary_key=True),
    sa.Column("source_id", sa.String(64), primary_key=True),
    sa.Column("target_id", sa.String(64)),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("code", sa.String(250)),
    sa.Column("message", sa.Text),
    sa.Column("data_hash", sa.String(128)),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("first_attempt_at", UTCDateTime(), nullable=False),
    sa.Column("last_attempt_at", UTCDateTime(), nullable=False),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("lease_run_id", sa.String(250)),
    sa.Column("lease_try", sa.String(64)),
    sa.Column("lease_expires_at", UTCDateTime()),
    sa.CheckConstraint(sa.column("target").in_(TARGETS), name="crm_sync_retry_queue_target"),
    sa.CheckConstraint(sa.column("action").in_(ACTIONS), name="crm_sync_retry_queue_action"),
    sa.CheckConstraint(sa.column("status").in_(STATUSES), name="crm_sync_retry_queue_status"),
    sa.Index("crm_sync_retry_queue_due", "status", "next_attempt_at"),
)

# Contacts gone from one CRM, keyed by the side and that side's id: why (kind), when, and the pair they were in,
# so no later edit of the counterpart re-creates them (see `crm_sync.state.tombstones`).
TOMBSTONE_KINDS = ("deleted", "archived", "privacy_deleted", "purged", "merged")
tombstones = sa.Table(
    "crm_sync_tombstones",
    metadata,
    sa.Column("side", sa.String(16), primary_key=True),
    sa.Column("contact_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("happened_at", UTCDateTime()),
    sa.Column("survivor_id", sa.String(64)),
    sa.Column("counterpart_id", sa.String(64)),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
    sa.CheckConstraint(sa.column("side").in_(TARGETS), name="crm_sync_tombstones_side"),
    sa.CheckConstraint(sa.column("kind").in_(TOMBSTONE_KINDS), name="crm_sync_tombstones_kind"),
    sa.Index("crm_sync_tombstones_counterpart", "counterpart_id"),
)

# Columns added after the first release: create_schema adds them to tables created before.
ADDED_COLUMNS = {retry_queue: ("lease_run_id", "lease_try", "lease_expires_at")}
