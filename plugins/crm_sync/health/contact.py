"""One contact's history across runs: every decision about it, the fields written and the CRM's answer.

Read from the run folders (extract parts to resolve an email; decisions/*.parquet and results/*.parquet of the
try each run's report names), oldest run first so ids learned on the way (a create's new id, a link) carry
into later runs. Emails and phones are masked unless the run that wrote them had `log_pii` on.
The retry queue's entries of the contact's ids come last (newest): writes a CRM refused for good (parked) or
that wait for their next try (retrying).
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from typing import Any

import pandas as pd
from airflow.sdk import ObjectStoragePath

from crm_sync.health.queue import stored_entries
from crm_sync.health.runs import run_folders
from crm_sync.health.times import readable_time
from crm_sync.pii import mask_fields, redact
from crm_sync.staging import iter_frames, read_frame, read_json, result_urls
from crm_sync.state.schema import PARKED
from include.sync_logic.sides import Action, Side

# Per CRM: its id column, its link column and its email column in the staged extract.
EXTRACT_KEYS = {
    Side.SALESFORCE: ("Id", "HubSpot_Contact_Id__c", "Email"),
    Side.HUBSPOT: ("id", "salesforce_contact_id", "email"),
}


def staged_folder(report: dict[str, Any], folder: ObjectStoragePath) -> str | None:
    """The folder of the try a report covers (None: its reconcile failed); reports written before runs had tries
    name none, and their files sit in the run folder itself."""
    return report["staged"] if "staged" in report else str(folder)


def _parts(folder: ObjectStoragePath, pattern: str) -> list[ObjectStoragePath]:
    return sorted(folder.glob(pattern))


def ids_for_email(email: str, folders: list[ObjectStoragePath]) -> set[str]:
    """Both CRMs' ids of the contacts extracted with this email (trimmed, lowercased) in these runs."""
    wanted = email.strip().lower()
    ids: set[str] = set()
    for folder in folders:
        for side, (own, link, column) in EXTRACT_KEYS.items():
            # A cleared run extracts again into a new try's folder; runs staged before tries had none.
            for part in _parts(folder, f"try-*/extract/{side}/*.parquet") + _parts(folder, f"extract/{side}/*.parquet"):
                frame = read_frame(str(part))
                if column not in frame:
                    continue
                hit = frame[frame[column].astype("string").str.strip().str.lower() == wanted]
                ids |= {str(value) for value in hit[own].dropna()} | {str(value) for value in hit[link].dropna()}
    return ids - {""}


def _answers(staged: str, ids: set[str]) -> list[dict[Hashable, Any]]:
    rows: list[dict[Hashable, Any]] = []
    for url in result_urls(staged):
        frame = read_frame(url)
        hit = frame[frame["ref"].astype(str).isin(ids) | frame["target_id"].astype(str).isin(ids)]
        rows += hit.to_dict(orient="records")
    return rows


def _merge_events(staged: str, ids: set[str], report: dict[str, Any]) -> list[dict[str, Any]]:
    """The merges a run found (reconcile stages them as tombstone rows) that touch these ids; the ids of the other
    contacts of each merge join `ids`, so the history follows a contact into its survivor."""
    events: list[dict[str, Any]] = []
    parts = [str(path) for path in _parts(ObjectStoragePath(staged), "merges/*.parquet")]
    rows = [row for part in iter_frames(parts) for row in part.to_dict(orient="records")]
    for row in rows:
        paired = _text(row["counterpart_id"])
        own = {str(row["contact_id"]), str(row["survivor_id"])} | ({paired} if paired else set())
        if not own & ids:
            continue
        ids |= own
        events.append(
            {
                "run_id": report["run_id"],
                "window": report["window"],
                "target": row["side"],
                "action": "merged",
                "source": f"{row['side']}:{row['contact_id']}",
                "target_id": str(row["survivor_id"]),
                "matched_by": None,
                "reason": f"merged into {row['survivor_id']} in {row['side']}"
                + (f" (was paired with {paired})" if paired else ""),
                "fields_written": {},
                "answers": [],
            }
        )
    return events


def _tombstone_events(staged: str, ids: set[str], report: dict[str, Any]) -> list[dict[str, Any]]:
    """Contacts of these ids (or paired with them) a run found gone (deleted, archived, privacy-deleted, purged,
    merged: the tombstone's reason) or back (restored, undeleted), from the `tombstones/` part reconcile stages."""
    parts = [str(path) for path in _parts(ObjectStoragePath(staged), "tombstones/*.parquet")]
    rows = [row for part in iter_frames(parts) for row in part.to_dict(orient="records")]
    events = []
    for row in rows:
        paired = _text(row["counterpart_id"])
        if str(row["contact_id"]) not in ids and paired not in ids:
            continue
        ids.add(str(row["contact_id"]))
        events.append(
            {
                "run_id": report["run_id"],
                "window": report["window"],
                "target": row["side"],
                "action": row["event"],
                "source": f"{row['side']}:{row['contact_id']}",
                "target_id": paired,
                "matched_by": None,
                "reason": row["reason"],
                "fields_written": {},
                "answers": [],
            }
        )
    return events


