"""HubSpot's failures sorted into the shared classes (`errors`), and by what they are about: one record, or the
whole call. Pure functions of what hubspot-api-client (or urllib3 under it) raised.

Transient: 429 (the pool waits it out: see `pool_pause`), 5xx, dropped connections and timeouts of a call that
may be sent again. Permanent (`HubSpotError`), with a text that names the fix and never a property value
(HubSpot echoes emails in its messages): a spent daily limit, a missing scope, an upsert key that is not a
unique property, a property that does not exist, a TLS failure, a non-idempotent call that may have been
applied. Only record-level errors (a bad value in one input, a duplicate or taken email, a missing target) may
be narrowed down by splitting a batch and end as per-record rejects.
Bodies as HubSpot documents them: `Property values were not valid: [{..., "error": "PROPERTY_DOESNT_EXIST",
"name": ...}]`, `Unable to perform update/upsert by non-unique 0-1 property <name> ...`, 403
`MISSING_SCOPES` with `errors[].context.requiredScopes`, 429 `policyName: DAILY`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import urllib3
from hubspot.crm.contacts import ApiException
from hubspot.crm.properties import ApiException as PropertiesApiException

from crm_sync.hooks.errors import CrmApiError, TransientError
from crm_sync.ratelimit.backoff import parse_retry_after
from include.sync_logic.sides import Side

SCHEMA_ERRORS = frozenset({"PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE"})
# A taken email or unique value: category CONFLICT, or OBJECT_ALREADY_EXISTS in newer answers (same 409).
CONFLICTS = ("CONFLICT", "OBJECT_ALREADY_EXISTS")
TEN_SECONDS = 10.0
_PROPERTY_VALUES = "Property values were not valid: "
_NON_UNIQUE = re.compile(r"Unable to perform update/upsert by non-unique \S+ property (?P<name>\S+)")


class HubSpotError(CrmApiError):
    """A permanent HubSpot API error, with HubSpot's own status, category (`code`) and message."""

    side = Side.HUBSPOT

    @property
    def record_level(self) -> bool:
        """True when the error is about an input of the call, so splitting a batch can isolate it."""
        return self.status in (400, 404, 409) and is_record_level(self.code, self.message)


class HubSpotDailyLimitReached(HubSpotError):
    """The account's daily request allowance is spent: nothing helps before it resets."""


def classify(
    exc: ApiException | PropertiesApiException | urllib3.exceptions.HTTPError, *, idempotent: bool = True
) -> TransientError | HubSpotError:
    """What `exc`, raised by a HubSpot call, is. `idempotent=False` (a merge, a property create): a call that
    may have reached HubSpot is not sent again, since HubSpot may have applied it."""
    if isinstance(exc, ApiException | PropertiesApiException):
        return _answered(int(exc.status or 0), exc.headers or {}, json_or_empty(exc.body), str(exc.reason or ""))
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, urllib3.exceptions.SSLError):  # does not heal by retrying
        return HubSpotError(0, "CONNECTION", detail=str(reason).splitlines()[-1])
    if idempotent or isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError):
        return TransientError(type(exc).__name__)  # a non-idempotent call only when it cannot have been sent
    detail = f"{type(exc).__name__} on a non-idempotent call: it may have been applied, so it is not resent"
    return HubSpotError(0, "NOT_RESENT", detail=detail)


def _answered(
    status: int, headers: Mapping[str, str], body: Mapping[str, Any], reason: str
) -> TransientError | HubSpotError:
    """An answer HubSpot refused (`headers`: urllib3's, case-insensitive)."""
    if status == 429 and body.get("policyName") == "DAILY":
        # The account's daily allowance is spent: only its reset helps, so fail the task now.
        wait = parse_retry_after(headers.get("Retry-After"))
        when = f" (Retry-After: {wait / 3600:.1f} h)" if wait is not None else ""
        detail = (
            "the account's daily API limit is spent; it resets at midnight in the HubSpot account's time "
            f"zone{when}. Airflow's retry (or the next run) continues then; nothing was written"
        )
        return HubSpotDailyLimitReached(429, body.get("category"), body.get("message"), detail=detail, retry_after=wait)
    if status == 429:
        return TransientError(f"HTTP 429 {body.get('policyName', '')}".strip(), status=429)
    if status >= 500:
        return TransientError(f"HTTP {status}", status=status)
    if not status:  # the client wraps TLS failures as status 0 with the reason as text
        lines = reason.splitlines()
        return HubSpotError(0, "CONNECTION", detail=lines[-1] if lines else "no answer")
    category, message = body.get("category"), body.get("message")
    return HubSpotError(status, category, message, detail=configuration_detail(category, message, body))


def pool_pause(exc: ApiException | PropertiesApiException) -> float | None:
    """How long a 429 that names no wait pauses the whole pool: the window of the limit it names (HubSpot's rolling
    ten seconds, else the one-second search limit). None for any other answer: a Retry-After pauses the pool as
    the pool reads it, a spent daily limit fails the task instead."""
    body = json_or_empty(exc.body)
    if (
        exc.status != 429
        or body.get("policyName") == "DAILY"
        or parse_retry_after((exc.headers or {}).get("Retry-After")) is not None
    ):
        return None
    return TEN_SECONDS if body.get("policyName") == "TEN_SECONDLY_ROLLING" else 1.0


def json_or_empty(body: Any) -> dict[str, Any]:
    """An error body as a dict ({} when it is none, or no JSON object)."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def is_record_level(category: str | None, message: str | None) -> bool:
    """A per-input problem (bad value, duplicate, conflict, missing target), not a configuration one."""
    if category in (*CONFLICTS, "OBJECT_NOT_FOUND"):
        return True
    if category != "VALIDATION_ERROR" or not message:
        return False
    if message.startswith(_PROPERTY_VALUES):
        return not schema_problems(message)
    return message.startswith("Duplicate")


def property_problems(message: str | None) -> list[dict[str, Any]]:
    """The problems of a `Property values were not valid: [...]` message (each with error, name, message)."""
    if not message or not message.startswith(_PROPERTY_VALUES):
        return []
    try:
        problems = json.loads(message[len(_PROPERTY_VALUES) :])
    except ValueError:
        return []
    return [p for p in problems if isinstance(p, dict)] if isinstance(problems, list) else []


def schema_problems(message: str | None) -> list[str]:
    """`PROPERTY_DOESNT_EXIST name` / `READ_ONLY_VALUE name` entries of a property-values message."""
    return [f"{p.get('error')} {p.get('name')}" for p in property_problems(message) if p.get("error") in SCHEMA_ERRORS]


def configuration_detail(category: str | None, message: str | None, body: Mapping[str, Any]) -> str:
    """A value-free sentence naming the fix for a configuration error ('' when there is nothing to add)."""
    if category == "MISSING_SCOPES":
        scopes = sorted(
            {s for e in body.get("errors") or [] for s in ((e or {}).get("context") or {}).get("requiredScopes", [])}
        )
        return (
            f"the private app lacks scope(s) {', '.join(scopes) or '(not named)'}: add them in HubSpot under "
            "Settings > Integrations > Private Apps > the app > Scopes"
        )
    match = _NON_UNIQUE.search(message or "")
    if match:
        return (
            f"idProperty {match['name']} is not a unique property: use a contact property created with "
            "'Require unique values for this property' (hasUniqueValue)"
        )
    problems = schema_problems(message)
    if problems:
        return f"the mapping writes properties HubSpot refuses ({'; '.join(problems)}): create them or fix the mapping"
    return ""
