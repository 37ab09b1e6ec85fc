"""A session that expires again right after a re-login is retried, not failed (narrow: no HTTP)."""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import SalesforceExpiredSession

from crm_sync.hooks.retry import RetryPolicy
from crm_sync.hooks.salesforce import SalesforceContactsHook


def expired() -> SalesforceExpiredSession:
    return SalesforceExpiredSession("https://x/services/data", 401, "query", [{"errorCode": "INVALID_SESSION_ID"}])


def hook_with(logins: list[int]) -> SalesforceContactsHook:
    hook = SalesforceContactsHook(retry_policy=RetryPolicy(attempts=4, base=0.0, cap=0.0))
    hook.__dict__["conn"] = object()  # an authenticated client, as far as `_call` can tell

    def relogin() -> None:
        logins.append(1)
        hook.__dict__["conn"] = object()

    hook._reauthenticate = relogin  # type: ignore[method-assign]
    return hook


def test_a_session_expired_again_after_the_relogin_is_retried():
    logins: list[int] = []
    hook = hook_with(logins)
    answers = iter([expired(), expired(), expired(), "done"])

    def call(_client: object) -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert hook._call("query", call) == "done"
    assert len(logins) == 2  # one re-login per attempt that met an expired session


def test_sessions_that_never_hold_fail_once_the_retries_are_spent():
    logins: list[int] = []
    hook = hook_with(logins)

    def call(_client: object) -> str:
        raise expired()

    with pytest.raises(Exception, match="session expired again"):
        hook._call("query", call)
    assert len(logins) == 4
