"""Emails and phones are kept out of logs, the view and alerts unless log_pii is on."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_sync.pii import mask_fields, redact, redact_column


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Email address eric.york.581@hotmail.lan is invalid", "Email address <email> is invalid"),
        ("Email: invalid email address: a@b", "Email: invalid email address: <email>"),
        ("phone +554867821503 refused", "phone <phone> refused"),
        ("call (415) 555-0199 now", "call <phone> now"),
        ("call 415-555-0199 now", "call <phone> now"),
        ("duplicate of 003SB0000000056YAA", "duplicate of 003SB0000000056YAA"),
        ("hubspot id 1188 and 12345678901 stay", "hubspot id 1188 and 12345678901 stay"),
        ("FirstName too long (107 > 40)", "FirstName too long (107 > 40)"),
    ],
)
def test_redact_hides_emails_and_phones_but_not_ids(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_log_pii_shows_everything() -> None:
    text = "eric@x.lan +15550100"
    assert redact(text, log_pii=True) == text


def test_mask_fields_masks_by_field_name_whatever_the_value() -> None:
    written = {"email": "a@b.co", "Phone": "350533944", "mobilephone": "", "jobtitle": "Chef", "link": "003X"}
    assert mask_fields(written) == {
        "email": "<email>",
        "Phone": "<phone>",
        "mobilephone": "",
        "jobtitle": "Chef",
        "link": "003X",
    }
    assert mask_fields(written, log_pii=True) == written


def test_a_reason_column_is_redacted_value_by_value_and_keeps_its_gaps() -> None:
    reasons = pd.Series(["Email address eric@x.lan is invalid", None, "duplicate of 003SB0000000056YAA"])
    redacted = redact_column(reasons)
    assert redacted.isna().tolist() == [False, True, False]
    assert redacted.dropna().tolist() == ["Email address <email> is invalid", reasons[2]]
    assert redact_column(reasons, log_pii=True).equals(reasons)
