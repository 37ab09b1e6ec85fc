"""Salesforce's failures, each sorted into the shared classes: what simple-salesforce and requests raise, and
the HTTP answers the session sees (pure: no connection)."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from crm_sync.hooks.errors import TransientError
from crm_sync.hooks.sf_errors import SalesforceApiError, classify, classify_answer

URL = "https://x/services/data/v60.0/query?q=SELECT+Id+FROM+Contact+WHERE+Email+IN+('secret%40example.com')"


def refused(code: str, message: str) -> SalesforceRefusedRequest:
    return SalesforceRefusedRequest(URL, 403, "query", [{"errorCode": code, "message": message}])


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_throttled_and_server_errors_are_transient_with_their_status(status):
    error = classify(SalesforceGeneralError(URL, status, "query", [{"message": "busy"}]))
    assert isinstance(error, TransientError) and error.status == status and str(error) == f"HTTP {status}"


def test_the_concurrent_request_limit_is_transient_but_the_spent_daily_budget_is_not():
    concurrent = classify(refused("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."))
    assert isinstance(concurrent, TransientError) and concurrent.status == 403
    spent = classify(refused("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))
    assert isinstance(spent, SalesforceApiError) and (spent.status, spent.code) == (403, "REQUEST_LIMIT_EXCEEDED")


def test_a_refusal_keeps_code_and_reason_but_not_the_query():
    content = [
        {
            "errorCode": "INVALID_FIELD",
            "message": "\nSELECT Id, Foo__c FROM Contact WHERE Email IN ('secret@example.com')\n"
            "           ^\nERROR at Row:1:Column:12\nNo such column 'Foo__c' on entity 'Contact'.",
        }
    ]
    error = classify(SalesforceMalformedRequest(URL, 400, "query", content))
    assert isinstance(error, SalesforceApiError)
    assert (error.status, error.code, error.message) == (
        400,
        "INVALID_FIELD",
        "No such column 'Foo__c' on entity 'Contact'.",
    )
    assert str(error) == "Salesforce API error: HTTP 400 INVALID_FIELD: No such column 'Foo__c' on entity 'Contact'."
    assert "secret" not in str(error) and error.retry_after is None


@pytest.mark.parametrize(
    "raised",
    [
        SalesforceResourceNotFound(URL, 404, "Contact", [{"errorCode": "NOT_FOUND", "message": "gone"}]),
        SalesforceGeneralError(URL, 400, "composite", "not a list"),
    ],
)
def test_every_other_refusal_is_permanent(raised):
    error = classify(raised)
    assert isinstance(error, SalesforceApiError) and error.status == raised.status


def test_a_session_that_expires_again_after_a_new_login_is_transient():
    error = classify(SalesforceExpiredSession(URL, 401, "query", [{"errorCode": "INVALID_SESSION_ID"}]))
    assert isinstance(error, TransientError) and error.status == 401


@pytest.mark.parametrize(
    ("raised", "text"),
    [
        (requests.ConnectTimeout(), "connect timeout"),
        (requests.ReadTimeout(), "ReadTimeout"),
        (requests.ConnectionError(), "ConnectionError"),
        (requests.exceptions.ChunkedEncodingError(), "ChunkedEncodingError"),
    ],
)
def test_timeouts_and_dropped_connections_are_transient(raised, text):
    error = classify(raised)
    assert isinstance(error, TransientError) and str(error) == text


@pytest.mark.parametrize(
    "raised",
    [requests.exceptions.SSLError("certificate verify failed"), SalesforceAuthenticationFailed("invalid_client", "x")],
)
def test_an_untrusted_certificate_and_refused_credentials_are_raised_as_they_are(raised):
    assert classify(raised) is None


def test_what_is_no_answer_of_salesforces_is_raised_as_it_is():
    assert classify(ValueError("3 results for 4 records")) is None
    assert classify(TransientError("HTTP 503")) is None  # already sorted (the session's answer hook)


def test_an_answers_retry_after_travels_with_its_transient_error():
    throttled = classify_answer(429, {"Retry-After": "7"})
    assert isinstance(throttled, TransientError) and (throttled.status, throttled.retry_after) == (429, 7.0)
    assert classify_answer(503, {"Retry-After": "30"}).retry_after == 30.0
    assert classify_answer(500, {"Retry-After": "30"}).retry_after is None  # only 429 and 503 name a wait
    assert classify_answer(502, {}).status == 502


@pytest.mark.parametrize("status", [200, 201, 204, 300, 400, 401, 403, 404])
def test_other_answers_are_left_to_the_client(status):
    assert classify_answer(status, {"Retry-After": "5"}) is None


def test_a_token_answer_naming_the_concurrent_request_limit_is_transient():
    body = [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "ConcurrentPerOrgLongTxn"}]
    assert isinstance(classify_answer(403, {}, body), TransientError)
    assert classify_answer(400, {}, {"error": "invalid_grant", "error_description": "authentication failure"}) is None
