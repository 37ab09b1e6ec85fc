"""HubSpot batch responses into per-record results, matched back to the inputs that caused them.

Inputs carry `objectWriteTraceId` = their position, which HubSpot echoes on results (and on errors'
context where it can); failing that, results are matched by id or id property and errors by the ids
in their context. An input nothing can be matched to is reported as such, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crm_sync.hooks.hs_errors import CONFLICTS
from crm_sync.hooks.refusals import hubspot_refusal
from crm_sync.hooks.results import RecordResult, existing_id_from_message

SECONDARY_EMAILS = "hs_additional_emails"  # ";"-separated; email look-ups match these too


def _norm(value: Any) -> str:
    return str(value).strip().lower() if value is not None else ""


def asked_key(obj: Mapping[str, Any], asked: Sequence[str], id_property: str | None) -> str | None:
    """Which of the `asked` keys a batch-read result answers (HubSpot does not say).

    By id: the object id. By email: the primary email, else one of its secondary emails: never assume
    the primary equals the email asked. By another unique property: that property's value.
    """
    props = obj.get("properties") or {}
    if id_property is None:
        candidates = [obj.get("id")]
    elif id_property == "email":
        candidates = [props.get("email"), *str(props.get(SECONDARY_EMAILS) or "").split(";")]
    else:
        candidates = [props.get(id_property)]
    wanted = {_norm(key): key for key in asked}
    for candidate in candidates:
        if _norm(candidate) in wanted:
            return wanted[_norm(candidate)]
    return None


def match_batch(
    refs: Sequence[str],
    keys: Sequence[str | None],
    key_of_result: str | None,
    body: Mapping[str, Any] | None,
) -> list[RecordResult]:
    """Per-input results of one batch write.

    refs: the caller's reference per input. keys: per input, the value a result can be matched by
    (its id for an update, its id-property value for an upsert).
    key_of_result: the result property holding that key ("id" for the object id).
    """
    body = body or {}
    by_trace = {str(i): i for i in range(len(refs))}
    by_key: dict[str, int] = {}
    for index, key in enumerate(keys):
        if key:
            by_key.setdefault(_norm(key), index)
    outcome: dict[int, RecordResult] = {}

    for result in body.get("results") or []:
        matched = by_trace.get(str(result.get("objectWriteTraceId")))
        if matched is None and key_of_result:
            value = result.get("id") if key_of_result == "id" else (result.get("properties") or {}).get(key_of_result)
            matched = by_key.get(_norm(value))
        if matched is None or matched in outcome:
            continue
        created = bool(result.get("new", False))
        outcome[matched] = RecordResult(ref=refs[matched], target_id=str(result.get("id")), ok=True, created=created)

    unmatched_errors = []
    for error in body.get("errors") or []:
        context = error.get("context") or {}
        indexes = [by_trace[t] for t in context.get("objectWriteTraceId", []) if t in by_trace]
        indexes += [by_key[_norm(i)] for i in context.get("ids", []) if _norm(i) in by_key]
        if not indexes:
            unmatched_errors.append(error)
        for index in indexes:
            target = keys[index] if key_of_result == "id" else None
            outcome.setdefault(index, error_result(refs[index], error, target_id=target))

    missing = [index for index in range(len(refs)) if index not in outcome]
    for index in missing:
        if len(missing) == 1 and len(unmatched_errors) == 1:
            outcome[index] = error_result(refs[index], unmatched_errors[0])
        else:
            message = "; ".join(str(e.get("message", "")) for e in unmatched_errors) or "no result for this input"
            outcome[index] = RecordResult(
                ref=refs[index], target_id=None, ok=False, error_code="UNMATCHED", message=message
            )
    return [outcome[index] for index in range(len(refs))]


def error_result(ref: str, error: Mapping[str, Any], target_id: str | None = None) -> RecordResult:
    """One failed input with HubSpot's category and message, whether it is permanent and the properties it names,
    and the existing id on a conflict (either shape: CONFLICT, or OBJECT_ALREADY_EXISTS in newer answers)."""
    message = error.get("message")
    category = error.get("category")
    refusal = hubspot_refusal(category, message)
    return RecordResult(
        ref=ref,
        target_id=target_id if target_id and category != "OBJECT_NOT_FOUND" else None,
        ok=False,
        error_code=category or "UNKNOWN",
        message=message,
        existing_id=existing_id_from_message(message) if category in CONFLICTS else None,
        permanent=refusal.permanent,
        refused_fields=",".join(refusal.fields) or None,
    )
