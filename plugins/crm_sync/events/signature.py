"""HubSpot's v3 request signature, verified (pure: no Airflow, no web framework).

HubSpot signs each delivery with `X-HubSpot-Signature-v3` = base64(HMAC-SHA256(client secret,
method + URI + body + timestamp)), `X-HubSpot-Request-Timestamp` being the send time in epoch milliseconds.
The URI is the full URL HubSpot called (scheme, host, path, query) with a fixed set of percent-escapes
decoded; a request older than 5 minutes must be refused. A timestamp as far in the future is refused too:
a clock that far off is no reason to widen the replay window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum

WINDOW_MS = 5 * 60 * 1000

# The escapes HubSpot's docs say to decode in the URI before signing; every other escape stays as sent.
_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


class Refusal(StrEnum):
    """Why a request was refused (also the metric name's last part)."""

    MISSING = "missing"  # no signature or timestamp header, or a timestamp that is not epoch milliseconds
    STALE = "stale"  # timestamp outside the 5-minute window
    FORGED = "forged"  # the signature does not match


@dataclass(frozen=True)
class Verdict:
    """The outcome: `refusal` is None when the request is HubSpot's."""

    refusal: Refusal | None
    age_ms: int | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None


def signed_uri(uri: str) -> str:
    """The URI as HubSpot signs it: the listed escapes decoded (either case of hex digits), the rest kept."""
    out: list[str] = []
    i = 0
    while i < len(uri):
        escape = uri[i : i + 3].upper()
        if uri[i] == "%" and escape in _DECODED:
            out.append(_DECODED[escape])
            i += 3
        else:
            out.append(uri[i])
            i += 1
    return "".join(out)


def sign(client_secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The v3 signature of a request (what HubSpot sends; the sandbox and tests sign with it too)."""
    message = method.encode() + signed_uri(uri).encode() + body + timestamp.encode()
    digest = hmac.new(client_secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(
    client_secret: str,
    method: str,
    uri: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now_ms: int,
) -> Verdict:
    """Whether a request is HubSpot's, signed within the window; compares in constant time."""
    if not signature or not timestamp or not timestamp.isascii() or not timestamp.isdigit():
        return Verdict(Refusal.MISSING)
    age_ms = now_ms - int(timestamp)
    if abs(age_ms) > WINDOW_MS:
        return Verdict(Refusal.STALE, age_ms)
    expected = sign(client_secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        return Verdict(Refusal.FORGED, age_ms)
    return Verdict(None, age_ms)
