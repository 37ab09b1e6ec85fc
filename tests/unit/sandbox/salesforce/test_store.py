"""The sandbox record store under SOQL: validation rules, uniqueness, index-narrowed queries that give
the same answer as a full scan, all-or-none rollback, and 200k contacts queried without a full scan."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.salesforce import soql
from sandbox.salesforce.schema import CONTACT, OBJECT_INFOS
from sandbox.salesforce.store import Store
from sandbox.salesforce.validation import RecordFailed

T0 = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)


def run(store: Store, text: str, include_deleted: bool = False) -> list[dict]:
    return store.run_query(soql.parse(text, OBJECT_INFOS), include_deleted)


def codes(exc: pytest.ExceptionInfo[RecordFailed]) -> list[str]:
    return [e.status_code for e in exc.value.errors]


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.mark.parametrize(
    ("values", "code", "message"),
    [
        ({"FirstName": "Ada"}, "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]"),
        ({"LastName": "  "}, "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]"),
        ({"LastName": "x", "Email": "not-an-email"}, "INVALID_EMAIL_ADDRESS", "Email: invalid email address: "),
        ({"LastName": "x", "Email": "a@b"}, "INVALID_EMAIL_ADDRESS", "Email: invalid email address: a@b"),
        ({"LastName": "x", "FirstName": "f" * 41}, "STRING_TOO_LONG", "(max length=40)"),
        ({"LastName": "l" * 81}, "STRING_TOO_LONG", "Last Name: data value too large"),
        ({"LastName": "x", "Email": "e" * 75 + "@b.com"}, "STRING_TOO_LONG", "(max length=80)"),
        ({"LastName": "x", "Phone": "1" * 41}, "STRING_TOO_LONG", "Business Phone: data value too large"),
        ({"LastName": "x", "MobilePhone": "1" * 41}, "STRING_TOO_LONG", "(max length=40)"),
        ({"LastName": "x", "Title": "t" * 129}, "STRING_TOO_LONG", "(max length=128)"),
        ({"LastName": "x", "HubSpot_Contact_Id__c": "9" * 256}, "STRING_TOO_LONG", "(max length=255)"),
        ({"LastName": "x", "Company": "Acme"}, "INVALID_FIELD", "No such column 'Company' on sobject of type Contact"),
        ({"LastName": "x", "SystemModstamp": "2026-01-01T00:00:00Z"}, "INVALID_FIELD_FOR_INSERT_UPDATE", "Unable"),
        ({"LastName": "x", "AccountId": "nope"}, "MALFORMED_ID", "Account ID: id value of incorrect type: nope"),
    ],
)
def test_validation_rules(store, values, code, message):
    with pytest.raises(RecordFailed) as exc:
        store.create(CONTACT, values, T0)
    assert exc.value.errors[0].status_code == code
    assert message in exc.value.errors[0].message


def test_limits_are_inclusive_and_whitespace_is_trimmed(store):
    record_id = store.create(
        CONTACT,
        {"LastName": "l" * 80, "FirstName": "f" * 40, "Title": "t" * 128, "Email": "  Ada@Example.COM "},
        T0,
    )
    assert store.get(CONTACT, record_id)["Email"] == "Ada@Example.COM"


def test_every_field_error_is_reported(store):
    with pytest.raises(RecordFailed) as exc:
        store.create(CONTACT, {"Email": "bad", "Title": "t" * 200}, T0)
    assert sorted(codes(exc)) == ["INVALID_EMAIL_ADDRESS", "REQUIRED_FIELD_MISSING", "STRING_TOO_LONG"]


def test_external_id_is_unique_case_insensitively(store):
    first = store.create(CONTACT, {"LastName": "a", "HubSpot_Contact_Id__c": "abc"}, T0)
    with pytest.raises(RecordFailed) as exc:
        store.create(CONTACT, {"LastName": "b", "HubSpot_Contact_Id__c": "ABC"}, T0)
    assert codes(exc) == ["DUPLICATE_VALUE"]
    assert exc.value.errors[0].message == (
        f"duplicate value found: HubSpot_Contact_Id__c duplicates value on record with id: {first}"
    )


def test_update_moves_timestamps_and_delete_keeps_the_row(store):
    record_id = store.create(CONTACT, {"LastName": "a"}, T0)
    store.update(CONTACT, record_id, {"Title": "CEO"}, T0 + timedelta(minutes=1))
    row = store.get(CONTACT, record_id)
    assert row["CreatedDate"] == T0
    assert row["LastModifiedDate"] == row["SystemModstamp"] == T0 + timedelta(minutes=1)
    store.delete(CONTACT, record_id, T0 + timedelta(minutes=2))
    assert run(store, "SELECT Id FROM Contact") == []
    assert [r["Id"] for r in run(store, "SELECT Id FROM Contact", include_deleted=True)] == [record_id]
    with pytest.raises(RecordFailed) as exc:
        store.update(CONTACT, record_id, {"Title": "x"}, T0)
    assert codes(exc) == ["ENTITY_IS_DELETED"]


def test_upsert_creates_then_updates(store):
    record_id, created = store.upsert("77", {"LastName": "a"}, T0)
    assert created
    again, created = store.upsert("77", {"Title": "CTO"}, T0)
    assert (again, created) == (record_id, False)
    assert store.get(CONTACT, record_id)["Title"] == "CTO"


def test_rollback_restores_rows_and_indexes(store):
    kept = store.create(CONTACT, {"LastName": "keep", "Email": "k@x.com", "HubSpot_Contact_Id__c": "1"}, T0)
    with store.all_or_none() as undo:
        store.update(CONTACT, kept, {"Email": "changed@x.com", "HubSpot_Contact_Id__c": "2"}, T0 + timedelta(1))
        store.create(CONTACT, {"LastName": "new", "HubSpot_Contact_Id__c": "3"}, T0)
        store.rollback(undo)
    assert [r["Id"] for r in run(store, "SELECT Id FROM Contact")] == [kept]
    assert [r["Id"] for r in run(store, "SELECT Id FROM Contact WHERE Email = 'k@x.com'")] == [kept]
    assert run(store, "SELECT Id FROM Contact WHERE HubSpot_Contact_Id__c IN ('2', '3')") == []
    assert [r["Id"] for r in run(store, f"SELECT Id FROM Contact WHERE SystemModstamp = {T0.isoformat()}")] == [kept]


def test_indexed_queries_agree_with_a_full_scan(store):
    ids = []
    for i in range(300):
        ids.append(
            store.create(
                CONTACT,
                {"LastName": f"n{i % 7}", "Email": f"p{i % 50}@x.com", "HubSpot_Contact_Id__c": str(i)},
                T0 + timedelta(seconds=i),
            )
        )
    for i in range(0, 300, 3):
        store.update(CONTACT, ids[i], {"Title": "moved"}, T0 + timedelta(seconds=1000 + i))
    store.delete(CONTACT, ids[5], T0 + timedelta(seconds=2000))
    queries = [
        "SELECT Id FROM Contact WHERE Email = 'P7@x.com'",
        f"SELECT Id FROM Contact WHERE Id IN ('{ids[1]}', '{ids[2][:15]}', '{ids[5]}')",
        "SELECT Id FROM Contact WHERE HubSpot_Contact_Id__c IN ('3', '4', 'nope') AND LastName != 'n4'",
        "SELECT Id FROM Contact WHERE SystemModstamp >= 2026-11-28T14:01:00Z AND SystemModstamp < 2026-11-28T14:20:00Z",
        "SELECT Id FROM Contact WHERE SystemModstamp > 2026-11-28T14:16:40Z AND Title = 'moved'",
        "SELECT Id FROM Contact WHERE SystemModstamp <= 2026-11-28T14:00:10Z OR Email = 'p1@x.com'",
        "SELECT Id FROM Contact WHERE Email = null",
    ]
    for text in queries:
        parsed = soql.parse(text, OBJECT_INFOS)
        scan = [r["Id"] for r in store.rows["Contact"].values() if soql.evaluate(parsed.where, r, store.parent)]
        for deleted in (False, True):
            expected = [i for i in scan if deleted or not store.rows["Contact"][i]["IsDeleted"]]
            assert [r["Id"] for r in run(store, text, deleted)] == expected, text


def test_limit_offset_and_order(store):
    for i in range(10):
        store.create(CONTACT, {"LastName": f"n{9 - i}"}, T0)
    rows = run(store, "SELECT Id FROM Contact ORDER BY LastName LIMIT 3 OFFSET 2")
    assert [r["LastName"] for r in rows] == ["n2", "n3", "n4"]


def test_200k_contacts_window_query_does_not_scan():
    store = Store()
    for i in range(200_000):
        store.seed_contact(
            {
                "LastName": f"n{i}",
                "Email": f"c{i}@example.com",
                "HubSpot_Contact_Id__c": str(i),
                "AccountName": f"Acct {i % 100}",
                "LastModifiedDate": T0 + timedelta(seconds=i),
            },
            T0,
        )
    window = (
        "SELECT Id, Email, Account.Name FROM Contact WHERE SystemModstamp >= 2026-11-29T00:00:00Z "
        "AND SystemModstamp < 2026-11-29T00:15:00Z"
    )
    started = time.perf_counter()
    rows = run(store, window)
    assert len(rows) == 900
    by_id = run(store, "SELECT Id FROM Contact WHERE Email IN ('c1@example.com', 'c199999@example.com')")
    assert len(by_id) == 2
    assert time.perf_counter() - started < 0.5


# ---- merge, undelete and the Recycle Bin -----------------------------------------------------------------
def test_merge_moves_a_unique_value_to_the_master_and_keeps_indexes(store):
    master = store.create(CONTACT, {"LastName": "M", "HubSpot_Contact_Id__c": "1"}, T0)
    loser = store.create(CONTACT, {"LastName": "L", "Email": "l@example.com", "HubSpot_Contact_Id__c": "2"}, T0)
    later = T0 + timedelta(minutes=1)
    assert store.merge(master, [loser], {"HubSpot_Contact_Id__c": "2", "Email": "l@example.com"}, later) == [loser]
    assert store.by_external_id("2")["Id"] == master and store.by_external_id("1") is None
    assert [r["Id"] for r in run(store, "SELECT Id FROM Contact WHERE Email = 'l@example.com'")] == [master]
    gone = run(store, f"SELECT Id, MasterRecordId FROM Contact WHERE Id = '{loser}'", include_deleted=True)
    assert gone == [store.rows["Contact"][loser]] and gone[0]["MasterRecordId"] == master
    with pytest.raises(RecordFailed) as taken:
        store.undelete(CONTACT, loser, later)
    assert codes(taken) == ["DUPLICATE_VALUE"]
    with pytest.raises(RecordFailed) as deleted:
        store.merge(master, [loser], {}, later)
    assert codes(deleted) == ["ENTITY_IS_DELETED"]


def test_purge_after_15_days_and_get_deleted_limit(store):
    first, second, third = (store.create(CONTACT, {"LastName": n, "Email": f"{n}@x.com"}, T0) for n in "abc")
    for minutes, record_id in enumerate([first, second, third]):
        store.delete(CONTACT, record_id, T0 + timedelta(minutes=minutes))
    store.undelete(CONTACT, second, T0 + timedelta(minutes=5))  # its entry goes stale
    window = (T0, T0 + timedelta(hours=1))
    assert [i for _, i in store.deleted_between(CONTACT, *window)] == [first, third]
    with pytest.raises(RecordFailed) as many:
        store.deleted_between(CONTACT, *window, limit=1)
    assert codes(many) == ["EXCEEDED_ID_LIMIT"]
    assert store.purge_recycle_bin(T0 + timedelta(days=15)) == 1  # the first delete is exactly 15 days old
    assert first not in store.rows["Contact"] and run(store, "SELECT Id FROM Contact WHERE Email = 'a@x.com'") == []
    with pytest.raises(RecordFailed) as purged:
        store.undelete(CONTACT, first, T0 + timedelta(days=15))
    assert codes(purged) == ["UNDELETE_FAILED"]
    assert store.purge_recycle_bin(T0 + timedelta(days=16)) == 1 and set(store.rows["Contact"]) == {second}


def test_age_moves_every_stamp_back_and_window_queries_follow(store):
    account = store.account_for_name("Acme", T0)
    kept = store.create(CONTACT, {"LastName": "kept", "Email": "k@x.com", "AccountId": account}, T0)
    store.update(CONTACT, kept, {"Title": "CEO"}, T0 + timedelta(minutes=1))
    gone = store.create(CONTACT, {"LastName": "gone"}, T0)
    store.delete(CONTACT, gone, T0 + timedelta(minutes=2))
    hour = timedelta(hours=1)
    window = f"SELECT Id FROM Contact WHERE SystemModstamp >= {T0.isoformat()}"
    assert store.age(hour) == 3  # two Contacts (one deleted) and the Account
    assert store.rows["Account"][account]["LastModifiedDate"] == T0 - hour
    row = store.get(CONTACT, kept)
    assert (row["CreatedDate"], row["LastModifiedDate"], row["SystemModstamp"]) == (
        T0 - hour,
        T0 + timedelta(minutes=1) - hour,
        T0 + timedelta(minutes=1) - hour,
    )
    assert run(store, window, include_deleted=True) == []
    earlier = (T0 - hour).isoformat()
    assert [r["Id"] for r in run(store, f"SELECT Id FROM Contact WHERE SystemModstamp >= {earlier}")] == [kept]
    assert [i for _, i in store.deleted_between(CONTACT, T0 - hour, T0)] == [gone]
    assert store.deleted_between(CONTACT, T0, T0 + hour) == []
    store.update(CONTACT, kept, {"Title": "CTO"}, T0 + timedelta(minutes=3))  # a later edit is in the window again
    assert [r["Id"] for r in run(store, window)] == [kept]
