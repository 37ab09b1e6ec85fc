"""HubSpot's v3 signature: HubSpot's own published vector, the documented algorithm recomputed here, the URI
decoding rules and the 5-minute window."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hubspot.utils.signature import Signature

from crm_sync.events.signature import WINDOW_MS, Refusal, sign, signed_uri, verify

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
URI = "https://www.example.com/webhook_uri"
BODY = b"{'example_field':'example_value'}"


def documented(secret: str, method: str, uri: str, body: str, timestamp: str) -> str:
    """The docs' recipe, spelled out: UTF-8 of method + URI + body + timestamp, HMAC-SHA256, base64."""
    source = f"{method}{uri}{body}{timestamp}".encode()
    return base64.b64encode(hmac.new(secret.encode("utf-8"), source, hashlib.sha256).digest()).decode()


def test_hubspot_published_vector() -> None:
    # The vector of HubSpot's Python SDK tests (tests/spec/utils/test_signature.py).
    assert sign(SECRET, "POST", URI, BODY, "1693657560000") == "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y="


@pytest.mark.parametrize(
    ("uri", "body"),
    [
        ("https://crm.example.org/crm-sync-events/hubspot", '[{"eventId":1,"objectId":123}]'),
        ("http://127.0.0.1:8080/crm-sync-events/hubspot?portal=62515&x=1", "[]"),
        ("https://crm.example.org/crm-sync-events/hubspot", '[{"propertyValue":"Zoë Ångström 東京"}]'),
    ],
)
def test_matches_the_documented_recipe_and_the_hubspot_sdk(uri: str, body: str) -> None:
    ts = "1790000001000"
    ours = sign("app-client-secret", "POST", uri, body.encode(), ts)
    assert ours == documented("app-client-secret", "POST", uri, body, ts)
    assert ours == Signature.get_signature("app-client-secret", body, "v3", uri, "POST", ts)


def test_the_uri_is_signed_with_the_documented_escapes_decoded_and_no_others() -> None:
    raw = "https://example.com/hook?src=hs%3Aapp%2fv3&x=%28a%29&q=%20%26%3D&m=a%40b%21%24%27%2A%2C%3B%3F"
    assert signed_uri(raw) == "https://example.com/hook?src=hs:app/v3&x=(a)&q=%20%26%3D&m=a@b!$'*,;?"
    body = b"[]"
    assert sign("s", "POST", raw, body, "1") == documented("s", "POST", signed_uri(raw), "[]", "1")
    assert sign("s", "POST", raw, body, "1") != documented("s", "POST", raw, "[]", "1")


def request(**overrides: object) -> dict[str, object]:
    ts = 1_790_000_000_000
    base: dict[str, object] = {
        "client_secret": SECRET,
        "method": "POST",
        "uri": URI,
        "body": BODY,
        "signature": sign(SECRET, "POST", URI, BODY, str(ts)),
        "timestamp": str(ts),
        "now_ms": ts + 1000,
    }
    return {**base, **overrides}


def test_a_signed_request_in_the_window_passes() -> None:
    verdict = verify(**request())  # type: ignore[arg-type]
    assert verdict.ok and verdict.refusal is None and verdict.age_ms == 1000


@pytest.mark.parametrize(
    ("overrides", "refusal"),
    [
        ({"signature": None}, Refusal.MISSING),
        ({"signature": ""}, Refusal.MISSING),
        ({"timestamp": None}, Refusal.MISSING),
        ({"timestamp": "1790000000000.0"}, Refusal.MISSING),
        ({"timestamp": "-1790000000000"}, Refusal.MISSING),
        ({"timestamp": "１７９"}, Refusal.MISSING),  # full-width digits: str.isdigit says yes, int() would take them
        ({"body": BODY + b" "}, Refusal.FORGED),
        ({"client_secret": "another-secret"}, Refusal.FORGED),
        ({"method": "PUT"}, Refusal.FORGED),
        ({"uri": URI.replace("https", "http")}, Refusal.FORGED),
        ({"uri": URI + "/"}, Refusal.FORGED),
        ({"uri": URI + "?x=1"}, Refusal.FORGED),
        ({"signature": sign(SECRET, "POST", URI, BODY, "1790000000001")}, Refusal.FORGED),
        ({"now_ms": 1_790_000_000_000 + WINDOW_MS + 1}, Refusal.STALE),
        ({"now_ms": 1_790_000_000_000 - WINDOW_MS - 1}, Refusal.STALE),
    ],
)
def test_refusals_say_why(overrides: dict[str, object], refusal: Refusal) -> None:
    assert verify(**request(**overrides)).refusal is refusal  # type: ignore[arg-type]


def test_the_window_edge_is_five_minutes_either_way() -> None:
    ts = 1_790_000_000_000
    assert verify(**request(now_ms=ts + WINDOW_MS)).ok  # type: ignore[arg-type]
    assert verify(**request(now_ms=ts - WINDOW_MS)).ok  # type: ignore[arg-type]
