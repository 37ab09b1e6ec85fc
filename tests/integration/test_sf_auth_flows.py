"""Salesforce OAuth flows as a real org grants them: client credentials only on the My Domain, JWT bearer
with the login host as audience whatever host serves the token, each refusal with Salesforce's answer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import jwt
import pytest
import requests
import trustme
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from crm_sync.hooks.salesforce import SalesforceContactsHook
from crm_sync.hooks.sf_auth import JWT_GRANT
from sandbox.testing import SandboxProcess
from tests.integration.conftest import wired_sandbox

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 1, 13, 0, tzinfo=UTC)
USER = "integration@sandbox.example.com"
KEY = "sandbox-consumer-key"
LOGIN_HOST = "127.0.0.2"  # plays login.salesforce.com; the usual 127.0.0.1 listener plays the My Domain


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """An RSA key and its certificate (the one uploaded to the connected app): (key PEM, cert path)."""
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    cert = tmp_path_factory.mktemp("jwt") / "connected-app.crt"
    cert.write_bytes(ca.cert_pem.bytes())
    return ca.private_key_pem.bytes().decode(), str(cert)


@pytest.fixture(scope="module")
def crm(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, signing_key: tuple[str, str]
) -> Iterator[SandboxProcess]:
    with wired_sandbox(
        tmp_path_factory.mktemp("sandbox"),
        redis_url,
        11,
        NOW,
        salesforce_login_host=LOGIN_HOST,
        salesforce_jwt_cert=signing_key[1],
    ) as sandbox:
        yield sandbox


def _hook(monkeypatch: pytest.MonkeyPatch, login: str | None = None, **extra: str) -> SalesforceContactsHook:
    conn = {"conn_type": "salesforce", "login": login, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_FLOW", json.dumps(conn))
    return SalesforceContactsHook(salesforce_conn_id="salesforce_flow")


def _jwt_hook(
    monkeypatch: pytest.MonkeyPatch, login_url: str, private_key: str, **extra: str
) -> SalesforceContactsHook:
    return _hook(monkeypatch, USER, login_url=login_url, consumer_key=KEY, private_key=private_key, **extra)


def test_client_credentials_on_my_domain(crm, monkeypatch):
    hook = _hook(monkeypatch, login_url=crm.salesforce_url, consumer_key=KEY, consumer_secret="sandbox-consumer-secret")
    assert hook.get_conn().sf_instance == crm.salesforce_url.removeprefix("https://")


def test_client_credentials_refused_on_a_generic_login_host(crm, monkeypatch):
    """What login.salesforce.com answers: the sandbox's generic host refuses the grant."""
    hook = _hook(
        monkeypatch, login_url=crm.salesforce_login_url, consumer_key=KEY, consumer_secret="sandbox-consumer-secret"
    )
    with pytest.raises(SalesforceAuthenticationFailed, match="request not supported on this domain"):
        hook.get_conn()


@pytest.mark.parametrize("login_url", [None, "https://login.salesforce.com", "https://test.salesforce.com/"])
def test_client_credentials_with_a_generic_login_url_is_refused_before_any_request(monkeypatch, login_url):
    extra = {"consumer_key": KEY, "consumer_secret": "s"} | ({"login_url": login_url} if login_url else {})
    hook = _hook(monkeypatch, **extra)
    with pytest.raises(ValueError, match=r"https://<your-domain>\.my\.salesforce\.com"):
        hook.get_conn()
    assert hook.api_calls == 0


def test_jwt_bearer_from_the_login_host_and_from_my_domain(crm, monkeypatch, signing_key):
    private_key, _ = signing_key
    via_login = _jwt_hook(monkeypatch, crm.salesforce_login_url, private_key)
    assert via_login._credentials.flow == "jwt_bearer"
    # The generic host answers with the org's own instance URL (the My Domain).
    assert via_login.get_conn().sf_instance == crm.salesforce_url.removeprefix("https://")
    assert via_login.test_connection()[0]
    via_my_domain = _jwt_hook(monkeypatch, crm.salesforce_url, private_key)
    assert via_my_domain._credentials.audience == "https://login.salesforce.com"
    assert via_my_domain.test_connection() == (True, "Connection successfully tested")
    sandbox_org = _jwt_hook(monkeypatch, crm.salesforce_url, private_key, jwt_audience="https://test.salesforce.com")
    assert sandbox_org.test_connection()[0]


def test_jwt_bearer_audience_must_be_the_login_host(crm, monkeypatch, signing_key):
    hook = _jwt_hook(monkeypatch, crm.salesforce_url, signing_key[0], jwt_audience=crm.salesforce_url)
    with pytest.raises(SalesforceAuthenticationFailed, match="audience is invalid"):
        hook.get_conn()


def test_jwt_bearer_signed_by_another_key_is_refused(crm, monkeypatch):
    other = trustme.CA(key_type=trustme.KeyType.RSA).private_key_pem.bytes().decode()
    with pytest.raises(SalesforceAuthenticationFailed, match="invalid assertion"):
        _jwt_hook(monkeypatch, crm.salesforce_url, other).get_conn()


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"exp": int(time.time()) - 5}, "expired authorization code"),
        ({"iss": "someone-else"}, "client identifier invalid"),
        ({"sub": "nobody@example.com"}, "user hasn't approved this consumer"),
        ({"aud": None}, "invalid assertion"),
    ],
)
def test_jwt_bearer_claims_are_checked(crm, signing_key, claims, error):
    base = {"iss": KEY, "sub": USER, "aud": "https://login.salesforce.com", "exp": int(time.time()) + 180}
    payload = {k: v for k, v in (base | claims).items() if v is not None}
    assertion = jwt.encode(payload, signing_key[0], algorithm="RS256")
    with requests.Session() as session:
        session.trust_env = False
        answer = session.post(
            f"{crm.salesforce_url}/services/oauth2/token",
            data={"grant_type": JWT_GRANT, "assertion": assertion},
            verify=crm.ca_bundle,
        )
    assert answer.status_code == 400 and answer.json()["error_description"] == error