def queue_events(entries: pd.DataFrame, reports: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Retry-queue entries as history events: "parked" (a refusal no retry passes, or out of attempts: not tried
    again until the contact's data changes or someone releases it) or "retrying", with the CRM's code and message.

    `reports`: the runs' reports by run id; an entry's run gives its window and its `log_pii` (no report: masked).
    """
    events = []
    for entry in entries.to_dict(orient="records"):
        report = reports.get(entry["run_id"], {})
        log_pii = bool(report.get("log_pii"))
        attempts = f"{entry['attempts']} attempt{'s' if entry['attempts'] != 1 else ''}"
        if entry["status"] == PARKED:
            kind, reason = "parked", f"parked after {attempts}: not retried until the contact changes or is released"
        else:
            kind, reason = "retrying", f"{attempts}, next try {readable_time(entry['next_attempt_at'])} UTC"
        target_id = _text(entry["target_id"])
        events.append(
            {
                "run_id": entry["run_id"],
                "window": report.get("window", ""),
                "target": entry["target"],
                "action": kind,
                "source": f"{Side(entry['target']).other}:{entry['source_id']}",
                "target_id": target_id,
                "matched_by": None,
                "reason": reason,
                "fields_written": {},
                "answers": [
                    {
                        "action": entry["action"],
                        "ok": False,
                        "target_id": target_id,
                        "code": _text(entry["code"]),
                        "message": redact(_text(entry["message"]) or "", log_pii=log_pii),
                        "dry_run": False,
                    }
                ],
            }
        )
    return events


def _text(value: Any) -> str | None:
    return None if value is None or value != value or value == "" else str(value)


def contact_history(query: str, *, limit_runs: int = 200, state_conn_id: str | None = None) -> dict[str, Any]:
    """`{"query", "ids", "events": [...]}`, newest event first; `query` is an id of either CRM or an email.

    The retry queue's entries come first; an unreadable sync state leaves them out (see `stored_entries`)."""
    folders = list(reversed(run_folders(limit_runs)))  # oldest first
    query = query.strip()
    ids = ids_for_email(query, folders) if "@" in query else {query}
    events: list[dict[str, Any]] = []
    reports: dict[str, dict[str, Any]] = {}
    for folder in folders:
        report = read_json(str(folder / "report.json"))
        reports[report["run_id"]] = report
        staged = staged_folder(report, folder)
        if not staged:
            continue
        parts = _parts(ObjectStoragePath(staged), "decisions/*.parquet")
        if not parts:
            continue
        log_pii = bool(report.get("log_pii"))
        events += _merge_events(staged, ids, report)  # first: the merge's ids find this run's decisions too
        events += _tombstone_events(staged, ids, report)  # first: a gone counterpart's id finds its decisions
        hit = pd.concat(
            [
                part[part["source_id"].astype(str).isin(ids) | part["target_id"].astype(str).isin(ids)]
                for part in iter_frames([str(path) for path in parts])
            ],
            ignore_index=True,
        )
        answers = _answers(staged, ids | {str(value) for value in hit["source_id"]})
        for row in hit.to_dict(orient="records"):
            # A reject is never sent: the answers under its source id are its sibling update's, not its own.
            replies = [
                answer
                for answer in answers
                if row["action"] != Action.REJECT
                and str(answer["ref"]) == str(row["source_id"])
                and answer["target"] == row["target"]
            ]
            for answer in replies:
                if _text(answer.get("target_id")):
                    ids.add(str(answer["target_id"]))
            ids |= {str(row["source_id"])} | ({str(row["target_id"])} if _text(row["target_id"]) else set())
            payload = json.loads(row["payload"]) if _text(row.get("payload")) else {}
            events.append(
                {
                    "run_id": report["run_id"],
                    "window": report["window"],
                    "target": row["target"],
                    "action": row["action"],
                    "source": f"{row['source_system']}:{row['source_id']}",
                    "target_id": _text(row["target_id"]),
                    "matched_by": _text(row.get("matched_by")),
                    "reason": redact(_text(row["reason"]) or "", log_pii=log_pii),
                    "fields_written": mask_fields(payload, log_pii=log_pii),
                    "answers": [
                        {
                            "action": answer["action"],
                            "ok": bool(answer["ok"]),
                            "target_id": _text(answer.get("target_id")),
                            "code": _text(answer.get("error_code")),
                            "message": redact(_text(answer.get("message")) or "", log_pii=log_pii),
                            "dry_run": bool(answer.get("dry_run", False)),
                        }
                        for answer in replies
                    ],
                }
            )
    queued = stored_entries(state_conn_id, sorted(ids))
    if queued is not None:
        events += queue_events(queued, reports)
    return {"query": query, "ids": sorted(ids), "events": list(reversed(events))}
