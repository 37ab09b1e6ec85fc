"""The canonical frame: each side's staged rows mapped to canonical field names and normalised values.

Both sides in one shape is what lets reconcile compare them column by column, and what the sync state
stores as the last agreed values.
"""

from __future__ import annotations

import pandas as pd

from include.sync_logic.mapping import MappingConfig
from include.sync_logic.normalize import apply_transforms, as_text, email_key, is_in
from include.sync_logic.sides import Side

# Own id column and link column (the counterpart's id) of each side in the canonical frame.
OWN_ID = {Side.SALESFORCE: "sf_id", Side.HUBSPOT: "hs_id"}
# Column prefix of each side in the wide frame of pairs (see pairing.groups).
PREFIX = {Side.SALESFORCE: "s.", Side.HUBSPOT: "h."}
# Staged column of rows fetched by email: the address asked for, which a CRM may have matched on a
# secondary email (HubSpot's hs_additional_emails) while returning another primary.
MATCHED_KEY = "matched_key"


def to_canonical(frame: pd.DataFrame, side: Side, mapping: MappingConfig) -> pd.DataFrame:
    """One row per contact: the mapped fields by canonical name (normalised) plus identity columns.

    Identity columns: ``sf_id``, ``hs_id`` (own id and link, whichever side), ``modified_at``
    (Salesforce LastModifiedDate, else SystemModstamp; HubSpot lastmodifieddate), ``deleted``,
    ``email_key``. A ``default_if_blank`` placeholder reads as blank on both sides, so a LastName
    filled with "[not provided]" equals a blank HubSpot lastname.
    """
    if side not in {item.value for item in Side}:
        raise ValueError(f"side must be {Side.SALESFORCE} or {Side.HUBSPOT}, not {side!r}")
    side = Side(side)
    frame = frame.reset_index(drop=True)
    out: dict[str, pd.Series] = {}
    for item in mapping.fields:
        value = apply_transforms(column(frame, item.on(side)), item, mapping.phone)
        if item.default_if_blank:
            placeholders = apply_transforms(pd.Series(list(item.default_if_blank.values())), item, mapping.phone)
            value = value.mask(is_in(value, placeholders))
        out[item.name] = value
    if side == Side.SALESFORCE:
        modified = _timestamps(column(frame, "LastModifiedDate")).fillna(_timestamps(column(frame, "SystemModstamp")))
        deleted = column(frame, "IsDeleted")
    else:
        modified = _timestamps(column(frame, "lastmodifieddate"))
        deleted = column(frame, "archived")
    identity = identity_columns(frame, side, mapping)
    out["sf_id"], out["hs_id"] = identity["sf_id"], identity["hs_id"]
    out["modified_at"] = modified
    out["deleted"] = deleted.fillna(False).astype(bool)
    out["email_key"] = identity["email_key"]
    return pd.DataFrame(out, index=frame.index)


def identity_columns(frame: pd.DataFrame, side: Side, mapping: MappingConfig) -> pd.DataFrame:
    """What relates contacts to each other: ``sf_id``, ``hs_id`` (own id and link) and ``email_key``."""
    own, link = ("Id", mapping.link.salesforce) if side == Side.SALESFORCE else ("id", mapping.link.hubspot)
    ids = {OWN_ID[side]: _ids(column(frame, own)), OWN_ID[side.other]: _ids(column(frame, link))}
    return pd.DataFrame(
        {"sf_id": ids["sf_id"], "hs_id": ids["hs_id"], "email_key": email_key_of(frame, side, mapping)},
        index=frame.index,
    )


def email_key_of(frame: pd.DataFrame, side: Side, mapping: MappingConfig) -> pd.Series:
    """The match key (normalised ``match_on`` field) of staged rows; the key asked for where a lookup found them."""
    own = email_key(column(frame, mapping.match_field.on(side)))
    asked = email_key(column(frame, MATCHED_KEY))
    return asked.fillna(own) if MATCHED_KEY in frame.columns else own


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A staged column, or all-missing when the extract did not bring it."""
    if name in frame.columns:
        return frame[name]
    return pd.Series(pd.NA, index=frame.index, dtype="object")


def equal(a: pd.Series, b: pd.Series) -> pd.Series:
    """Element-wise equality where two missing values are equal too."""
    return (a == b).fillna(False).astype(bool) | (a.isna() & b.isna())


def _ids(values: pd.Series) -> pd.Series:
    return as_text(values).str.strip()


def _timestamps(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, errors="coerce")
