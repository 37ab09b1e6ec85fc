"""Normalisation: what each transform does, and that normalising twice equals normalising once."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.sync_logic.mapping import FieldMapping, PhoneConfig
from include.sync_logic.normalize import (
    apply_transforms,
    as_text,
    email_key,
    is_valid_email,
    lowercase,
    phone_e164,
    strip,
    title_case,
    truncate,
)

US = PhoneConfig(default_country_code="1", national_number_length=10)
UK = PhoneConfig(default_country_code="44", national_number_length=10, trunk_prefix="0")


def values(items: list) -> pd.Series:
    return pd.Series(items, dtype="object")


def listed(series: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in series]


def test_blanks_are_missing():
    assert listed(as_text(values(["", "   ", None, "x", 5]))) == [None, None, None, "x", "5"]


def test_strip_lowercase_title_truncate():
    assert listed(strip(values(["  Ann  ", "\tBo\n"]))) == ["Ann", "Bo"]
    assert listed(lowercase(values(["Ann@Example.COM"]))) == ["ann@example.com"]
    assert listed(title_case(values(["mary-jane o'neil"]))) == ["Mary-Jane O'Neil"]
    assert listed(truncate(values(["abcdef", "ab", None]), 3)) == ["abc", "ab", None]


@pytest.mark.parametrize(
    ("config", "raw", "expected"),
    [
        (US, "(415) 555-0100", "+14155550100"),
        (US, "415.555.0100", "+14155550100"),
        (US, "1 415 555 0100", "+14155550100"),
        (US, "+1 (415) 555-0100", "+14155550100"),
        (US, "0044 20 7946 0000", "+442079460000"),
        (US, "+44 20 7946 0000", "+442079460000"),
        (UK, "020 7946 0000", "+442079460000"),
        (US, "+44 (0)20 7946 0000", "+442079460000"),
        (US, "+44(0)118 4960103", "+441184960103"),
        (UK, "20 7946 0000", "+442079460000"),
        (US, "555-0100", "555-0100"),  # too short to be sure: kept as typed
        (US, "+1 415 555 0100 ext 12", "+1 415 555 0100 ext 12"),  # extension: kept
        (US, "call the office", "call the office"),
        (US, "  ", None),
    ],
)
def test_phone_e164(config, raw, expected):
    assert listed(phone_e164(values([raw]), config)) == [expected]


def test_email_key_and_validation():
    assert listed(email_key(values([" Ann@Example.COM ", "", None]))) == ["ann@example.com", None, None]
    checks = ["ann@example.com", "a.b+tag@sub.example.co.uk", "bad@", "no at.com", "a b@x.com", "a@x", None]
    assert is_valid_email(values(checks)).tolist() == [True, True, False, False, False, False, True]


def test_truncate_transform_uses_the_smaller_limit_and_runs_last():
    item = FieldMapping(
        name="title",
        salesforce="Title",
        hubspot="jobtitle",
        transforms=("truncate", "strip"),
        max_length={"salesforce": 5},
    )
    assert listed(apply_transforms(values(["  abcdefgh", "ab   "]), item, US)) == ["abcde", "ab"]


TEXT = st.one_of(st.none(), st.text(max_size=30), st.from_regex(r"[+0 ()0-9.\-]{0,20}", fullmatch=True))
ALL_TRANSFORMS = st.lists(st.sampled_from(["strip", "lowercase", "title_case", "phone_e164", "truncate"]))


@settings(max_examples=300, deadline=None)
@given(items=st.lists(TEXT, max_size=20), transforms=ALL_TRANSFORMS, phone=st.sampled_from([US, UK]))
def test_normalising_twice_equals_once(items, transforms, phone):
    if "phone_e164" in transforms and "truncate" in transforms:
        transforms = [t for t in transforms if t != "truncate"]  # the mapping refuses this pair
    item = FieldMapping(
        name="f",
        salesforce="F",
        hubspot="f",
        transforms=tuple(transforms),
        max_length={"salesforce": 12},
    )
    once = apply_transforms(values(items), item, phone)
    twice = apply_transforms(once, item, phone)
    assert listed(twice) == listed(once)


@settings(max_examples=200, deadline=None)
@given(items=st.lists(TEXT, max_size=20))
def test_email_key_is_idempotent(items):
    once = email_key(values(items))
    assert listed(email_key(once)) == listed(once)
