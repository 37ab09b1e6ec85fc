"""SOQL building: values escaped by format_soql, field names checked, IN lists cut to size."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote_plus

import pytest

from crm_sync.hooks import soql

FIELDS = ["Id", "Email", "Account.Name", "SystemModstamp"]


def test_window_query_is_half_open_and_utc():
    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    end = datetime(2026, 1, 1, 13, 15, tzinfo=timezone(timedelta(hours=1)))  # 12:15 UTC
    query = soql.select_contacts(FIELDS, start, end)
    assert query == (
        "SELECT Id, Email, Account.Name, SystemModstamp FROM Contact "
        "WHERE SystemModstamp >= 2026-01-01T12:00:00+00:00 AND SystemModstamp < 2026-01-01T12:15:00+00:00 "
        "ORDER BY SystemModstamp, Id"
    )


def test_window_needs_aware_whole_second_bounds():
    with pytest.raises(ValueError):
        soql.select_contacts(FIELDS, datetime(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(ValueError):
        soql.select_contacts(FIELDS, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 0, 5, tzinfo=UTC))
    with pytest.raises(ValueError):
        soql.select_contacts(FIELDS, datetime(2026, 1, 1, tzinfo=UTC), None)


def test_full_read_has_no_where():
    assert soql.select_contacts_unordered(["Id"]) == "SELECT Id FROM Contact"


@pytest.mark.parametrize("bad", ["Id, (SELECT Id FROM Cases)", "Email'--", "1Id", "Account..Name", ""])
def test_field_names_are_checked(bad):
    with pytest.raises(ValueError):
        soql.check_fields([bad])


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("o'brien@example.com", r"'o\'brien@example.com'"),
        ("back\\slash@example.com", r"'back\\slash@example.com'"),
        ('quo"te@example.com', r"'quo\"te@example.com'"),
        ("zoë.ñandú@exämple.com", "'zoë.ñandú@exämple.com'"),
        ("line\nbreak@example.com", r"'line\nbreak@example.com'"),
    ],
)
def test_in_values_are_escaped(value, literal):
    (query,) = soql.chunk_in_queries(["Id"], "Email", [value])
    assert query == f"SELECT Id FROM Contact WHERE Email IN ({literal})"


def test_in_lists_respect_byte_and_count_budgets():
    values = [f"person{i}.o'neil@example.com" for i in range(1000)] + ["person1.o'neil@example.com", "", None]
    queries = list(soql.chunk_in_queries(["Id", "Email"], "Email", values, max_query_bytes=4000, max_values=150))
    assert all(len(quote_plus(q)) <= 4000 for q in queries)
    assert all(q.count("@example.com") <= 150 for q in queries)
    assert sum(q.count("@example.com") for q in queries) == 1000  # blanks and duplicates dropped
    assert len(queries) > 1


def test_a_value_longer_than_soql_allows_is_refused():
    with pytest.raises(ValueError):
        list(soql.chunk_in_queries(["Id"], "Email", ["x" * 4001]))


def test_pendulum_bounds_as_airflow_passes_them():
    import pendulum

    start = pendulum.datetime(2026, 1, 1, 13, 0, tz="Europe/Paris")
    query = soql.select_contacts(["Id"], start, start.add(minutes=15))
    assert "SystemModstamp >= 2026-01-01T12:00:00+00:00 AND SystemModstamp < 2026-01-01T12:15:00+00:00" in query
