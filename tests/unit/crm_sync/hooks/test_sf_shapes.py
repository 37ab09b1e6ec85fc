"""Salesforce records into the staged frame shape, and the choice of OAuth flow from a connection."""

from __future__ import annotations

import jwt
import pandas as pd
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crm_sync.hooks.sf_auth import SalesforceCredentials
from crm_sync.hooks.sf_frames import csv_to_frame, records_to_frame

FIELDS = ["Id", "Email", "Account.Name", "SystemModstamp", "IsDeleted"]


def test_rest_records_are_flattened_and_typed():
    records = [
        {
            "attributes": {"type": "Contact"},
            "Id": "003A",
            "Email": "zoë@example.com",
            "Account": {"attributes": {"type": "Account"}, "Name": "O'Hare & Co"},
            "SystemModstamp": "2026-01-01T12:00:00.000+0000",
            "IsDeleted": False,
        },
        {
            "Id": "003B",
            "Email": None,
            "Account": None,
            "SystemModstamp": "2026-01-01T12:01:00.000+0000",
            "IsDeleted": True,
        },
    ]
    frame = records_to_frame(records, FIELDS)
    assert list(frame.columns) == FIELDS
    assert frame.loc[0, "Account.Name"] == "O'Hare & Co" and pd.isna(frame.loc[1, "Account.Name"])
    assert str(frame["SystemModstamp"].dt.tz) == "UTC"
    assert frame["IsDeleted"].tolist() == [False, True]


def test_bulk_csv_is_read_with_blanks_as_nulls():
    text = 'Id,Email,Account.Name,SystemModstamp,IsDeleted\n003A,"a,b@example.com",,2026-01-01T12:00:00.000Z,false\n'
    frame = csv_to_frame(text, FIELDS)
    assert frame.loc[0, "Email"] == "a,b@example.com"
    assert pd.isna(frame.loc[0, "Account.Name"])
    assert frame.loc[0, "SystemModstamp"] == pd.Timestamp("2026-01-01T12:00:00Z")
    assert frame["IsDeleted"].tolist() == [False]


def test_flow_choice_follows_the_contract():
    base = {"consumer_key": "ck", "consumer_secret": "cs"}
    assert SalesforceCredentials.from_connection(None, None, base).flow == "client_credentials"
    assert SalesforceCredentials.from_connection("u", "p", {**base, "security_token": "t"}).flow == "password"
    creds = SalesforceCredentials.from_connection(None, None, {})
    with pytest.raises(ValueError):
        _ = creds.flow
    assert SalesforceCredentials.from_connection(None, None, base).login_url == "https://login.salesforce.com"


def test_password_flow_appends_the_security_token_and_repr_hides_secrets():
    creds = SalesforceCredentials.from_connection(
        "u@example.com", "pw", {"consumer_key": "ck", "consumer_secret": "cs", "security_token": "tok"}
    )
    assert creds.token_request()["password"] == "pwtok"
    assert "pw" not in repr(creds) and "cs" not in repr(creds)


def test_jwt_bearer_assertion_is_signed_for_the_login_url():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    creds = SalesforceCredentials.from_connection(
        "u@example.com", None, {"consumer_key": "ck", "private_key": pem, "login_url": "https://test.salesforce.com/"}
    )
    form = creds.token_request()
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(
        form["assertion"], key.public_key(), algorithms=["RS256"], audience="https://test.salesforce.com"
    )
    assert claims["iss"] == "ck" and claims["sub"] == "u@example.com"
