"""HubSpot's failures, each sorted into the shared classes: what hubspot-api-client and urllib3 raise, in HubSpot's
documented bodies (pure: no connection)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import urllib3
from hubspot.crm.contacts import ApiException
from hubspot.crm.properties import ApiException as PropertiesApiException

from crm_sync.hooks.errors import TransientError
from crm_sync.hooks.hs_errors import HubSpotDailyLimitReached, HubSpotError, classify, pool_pause


def answer(
    status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None, **kw
) -> ApiException:
    """An ApiException as the client raises it for an answer (bytes body, urllib3 headers)."""
    exc = kw.get("kind", ApiException)(status=status, reason=kw.get("reason", "refused"))
    exc.body = json.dumps(body).encode() if body is not None else None
    exc.headers = urllib3.HTTPHeaderDict(headers or {})
    return exc


def test_a_spent_daily_limit_fails_at_once_and_says_when_it_resets():
    error = classify(answer(429, {"policyName": "DAILY", "category": "RATE_LIMITS"}, {"Retry-After": "7200"}))
    assert isinstance(error, HubSpotDailyLimitReached) and (error.status, error.code) == (429, "RATE_LIMITS")
    assert error.retry_after == 7200.0 and "(Retry-After: 2.0 h)" in str(error) and "resets" in str(error)


@pytest.mark.parametrize("policy", ["TEN_SECONDLY_ROLLING", "SECONDLY"])
def test_the_short_limits_are_transient(policy):
    error = classify(answer(429, {"policyName": policy}))
    assert isinstance(error, TransientError) and error.status == 429 and str(error) == f"HTTP 429 {policy}"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(status):
    error = classify(answer(status, {"message": "internal"}))
    assert isinstance(error, TransientError) and error.status == status


@pytest.mark.parametrize(
    ("status", "body", "record_level"),
    [
        (409, {"category": "CONFLICT", "message": "Contact already exists. Existing ID: 7"}, True),
        (409, {"category": "OBJECT_ALREADY_EXISTS", "message": "A contact with email a@b.c exists"}, True),
        (404, {"category": "OBJECT_NOT_FOUND", "message": "resource not found"}, True),
        (
            400,
            {"category": "VALIDATION_ERROR", "message": 'Property values were not valid: [{"error": "INVALID_EMAIL"}]'},
            True,
        ),
        (400, {"category": "VALIDATION_ERROR", "message": "Duplicate IDs found in batch input"}, True),
        (400, {"category": "VALIDATION_ERROR", "message": "Invalid input JSON"}, False),
        (401, {"category": "INVALID_AUTHENTICATION", "message": "token expired"}, False),
    ],
)
def test_refusals_are_permanent_and_only_those_about_a_record_are_record_level(status, body, record_level):
    error = classify(answer(status, body))
    assert isinstance(error, HubSpotError) and (error.status, error.code) == (status, body["category"])
    assert error.message == body["message"] and error.record_level is record_level
    assert body["message"] not in str(error)  # HubSpot echoes values in its messages


def test_configuration_refusals_name_their_fix():
    scopes = {"category": "MISSING_SCOPES", "errors": [{"context": {"requiredScopes": ["crm.objects.contacts.write"]}}]}
    error = classify(answer(403, scopes), idempotent=False)
    assert str(error).startswith(
        "HubSpot API error: HTTP 403 MISSING_SCOPES: the private app lacks scope(s) crm.objects"
    )
    missing = 'Property values were not valid: [{"error": "PROPERTY_DOESNT_EXIST", "name": "tier"}]'
    error = classify(answer(400, {"category": "VALIDATION_ERROR", "message": missing}, kind=PropertiesApiException))
    assert "PROPERTY_DOESNT_EXIST tier" in str(error) and not error.record_level


def test_no_answer_is_a_connection_error_with_its_last_line():
    error = classify(answer(0, reason="Connection refused\n[SSL: WRONG_VERSION_NUMBER] wrong version number"))
    assert isinstance(error, HubSpotError) and (error.status, error.code) == (0, "CONNECTION")
    assert str(error).endswith("[SSL: WRONG_VERSION_NUMBER] wrong version number")


def test_an_untrusted_certificate_is_permanent():
    raised = urllib3.exceptions.MaxRetryError(None, "/crm", urllib3.exceptions.SSLError("certificate verify failed"))
    error = classify(raised)
    assert isinstance(error, HubSpotError) and error.code == "CONNECTION" and "certificate verify failed" in str(error)


@pytest.mark.parametrize(
    "raised",
    [
        urllib3.exceptions.ProtocolError("Connection aborted."),
        urllib3.exceptions.ReadTimeoutError(None, "/crm", "read timed out"),
        urllib3.exceptions.MaxRetryError(None, "/crm", urllib3.exceptions.NewConnectionError(None, "refused")),
    ],
)
def test_a_dropped_connection_or_a_timeout_is_transient_for_an_idempotent_call(raised):
    error = classify(raised)
    assert isinstance(error, TransientError) and error.status is None


def test_a_non_idempotent_call_is_resent_only_when_it_cannot_have_been_sent():
    not_sent = urllib3.exceptions.MaxRetryError(None, "/merge", urllib3.exceptions.NewConnectionError(None, "refused"))
    assert isinstance(classify(not_sent, idempotent=False), TransientError)
    error = classify(urllib3.exceptions.ReadTimeoutError(None, "/merge", "read timed out"), idempotent=False)
    assert isinstance(error, HubSpotError) and (error.status, error.code) == (0, "NOT_RESENT")
    assert "may have been applied" in str(error)


def test_a_429_naming_no_wait_pauses_the_pool_for_its_limits_window():
    assert pool_pause(answer(429, {"policyName": "TEN_SECONDLY_ROLLING"})) == 10.0
    assert pool_pause(answer(429, {"policyName": "SECONDLY"})) == 1.0
    assert pool_pause(answer(429, {"policyName": "TEN_SECONDLY_ROLLING"}, {"Retry-After": "3"})) is None
    assert pool_pause(answer(429, {"policyName": "DAILY"})) is None
    assert pool_pause(answer(503, {})) is None
