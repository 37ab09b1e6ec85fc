"""OAuth 2.0 token endpoint and session bookkeeping, plus the org's rolling 24-hour API budget.

Token responses carry access_token, instance_url, id, token_type, issued_at (ms since epoch) and
signature: base64 HMAC-SHA256 of id + issued_at keyed with the consumer secret, as Salesforce signs
them. Sessions live until `expire_all()` (the admin `expire-sessions`); idle timeout is not modelled.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs

from sandbox.salesforce.ids import ORG_PREFIX, USER_PREFIX, to18

ORG_ID = to18(f"{ORG_PREFIX}SB0000000001")
USER_ID = to18(f"{USER_PREFIX}SB0000000001")


@dataclass(frozen=True)
class Credentials:
    consumer_key: str
    consumer_secret: str
    username: str
    password: str


class OAuthError(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class Sessions:
    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self._tokens: set[str] = set()

    def issue(self, body: bytes, basic_auth: str | None, instance_url: str, now: datetime) -> dict[str, str]:
        """Answer a POST /services/oauth2/token form body, or raise OAuthError."""
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if basic_auth and basic_auth.lower().startswith("basic "):
            decoded = base64.b64decode(basic_auth[6:].strip()).decode("utf-8", "replace")
            client_id, _, client_secret = decoded.partition(":")
        grant = form.get("grant_type")
        if not grant:
            raise OAuthError("invalid_request", "grant type is missing")
        if grant not in ("client_credentials", "password"):
            raise OAuthError("unsupported_grant_type", "grant type not supported")
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
    """DailyApiRequests: calls counted over a rolling 24 hours of sandbox time."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self._calls: deque[datetime] = deque()
        self._offset = 0  # admin-set extra usage, for testing the limit without 15,000 calls

    def used(self, now: datetime) -> int:
        horizon = now - timedelta(hours=24)
        while self._calls and self._calls[0] <= horizon:
            self._calls.popleft()
        return len(self._calls) + self._offset

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
