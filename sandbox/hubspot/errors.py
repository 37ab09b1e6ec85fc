"""HubSpot's error bodies, so clients see the same status, category and message shapes as the real API."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any


def correlation_id() -> str:
    return str(uuid.uuid4())


@dataclass
class HubSpotError(Exception):
    """One API error; rendered whole (single calls) or as a batch `StandardError` (per-input failures)."""

    status: int
    category: str
    message: str
    context: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    whole_request: bool = False  # about the request's shape, not one input: a batch fails whole

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": correlation_id(),
            "category": self.category,
        }
        if self.context:
            body["context"] = self.context
        body.update(self.extra)
        return body

    def standard_error(self) -> dict[str, Any]:
        """The per-input error inside a 207 batch response (the client requires every key here)."""
        return {
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": self.context,
            "errors": [],
            "links": {},
        }


def validation_error(message: str, **context: Any) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", message, {k: [str(v)] for k, v in context.items()})


def property_errors(problems: list[dict[str, Any]]) -> HubSpotError:
    """HubSpot packs per-property problems as JSON inside the message of a 400 VALIDATION_ERROR.

    An unknown or read-only property is wrong for every input that carries it, so a batch holding one
    fails whole; a bad value (an invalid email) is one input's problem.
    """
    detail = [{"isValid": False, **p, "localizedErrorMessage": p["message"]} for p in problems]
    return HubSpotError(
        400,
        "VALIDATION_ERROR",
        f"Property values were not valid: {json.dumps(detail, ensure_ascii=False, separators=(',', ':'))}",
        whole_request=any(p["error"] in SCHEMA_ERRORS for p in problems),
    )


SCHEMA_ERRORS = {"PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE"}
PORTAL_ID = 1234567


def non_unique_id_property(name: str) -> HubSpotError:
    """Update/upsert by a property without unique values (HubSpot names contacts' object type 0-1)."""
    return HubSpotError(
        400,
        "VALIDATION_ERROR",
        f"Unable to perform update/upsert by non-unique 0-1 property {name} in portal ID {PORTAL_ID}",
        whole_request=True,
    )


def missing_scopes(scope: str) -> HubSpotError:
    """403 for a token whose private app lacks a scope the endpoint needs."""
    return HubSpotError(
        403,
        "MISSING_SCOPES",
        "This app hasn't been granted all required scopes to make this call. Read more about required scopes "
        "here: https://developers.hubspot.com/scopes.",
        extra={
            "errors": [
                {"message": "One or more of the following scopes are required.", "context": {"requiredScopes": [scope]}}
            ],
            "links": {"scopes": "https://developers.hubspot.com/scopes"},
        },
        whole_request=True,
    )


CONFLICT_SHAPES = ("CONFLICT", "OBJECT_ALREADY_EXISTS")


def contact_exists(existing_id: int, shape: str = "CONFLICT") -> HubSpotError:
    """409 for an email another contact holds, in either of HubSpot's shapes: category CONFLICT, or (newer
    answers) OBJECT_ALREADY_EXISTS with error CONTACT_EXISTS, the existing contact's identity profile and an
    `errors` entry naming the email (so an OBJECT_ALREADY_EXISTS body echoes it, as HubSpot's does)."""
    message = f"Contact already exists. Existing ID: {existing_id}"
    if shape == "CONFLICT":
        return HubSpotError(409, "CONFLICT", message)
    extra = {
        "error": "CONTACT_EXISTS",
        "identityProfile": {"vid": existing_id, "isContact": True, "isCanonicalProfile": True},
        "errors": [{"message": f"A contact with this email already exists. Existing ID: {existing_id}", "in": "email"}],
    }
    return HubSpotError(409, "OBJECT_ALREADY_EXISTS", message, extra=extra)


def invalid_option(name: str, value: str, options: list[str]) -> dict[str, Any]:
    """One property-values problem: a value outside an enumeration property's options (HubSpot's wording)."""
    return {
        "message": f"{value} was not one of the allowed options: [{', '.join(options)}]",
        "error": "INVALID_OPTION",
        "name": name,
    }


def unique_value_conflict(prop: str, value: str, existing_id: int) -> HubSpotError:
    return HubSpotError(
        409,
        "CONFLICT",
        f"A contact with the property '{prop}' value '{value}' already exists. Existing ID: {existing_id}",
        {"propertyName": [prop], "existingId": [str(existing_id)]},
    )


def not_found(ids: list[str]) -> HubSpotError:
    return HubSpotError(
        404,
        "OBJECT_NOT_FOUND",
        "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.",
        {"ids": ids},
    )


def unauthorized() -> HubSpotError:
    return HubSpotError(
        401,
        "INVALID_AUTHENTICATION",
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
        "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    )
