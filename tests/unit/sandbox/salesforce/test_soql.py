"""The sandbox's SOQL parser and evaluator: grammar, SOQL semantics, Salesforce error codes, and
values escaped by simple_salesforce.format_soql matching exactly without breaking out of the literal."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from simple_salesforce.format import format_soql

from sandbox.salesforce.ids import to18
from sandbox.salesforce.schema import OBJECT_INFOS
from sandbox.salesforce.soql import ObjectInfo, SoqlError, evaluate, parse, sort_rows

ACME = {"Id": to18("001SB0000000001"), "Name": "Acme"}
PARENTS = {ACME["Id"]: ACME}


def contact(**values):
    row = {
        "Id": to18("003SB0000000001"),
        "AccountId": None,
        "FirstName": None,
        "LastName": "Doe",
        "Email": None,
        "Phone": None,
        "MobilePhone": None,
        "Title": None,
        "HubSpot_Contact_Id__c": None,
        "IsDeleted": False,
        "SystemModstamp": datetime(2026, 11, 28, 14, 0, tzinfo=UTC),
        "LastModifiedDate": datetime(2026, 11, 28, 14, 0, tzinfo=UTC),
    }
    row.update(values)
    return row


def parent(row, rel):
    assert rel == "Account"
    return PARENTS.get(row.get("AccountId"))


def matches(soql: str, row) -> bool:
    return evaluate(parse(soql, OBJECT_INFOS).where, row, parent)


def error_of(soql: str, objects=OBJECT_INFOS) -> SoqlError:
    with pytest.raises(SoqlError) as info:
        parse(soql, objects)
    return info.value


# ---- grammar -------------------------------------------------------------------------------------
def test_select_list_resolves_canonical_names_and_relationships():
    q = parse("select id, EMAIL, account.name from contact", OBJECT_INFOS)
    assert q.sobject == "Contact"
    assert [p.dotted for p in q.fields] == ["Id", "Email", "Account.Name"]
    assert q.fields[2].type == "string"


def test_order_limit_offset():
    q = parse("SELECT Id FROM Contact ORDER BY SystemModstamp DESC NULLS LAST, Id LIMIT 10 OFFSET 5", OBJECT_INFOS)
    assert [(o.path.dotted, o.descending, o.nulls_last) for o in q.order_by] == [
        ("SystemModstamp", True, True),
        ("Id", False, False),
    ]
    assert (q.limit, q.offset) == (10, 5)


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Id FROM Contact WHERE",
        "SELECT FROM Contact",
        "SELECT Id Contact",
        "SELECT Id FROM Contact WHERE Email = 'a' AND Phone = 'b' OR Title = 'c'",
        "SELECT Id FROM Contact WHERE Email = 'a' OR Phone = 'b' AND Title = 'c'",
        "SELECT Id FROM Contact WHERE (Email = 'a'",
        "SELECT Id FROM Contact WHERE Email IN ()",
        "SELECT Id FROM Contact WHERE Email = :bind",
        "SELECT Id FROM Contact GROUP BY Id",
        "SELECT COUNT(), Id FROM Contact",  # COUNT() stands alone
        "SELECT COUNT(Id) FROM Contact",  # aggregate functions are not modelled: a clear error, not a wrong answer
        "SELECT Id FROM Contact LIMIT -1",
        'SELECT Id FROM Contact WHERE Email = "a"',
        "SELECT Id FROM Contact WHERE LastModifiedDate = TODAY",
        "SELECT Id, Id FROM Contact",
        "",
    ],
)
def test_malformed_queries(soql):
    assert error_of(soql).error_code == "MALFORMED_QUERY"


def test_malformed_message_points_at_the_token():
    err = error_of("SELECT Id FROM Contact WHERE")
    assert "ERROR at Row:1:Column:29" in err.message
    assert "unexpected token: <EOF>" in err.message


def test_broken_quote_is_malformed():
    err = error_of("SELECT Id FROM Contact WHERE Email = 'abc")
    assert err.error_code == "MALFORMED_QUERY"
    assert "expecting '''" in err.message


def test_bad_escape_is_malformed():
    assert error_of(r"SELECT Id FROM Contact WHERE Email = 'a\qb'").error_code == "MALFORMED_QUERY"
    # \% and \_ are legal only inside LIKE
    assert error_of(r"SELECT Id FROM Contact WHERE Email = '50\%'").error_code == "MALFORMED_QUERY"


def test_mixed_and_or_with_parentheses_is_fine():
    q = parse("SELECT Id FROM Contact WHERE (Email = 'a' AND Phone = 'b') OR Title = 'c'", OBJECT_INFOS)
    assert q.where.op == "or"


def test_unknown_field_and_object():
    err = error_of("SELECT Id, Company FROM Contact")
    assert err.error_code == "INVALID_FIELD"
    assert "No such column 'Company' on entity 'Contact'" in err.message
    assert error_of("SELECT Id FROM Contact WHERE Company = 'x'").error_code == "INVALID_FIELD"
    assert error_of("SELECT Owner.Name FROM Contact").error_code == "INVALID_FIELD"
    assert error_of("SELECT Id FROM Lead").error_code == "INVALID_TYPE"


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT Id FROM Contact WHERE SystemModstamp > '2026-11-28T14:00:00Z'",
        "SELECT Id FROM Contact WHERE SystemModstamp > 2026-11-28",
        "SELECT Id FROM Contact WHERE Email = 5",
        "SELECT Id FROM Contact WHERE IsDeleted = 'true'",
        "SELECT Id FROM Contact WHERE Id LIKE '003%'",
    ],
)
def test_wrong_literal_type_is_invalid_field(soql):
    assert error_of(soql).error_code == "INVALID_FIELD"


def test_invalid_id_literal():
    assert error_of("SELECT Id FROM Contact WHERE Id = 'nope'").error_code == "INVALID_QUERY_FILTER_OPERATOR"


def test_offset_above_2000_is_refused():
    assert error_of("SELECT Id FROM Contact OFFSET 2001").error_code == "NUMBER_OUTSIDE_VALID_RANGE"


# ---- semantics ------------------------------------------------------------------------------------
def test_equality_is_case_insensitive_for_text():
    row = contact(Email="Ada@Example.com")
    assert matches("SELECT Id FROM Contact WHERE Email = 'ada@example.COM'", row)
    assert not matches("SELECT Id FROM Contact WHERE Email = 'ada@example.org'", row)


def test_null_semantics_are_two_valued():
    row = contact(Email=None)
    assert matches("SELECT Id FROM Contact WHERE Email = null", row)
    assert matches("SELECT Id FROM Contact WHERE Email != 'x@y.com'", row)
    assert not matches("SELECT Id FROM Contact WHERE Email != null", row)
    assert not matches("SELECT Id FROM Contact WHERE Email > 'a'", row)
    assert matches("SELECT Id FROM Contact WHERE Email NOT IN ('x@y.com')", row)
    assert not matches("SELECT Id FROM Contact WHERE Email LIKE '%'", row)


def test_in_and_not_in():
    row = contact(HubSpot_Contact_Id__c="101")
    assert matches("SELECT Id FROM Contact WHERE HubSpot_Contact_Id__c IN ('100', '101')", row)
    assert not matches("SELECT Id FROM Contact WHERE HubSpot_Contact_Id__c NOT IN ('100', '101')", row)
    assert matches("SELECT Id FROM Contact WHERE NOT HubSpot_Contact_Id__c IN ('100')", row)


def test_like_wildcards_and_escapes():
    row = contact(Title="50%_off Sales")
    assert matches("SELECT Id FROM Contact WHERE Title LIKE '50%'", row)
    assert matches("SELECT Id FROM Contact WHERE Title LIKE '5__%'", row)
    assert matches(r"SELECT Id FROM Contact WHERE Title LIKE '50\%\_off%'", row)
    assert not matches(r"SELECT Id FROM Contact WHERE Title LIKE '50\%\_on%'", row)
    assert matches("SELECT Id FROM Contact WHERE Title LIKE '%SALES'", row)
    assert not matches(r"SELECT Id FROM Contact WHERE Title LIKE '5\_%'", row)


def test_boolean_logic_and_parentheses():
    row = contact(Email="a@b.com", Phone="1", Title="CEO")
    assert matches("SELECT Id FROM Contact WHERE (Email = 'x' OR Phone = '1') AND Title = 'CEO'", row)
    assert not matches("SELECT Id FROM Contact WHERE NOT (Email = 'a@b.com' AND Phone = '1')", row)
    assert matches("SELECT Id FROM Contact WHERE NOT Email = 'x' AND NOT (Title = 'CTO' OR Phone = '2')", row)


@pytest.mark.parametrize(
    "literal",
    [
        "2026-11-28T14:00:00Z",
        "2026-11-28T14:00:00+00:00",
        "2026-11-28T15:00:00+01:00",
        "2026-11-28T14:00:00.000Z",
        "2026-11-28T09:00:00-0500",
    ],
)
def test_datetime_literal_forms(literal):
    row = contact(SystemModstamp=datetime(2026, 11, 28, 14, 0, tzinfo=UTC))
    assert matches(f"SELECT Id FROM Contact WHERE SystemModstamp = {literal}", row)
    assert not matches(f"SELECT Id FROM Contact WHERE SystemModstamp > {literal}", row)
    assert matches(f"SELECT Id FROM Contact WHERE SystemModstamp >= {literal}", row)


def test_window_filter_as_the_sync_writes_it():
    start = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
    end = datetime(2026, 11, 28, 14, 15, tzinfo=UTC)
    soql = format_soql("SELECT Id FROM Contact WHERE SystemModstamp >= {} AND SystemModstamp < {}", start, end)
    assert matches(soql, contact(SystemModstamp=start))
    assert matches(soql, contact(SystemModstamp=datetime(2026, 11, 28, 14, 14, 59, 999000, tzinfo=UTC)))
    assert not matches(soql, contact(SystemModstamp=end))


def test_date_literals_against_a_date_field():
    objects = {"Event": ObjectInfo("Event", {"Id": "id", "ActivityDate": "date"})}
    q = parse("SELECT Id FROM Event WHERE ActivityDate > 2026-11-27 AND ActivityDate <= 2026-11-28", objects)
    assert evaluate(q.where, {"ActivityDate": date(2026, 11, 28)}, parent)
    assert not evaluate(q.where, {"ActivityDate": date(2026, 11, 27)}, parent)
    assert error_of("SELECT Id FROM Event WHERE ActivityDate > 2026-11-27T00:00:00Z", objects).error_code == (
        "INVALID_FIELD"
    )


def test_ids_match_in_15_and_18_character_form():
    row = contact()
    id18 = row["Id"]
    assert matches(f"SELECT Id FROM Contact WHERE Id = '{id18[:15]}'", row)
    assert matches(f"SELECT Id FROM Contact WHERE Id IN ('{id18}')", row)
    assert not matches(f"SELECT Id FROM Contact WHERE Id = '{id18[:14]}x'", row)


def test_relationship_field_in_where():
    row = contact(AccountId=ACME["Id"])
    assert matches("SELECT Id FROM Contact WHERE Account.Name = 'acme'", row)
    assert matches("SELECT Id FROM Contact WHERE Account.Name = null", contact())


def test_order_by_directions_and_nulls():
    rows = [contact(Id=str(i), LastName=name) for i, name in enumerate(["b", None, "A", "c"])]
    q = parse("SELECT Id FROM Contact ORDER BY LastName", OBJECT_INFOS)
    assert [r["LastName"] for r in sort_rows(rows, q.order_by, parent)] == [None, "A", "b", "c"]
    q = parse("SELECT Id FROM Contact ORDER BY LastName DESC NULLS LAST", OBJECT_INFOS)
    assert [r["LastName"] for r in sort_rows(rows, q.order_by, parent)] == ["c", "b", "A", None]


def test_order_by_several_fields():
    rows = [
        contact(Id=str(i), LastName=last, FirstName=first)
        for i, (last, first) in enumerate([("x", "b"), ("y", "a"), ("x", "a")])
    ]
    q = parse("SELECT Id FROM Contact ORDER BY LastName DESC, FirstName ASC", OBJECT_INFOS)
    assert [(r["LastName"], r["FirstName"]) for r in sort_rows(rows, q.order_by, parent)] == [
        ("y", "a"),
        ("x", "a"),
        ("x", "b"),
    ]


# ---- injection attempts through format_soql --------------------------------------------------------
HOSTILE = [
    "o'brien@example.com",
    "x' OR Email != '",
    "x\\' OR Email != \\'",
    "back\\slash",
    "trailing\\",
    'quote"inside',
    "new\nline\ttab\r\b\f",
    "ünïcödé 名前 😀",
    "%_wild",
    "') OR (Id != '",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_format_soql_values_match_exactly_and_never_break_out(value):
    soql = format_soql("SELECT Id FROM Contact WHERE Email = {} AND LastName = 'Doe'", value)
    q = parse(soql, OBJECT_INFOS)
    assert q.where.op == "and" and len(q.where.items) == 2
    assert q.where.items[0].value == value
    assert matches(soql, contact(Email=value))
    assert not matches(soql, contact(Email=value + "x"))
    assert not matches(soql, contact(Email="other@example.com"))


@pytest.mark.parametrize("value", HOSTILE)
def test_format_soql_like_values_are_literal(value):
    soql = format_soql("SELECT Id FROM Contact WHERE Title LIKE '{:like}%'", value)
    assert matches(soql, contact(Title=value + " and more"))
    assert not matches(soql, contact(Title="z" + value))


def test_format_soql_in_list():
    soql = format_soql("SELECT Id FROM Contact WHERE HubSpot_Contact_Id__c IN {}", ["1", "o'x", "2\\"])
    q = parse(soql, OBJECT_INFOS)
    assert q.where.values == ("1", "o'x", "2\\")


@given(st.text(max_size=40))
def test_any_text_round_trips_through_format_soql(value):
    soql = format_soql("SELECT Id FROM Contact WHERE Email = {}", value)
    q = parse(soql, OBJECT_INFOS)
    assert q.where.value == value


def test_unicode_escape_sequence():
    q = parse(r"SELECT Id FROM Contact WHERE LastName = 'caf\u00e9'", OBJECT_INFOS)
    assert q.where.value == "café"
