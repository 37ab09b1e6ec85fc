"""Emails and phones stay out of logs, the sync-health view and alerts unless the run's `log_pii` is on.

Three tools: `redact` for free text (CRM error messages quote the value they refused), `redact_column` for
a column of it (the staged rejects' reasons), `mask_fields` for field-value maps (the fields a run wrote),
which masks by field name so bare-digit phones are caught too. Ids and error codes are left alone: they are
what an operator searches by and fixes a record with. No Airflow imports.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

EMAIL_MARK = "<email>"
PHONE_MARK = "<phone>"
# Both CRMs' names (Salesforce fields, HubSpot properties, canonical names), compared lowercased.
PII_FIELDS = frozenset({"email", "phone", "mobilephone", "hs_additional_emails"})

_EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)*")
# A phone in free text: a leading + or a separator between digit groups, so bare ids (HubSpot's are all
# digits, Salesforce's mix digits and letters) are not mistaken for one.
_PHONE = re.compile(r"(?<![\w+])(?:\+\d[\d ().-]{5,}\d|\(?\d{2,4}\)?[ .-]\d[\d .-]{3,}\d)(?![\w])")


def redact(text: object, *, log_pii: bool = False) -> str:
    """The text with emails and phone numbers replaced, unless `log_pii`."""
    if log_pii:
        return str(text)
    return _PHONE.sub(PHONE_MARK, _EMAIL.sub(EMAIL_MARK, str(text)))


def redact_column(texts: pd.Series, *, log_pii: bool = False) -> pd.Series:
    """Each text of the column `redact`ed; missing values stay missing."""
    return texts if log_pii else texts.map(redact, na_action="ignore")


def mask_fields(fields: Mapping[str, Any], *, log_pii: bool = False) -> dict[str, Any]:
    """Field -> value with email and phone fields masked (non-empty values only), unless `log_pii`."""
    if log_pii:
        return dict(fields)
    return {
        name: (_mark(name) if name.lower() in PII_FIELDS and value not in (None, "") else value)
        for name, value in fields.items()
    }


def _mark(name: str) -> str:
    return EMAIL_MARK if "email" in name.lower() else PHONE_MARK
