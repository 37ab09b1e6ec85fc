"""sandbox.generator: deterministic, overlapping and messy in the ways the sync must handle."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.generator import BAD_TLDS, Mess, generate
from sandbox.hubspot.store import email_is_valid

NOW = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def data():
    return generate(2000, seed=11, now=NOW, window=timedelta(minutes=15))


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_same_seed_same_records_and_another_seed_differs(data):
    again = generate(2000, seed=11, now=NOW, window=timedelta(minutes=15))
    assert again.salesforce == data.salesforce
    assert again.hubspot == data.hubspot
    other = generate(2000, seed=12, now=NOW, window=timedelta(minutes=15))
    assert other.salesforce != data.salesforce


def test_sizes_and_shapes(data):
    assert len(data.salesforce) == len(data.hubspot) == 2000
    assert set(data.salesforce[0]) == {
        "Email", "FirstName", "LastName", "Phone", "MobilePhone", "Title", "AccountName", "CreatedDate",
        "LastModifiedDate",
    }  # fmt: skip
    assert set(data.hubspot[0]) == {"properties", "createdAt", "updatedAt"}
    assert set(data.hubspot[0]["properties"]) == {
        "email", "firstname", "lastname", "phone", "mobilephone", "jobtitle", "company",
    }  # fmt: skip


def test_timestamps_are_explicit_and_inside_the_window(data):
    start = NOW - timedelta(minutes=15)
    for rec in data.salesforce:
        assert start <= parse(rec["LastModifiedDate"]) <= NOW
        assert parse(rec["CreatedDate"]) <= parse(rec["LastModifiedDate"])
    for rec in data.hubspot:
        assert start <= parse(rec["updatedAt"]) <= NOW
        assert parse(rec["createdAt"]) <= parse(rec["updatedAt"])


def test_people_overlap_with_case_and_whitespace_differences(data):
    def key(email: str | None) -> str:
        return (email or "").strip().lower()

    sf = {key(r["Email"]) for r in data.salesforce if r["Email"]}
    hs = {key(r["properties"]["email"]) for r in data.hubspot if r["properties"]["email"]}
    assert len(sf & hs) >= 900  # half the people are on both sides
    raw_sf = {r["Email"] for r in data.salesforce if r["Email"]}
    raw_hs = {r["properties"]["email"] for r in data.hubspot if r["properties"]["email"]}
    assert len(raw_sf & raw_hs) < len(sf & hs)  # exact matching misses some
    assert any(e != e.strip() for e in raw_hs)
    assert any(e != e.lower() for e in raw_sf)


def test_the_mess_is_there(data):
    sf_emails = Counter(r["Email"].lower() for r in data.salesforce if r["Email"])
    assert any(n > 1 for n in sf_emails.values()), "Salesforce-side duplicates by email"
    hs_emails = Counter(r["properties"]["email"].strip().lower() for r in data.hubspot if r["properties"]["email"])
    assert all(n == 1 for n in hs_emails.values()), "HubSpot keeps emails unique"
    invalid = [r["Email"] for r in data.salesforce if r["Email"] and not email_is_valid(r["Email"])]
    assert invalid and all(e.rsplit(".", 1)[1] in BAD_TLDS for e in invalid)
    assert any(r["Email"] is None for r in data.salesforce)
    assert any(r["properties"]["lastname"] == "" for r in data.hubspot)
    assert any(len(r["properties"]["firstname"]) > 40 for r in data.hubspot)
    names = [r["FirstName"] for r in data.salesforce]
    assert any("'" in n for n in names) and any('"' in n for n in names) and any("\\" in n for n in names)
    assert any(not n.isascii() for n in names)
    assert data.counts["shared"] == 1000


def test_mess_can_be_turned_off():
    clean = generate(300, seed=1, now=NOW, mess=Mess(duplicates=0, invalid_email=0, missing_email=0))
    emails = [r["Email"] for r in clean.salesforce]
    assert all(emails) and len({e.lower() for e in emails}) == 300


def test_a_chosen_number_of_people_on_both_sides_and_only_valid_data():
    data = generate(1000, seed=4, now=NOW, mess=Mess.valid_only(), shared_people=100)
    assert data.counts["shared"] == 100
    sf = Counter(r["Email"].strip().lower() for r in data.salesforce)
    hs = Counter(r["properties"]["email"].strip().lower() for r in data.hubspot)
    assert len(sf) == len(hs) == 1000, "every contact has its own email on each side"
    assert len(set(sf) & set(hs)) == 100
    assert all(email_is_valid(email) for email in sf)
    assert all(r["properties"]["lastname"] and len(r["properties"]["firstname"]) <= 40 for r in data.hubspot)
    assert generate(10, seed=4, now=NOW, shared_people=50).counts["shared"] == 10
