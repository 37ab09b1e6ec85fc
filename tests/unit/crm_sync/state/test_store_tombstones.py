"""Tombstones on SQLite and PostgreSQL: upsert, privacy deletions never downgraded, reads by side, clears, schema."""

from datetime import UTC, datetime

import pandas as pd
import pytest
import sqlalchemy as sa

from crm_sync.state.engine import create_state_engine
from crm_sync.state.store import SyncStateStore
from crm_sync.state.tombstones import TOMBSTONE_COLUMNS

AT = datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=UTC)


def tombstone(side, contact_id, kind, **extra):
    return {"side": side, "contact_id": contact_id, "kind": kind, **extra}


def test_recorded_tombstones_read_back_by_side_and_id(store):
    given = pd.DataFrame(
        [
            tombstone("hubspot", "101", "privacy_deleted", happened_at=AT, counterpart_id="003A"),
            tombstone("salesforce", "003B", "merged", survivor_id="003C", counterpart_id="102"),
            tombstone("salesforce", "101", "deleted"),  # same id text on the other side: its own row
        ]
    )
    assert store.record_tombstones(given, run_id="r1") == 3
    found = store.read_tombstones(hubspot_ids=["101"], salesforce_ids=["003B", "nope"])
    assert list(found.columns) == TOMBSTONE_COLUMNS
    assert found[["side", "contact_id", "kind", "survivor_id", "counterpart_id"]].values.tolist() == [
        ["hubspot", "101", "privacy_deleted", None, "003A"],
        ["salesforce", "003B", "merged", "003C", "102"],
    ]
    assert found.loc[0, "happened_at"] == pd.Timestamp(AT)
    assert pd.isna(found.loc[1, "happened_at"])
    assert (found["run_id"] == "r1").all()
    assert str(found["recorded_at"].dt.tz) == "UTC"
    assert len(store.read_all_tombstones()) == 3


def test_upsert_keeps_known_ids_and_never_downgrades_a_privacy_deletion(store):
    store.record_tombstones(
        pd.DataFrame([tombstone("hubspot", "101", "privacy_deleted", happened_at=AT, counterpart_id="003A")]),
        run_id="r1",
    )
    store.record_tombstones(pd.DataFrame([tombstone("hubspot", "101", "purged")]), run_id="r2")
    row = store.read_tombstones(hubspot_ids=["101"]).iloc[0]
    assert (row.kind, row.counterpart_id, row.happened_at, row.run_id) == ("privacy_deleted", "003A", AT, "r2")

    store.record_tombstones(pd.DataFrame([tombstone("salesforce", "003B", "archived")]), run_id="r1")
    store.record_tombstones(pd.DataFrame([tombstone("salesforce", "003B", "deleted", happened_at=AT)]), run_id="r2")
    row = store.read_tombstones(salesforce_ids=["003B"]).iloc[0]
    assert (row.kind, row.happened_at) == ("deleted", AT)


def test_clear_forgets_only_the_given_keys(store):
    store.record_tombstones(
        pd.DataFrame([tombstone("hubspot", "101", "archived"), tombstone("salesforce", "101", "deleted")]),
        run_id="r1",
    )
    assert store.clear_tombstones(pd.DataFrame({"side": ["hubspot", "hubspot"], "contact_id": ["101", "999"]})) == 1
    assert store.read_all_tombstones()[["side", "contact_id"]].values.tolist() == [["salesforce", "101"]]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([tombstone("marketo", "1", "deleted")], "side must be one of"),
        ([tombstone("hubspot", "1", "vanished")], "kind must be one of"),
        ([tombstone("hubspot", "1", "deleted"), tombstone("hubspot", "1", "archived")], "once per side"),
        ([tombstone("hubspot", None, "deleted")], "needs a contact_id"),
        ([{"side": "hubspot", "contact_id": "1"}], "missing columns"),
    ],
)
def test_bad_rows_are_refused_with_the_reason_and_nothing_is_written(store, rows, message):
    with pytest.raises(ValueError, match=message):
        store.record_tombstones(pd.DataFrame(rows), run_id="r1")
    assert store.read_all_tombstones().empty


def test_create_schema_adds_the_table_to_a_database_created_before_it(state_url):
    engine = create_state_engine(state_url)
    state = SyncStateStore(engine)
    state.create_schema()
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE crm_sync_tombstones"))
    state.create_schema()
    assert "crm_sync_tombstones" in sa.inspect(engine).get_table_names()
    state.record_tombstones(pd.DataFrame([tombstone("hubspot", "1", "deleted")]), run_id="r1")
    assert len(state.read_all_tombstones()) == 1
    engine.dispose()


def test_pair_ids_are_read_without_their_field_values(store):
    pairs = pd.DataFrame({"salesforce_id": ["003A"], "hubspot_id": ["101"], "field_values": ['{"email": "a@x.io"}']})
    store.merge_snapshots(pairs, run_id="r1")
    assert store.read_pair_ids().values.tolist() == [["003A", "101"]]
