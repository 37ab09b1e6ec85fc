"""Salesforce OAuth 2.0 token requests against any auth host (`{login_url}/services/oauth2/token`).

simple-salesforce only logs in to `https://{domain}.salesforce.com`, so the hook gets the token itself
and hands simple-salesforce the instance URL and access token from the token response. Three flows, in
the order they are chosen: JWT bearer (a private key is set), username-password (a password is set),
client credentials (consumer key and secret only; the recommended flow).

Client credentials is granted only on the org's My Domain token endpoint; login/test.salesforce.com
answer 400 invalid_grant "request not supported on this domain" (pozil/pub-sub-api-node-client#58), so
that combination is refused before any request. A JWT bearer assertion's audience stays
login.salesforce.com (test.salesforce.com for sandboxes) even when the token comes from a My Domain
(Salesforce Help, "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration"): extra `jwt_audience`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from simple_salesforce.exceptions import SalesforceAuthenticationFailed

from crm_sync.hooks.sf_errors import classify_answer

DEFAULT_LOGIN_URL = "https://login.salesforce.com"
GENERIC_LOGIN_HOSTS = ("login.salesforce.com", "test.salesforce.com")
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class SalesforceToken:
    access_token: str
    instance_url: str


@dataclass(frozen=True)
class SalesforceCredentials:
    """What a `salesforce` connection holds; `repr` hides the secrets."""

    login_url: str
    consumer_key: str | None
    consumer_secret: str | None
    username: str | None
    password: str | None
    security_token: str | None
    private_key: str | None
    jwt_audience: str | None = None

    def __repr__(self) -> str:
        return f"SalesforceCredentials(login_url={self.login_url!r}, flow={self.flow!r})"

    @property
    def flow(self) -> str:
        if self.private_key and self.username and self.consumer_key:
            return "jwt_bearer"
        if self.username and self.password and self.consumer_key and self.consumer_secret:
            return "password"
        if self.consumer_key and self.consumer_secret:
            return "client_credentials"
        raise ValueError(
            "salesforce connection: set extras consumer_key + consumer_secret (client credentials), "
            "login + consumer_key + private_key/private_key_file_path (JWT bearer), or "
            "login + password + consumer_key + consumer_secret (username-password)"
        )

    @classmethod
    def from_connection(cls, login: str | None, password: str | None, extras: dict[str, Any]) -> SalesforceCredentials:
        def extra(name: str) -> str | None:
            value = extras.get(name) or extras.get(f"extra__salesforce__{name}")
            return str(value) if value else None

        private_key = extra("private_key")
        key_path = extra("private_key_file_path")
        if not private_key and key_path:
            private_key = Path(key_path).read_text()
        return cls(
            login_url=(extra("login_url") or DEFAULT_LOGIN_URL).rstrip("/"),
            consumer_key=extra("consumer_key"),
            consumer_secret=extra("consumer_secret"),
            username=login or None,
            password=password or None,
            security_token=extra("security_token"),
            private_key=private_key,
            jwt_audience=extra("jwt_audience"),
        )

    def token_request(self) -> dict[str, str]:
        """Form fields of the token request for the chosen flow."""
        flow = self.flow
        if flow == "jwt_bearer":
            return {"grant_type": JWT_GRANT, "assertion": self._jwt()}
        if flow == "password":
            return {
                "grant_type": "password",
                "client_id": self.consumer_key or "",
                "client_secret": self.consumer_secret or "",
                "username": self.username or "",
                "password": (self.password or "") + (self.security_token or ""),
            }
        if urlsplit(self.login_url).hostname in GENERIC_LOGIN_HOSTS:
            raise ValueError(
                f"salesforce connection: the client credentials flow is only granted on the org's My Domain, "
                f"not on {self.login_url}; set extra login_url to https://<your-domain>.my.salesforce.com "
                "(Setup > My Domain shows it)"
            )
        return {
            "grant_type": "client_credentials",
            "client_id": self.consumer_key or "",
            "client_secret": self.consumer_secret or "",
        }

    @property
    def audience(self) -> str:
        """The JWT `aud`: extra `jwt_audience`, else the login URL when it is login/test.salesforce.com,
        else https://login.salesforce.com (a My Domain URL is never the audience)."""
        if self.jwt_audience:
            return self.jwt_audience.rstrip("/")
        if urlsplit(self.login_url).hostname in GENERIC_LOGIN_HOSTS:
            return self.login_url
        return DEFAULT_LOGIN_URL

    def _jwt(self) -> str:
        import jwt

        claims = {
            "iss": self.consumer_key,
            "sub": self.username,
            "aud": self.audience,
            "exp": int(time.time()) + 180,
        }
        return jwt.encode(claims, str(self.private_key), algorithm="RS256")


def fetch_token(
    session: requests.Session, credentials: SalesforceCredentials, timeout: float = 30.0
) -> SalesforceToken:
    """POST the token request. A transient answer (429, 5xx, the concurrent-request limit) raises TransientError,
    a refusal the provider's SalesforceAuthenticationFailed; a failed connection raises as requests raised it (the
    hook's call path classifies it)."""
    response = session.post(
        f"{credentials.login_url}/services/oauth2/token", data=credentials.token_request(), timeout=timeout
    )
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = classify_answer(response.status_code, response.headers, body)
    if error is not None:
        raise error
    if not isinstance(body, dict):
        body = {}
    if response.status_code != 200 or "access_token" not in body:
        # Salesforce's own error code and description; never the request (it holds the secrets).
        raise SalesforceAuthenticationFailed(body.get("error", response.status_code), body.get("error_description", ""))
    return SalesforceToken(access_token=body["access_token"], instance_url=body["instance_url"])
