"""OAuth 2.0 token endpoint and session bookkeeping, plus the org's rolling 24-hour API budget.

Token responses carry access_token, instance_url, id, token_type, issued_at (ms since epoch) and
signature: base64 HMAC-SHA256 of id + issued_at keyed with the consumer secret, as Salesforce signs
them. Sessions live until `expire_all()` (the admin `expire-sessions`); idle timeout is not modelled.

Grants: client credentials, username-password and the JWT bearer flow (RS256 assertion checked
against the connected app's certificate; `iss` = consumer key, `sub` = username, `aud` = login or
test.salesforce.com whatever host serves the token, `exp` in the future). Client credentials is
granted only on the org's My Domain: a generic login host (login/test.salesforce.com) answers 400
invalid_grant "request not supported on this domain" (pozil/pub-sub-api-node-client#58).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs

import jwt
from cryptography import x509

from sandbox.salesforce.ids import ORG_PREFIX, USER_PREFIX, to18

ORG_ID = to18(f"{ORG_PREFIX}SB0000000001")
USER_ID = to18(f"{USER_PREFIX}SB0000000001")
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass(frozen=True)
class Credentials:
    consumer_key: str
    consumer_secret: str
    username: str
    password: str
    jwt_certificate: bytes | None = None  # PEM uploaded to the connected app ("Use digital signatures")


class OAuthError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class Sessions:
    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self._tokens: set[str] = set()

    def issue(
        self, body: bytes, basic_auth: str | None, instance_url: str, now: datetime, *, generic_host: bool = False
    ) -> dict[str, str]:
        """Answer a POST /services/oauth2/token form body, or raise OAuthError.

        `generic_host`: the request came to the host playing login.salesforce.com, not the My Domain.
        """
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if basic_auth and basic_auth.lower().startswith("basic "):
            decoded = base64.b64decode(basic_auth[6:].strip()).decode("utf-8", "replace")
            client_id, _, client_secret = decoded.partition(":")
        grant = form.get("grant_type")
        if not grant:
            raise OAuthError("invalid_request", "grant type is missing")
        if grant not in ("client_credentials", "password", JWT_GRANT):
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        if grant == JWT_GRANT:
            self._check_assertion(form.get("assertion", ""))
            return self._token(instance_url, now)
        if grant == "client_credentials" and generic_host:
            raise OAuthError("invalid_grant", "request not supported on this domain")
        creds = self.credentials
        if not (
            client_id
            and client_secret is not None
            and hmac.compare_digest(client_id, creds.consumer_key)
            and hmac.compare_digest(client_secret, creds.consumer_secret)
        ):
            raise OAuthError("invalid_client", "invalid client credentials")
        if grant == "password" and not (
            hmac.compare_digest(form.get("username", ""), creds.username)
            and hmac.compare_digest(form.get("password", ""), creds.password)
        ):
            raise OAuthError("invalid_grant", "authentication failure")
        return self._token(instance_url, now)

    def _check_assertion(self, assertion: str) -> None:
        """The JWT bearer checks, with Salesforce's error descriptions."""
        creds = self.credentials
        if creds.jwt_certificate is None:
            raise OAuthError("invalid_grant", "invalid assertion")
        key = x509.load_pem_x509_certificate(creds.jwt_certificate).public_key()
        try:
            claims = jwt.decode(
                assertion,
                key,  # type: ignore[arg-type]
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "require": ["iss", "sub", "aud", "exp"]},
            )
        except jwt.InvalidTokenError as exc:
            raise OAuthError("invalid_grant", "invalid assertion") from exc
        if claims["aud"] not in JWT_AUDIENCES:
            raise OAuthError("invalid_grant", "audience is invalid")
        if not isinstance(claims["exp"], int | float) or claims["exp"] <= time.time():
            raise OAuthError("invalid_grant", "expired authorization code")
        if not hmac.compare_digest(str(claims["iss"]), creds.consumer_key):
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if not hmac.compare_digest(str(claims["sub"]), creds.username):
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")

    def _token(self, instance_url: str, now: datetime) -> dict[str, str]:
        creds = self.credentials
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(72)}"
        self._tokens.add(token)
        identity = f"{instance_url}/id/{ORG_ID}/{USER_ID}"
        issued_at = str(int(now.timestamp() * 1000))
        digest = hmac.new(creds.consumer_secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
        return {
            "access_token": token,
            "instance_url": instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": base64.b64encode(digest).decode(),
            "scope": "api",
        }

    def valid(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, token = authorization.partition(" ")
        return scheme.lower() in ("bearer", "oauth") and token.strip() in self._tokens

    def expire_all(self) -> None:
        self._tokens.clear()


class ApiBudget:
    """DailyApiRequests: calls counted over a rolling 24 hours of sandbox time, the org's whole usage:
    `others` is what the org's other integrations use (Sforce-Limit-Info and /limits include it)."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.others = 0
        self._calls: deque[datetime] = deque()
        self._offset = 0  # admin-set extra usage, for testing the limit without 15,000 calls

    def used(self, now: datetime) -> int:
        horizon = now - timedelta(hours=24)
        while self._calls and self._calls[0] <= horizon:
            self._calls.popleft()
        return len(self._calls) + self._offset + self.others

    def exhausted(self, now: datetime) -> bool:
        return self.used(now) >= self.maximum

    def count(self, now: datetime) -> None:
        self._calls.append(now)

    def set_used(self, used: int, now: datetime) -> None:
        self._offset = 0
        self._offset = max(0, used - self.used(now))

    def reset(self) -> None:
        self._calls.clear()
        self._offset = 0
        self.others = 0
