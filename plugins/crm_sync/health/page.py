"""The sync-health view's HTML: plain server-rendered tables (no scripts), every value escaped."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from crm_sync.metrics import CRMS

ACTIONS = ("create", "update", "delete", "skip", "reject")
STYLE = """
body{font-family:system-ui,sans-serif;margin:16px;color:#1f2933;font-size:14px}
h1{font-size:20px;margin:0 0 12px}h2{font-size:16px;margin:20px 0 8px}
table{border-collapse:collapse;margin-bottom:8px}th,td{border:1px solid #d5dae1;padding:3px 7px;text-align:right}
th{background:#eef1f5;text-align:left;vertical-align:bottom}td.l{text-align:left;max-width:460px;overflow-wrap:break-word}.bad{color:#b42318;font-weight:600}.ok{color:#067647}
.muted{color:#667085}form{margin:8px 0}input[type=text]{width:320px;padding:4px}code{font-size:12px}
"""


def _cell(value: Any, *, key: str = "", left: bool = False, css: str = "") -> str:
    classes = " ".join(part for part in ("l" if left else "", css) if part)
    attrs = (f' data-key="{escape(key)}"' if key else "") + (f' class="{classes}"' if classes else "")
    return f"<td{attrs}>{escape('' if value is None else str(value))}</td>"


def _table(headers: Iterable[str], rows: Iterable[str], table_id: str) -> str:
    head = "".join(f"<th>{escape(header)}</th>" for header in headers)
    return f'<table id="{table_id}"><tr>{head}</tr>{"".join(rows)}</table>'


def _document(title: str, body: str) -> str:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )


def _search_form(query: str = "") -> str:
    return (
        '<form action="contact" method="get"><label>Contact history: <input type="text" name="q" '
        f'value="{escape(query)}" placeholder="Salesforce id, HubSpot id or email"></label> '
        '<button type="submit">Search</button></form>'
    )


def _runs(runs: list[dict[str, Any]]) -> str:
    headers = ["run", "window", "read sf / hs"]
    short = {"salesforce": "SF", "hubspot": "HS"}
    headers += [f"{short[target]} {action}" for target in CRMS for action in ACTIONS]
    headers += [f"{short[crm]} {what}" for crm in CRMS for what in ("calls", "waits (s)", "429s")]
    headers += ["rejects", "lag (s)"]
    rows = []
    for run in runs:
        cells = [
            _cell(run["run_id"] + (" (dry run)" if run["dry_run"] else ""), left=True, key="run_id"),
            _cell(run["window"], left=True, key="window"),
            _cell(f"{run['extracted'].get('salesforce', 0)} / {run['extracted'].get('hubspot', 0)}", key="read"),
        ]
        for target in CRMS:
            for action in ACTIONS:
                key = f"{target}.{action}"
                cells.append(_cell(run["decisions"].get(key, 0), key=key))
        for crm in CRMS:
            api = run["api"][crm]
            cells += [
                _cell(api["calls"], key=f"{crm}.calls"),
                _cell(f"{api['waits']} ({api['wait_seconds']})", key=f"{crm}.waits"),
                _cell(api["throttled"], key=f"{crm}.throttled", css="bad" if api["throttled"] else ""),
            ]
        cells += [
            _cell(run["rejects"], key="rejects", css="bad" if run["rejects"] else ""),
            _cell(run["lag_seconds"], key="lag"),
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return _table(headers, rows, "runs") if rows else "<p class='muted'>No run reports yet.</p>"


def _outcomes(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return ""
    latest = runs[0]
    rows = [
        f"<tr>{_cell(key, left=True)}{_cell(count, key=key)}</tr>" for key, count in sorted(latest["outcomes"].items())
    ]
    return (
        f"<h2>What the CRMs answered (latest run)</h2>{_table(['target.action.status', 'records'], rows, 'outcomes')}"
    )


def _rejects(rejects: list[dict[str, Any]]) -> str:
    columns = ["run_id", "stage", "target", "action", "source_system", "source_id", "target_id", "code", "reason"]
    rows = [
        "<tr>" + "".join(_cell(reject.get(column), left=True) for column in columns) + "</tr>" for reject in rejects
    ]
    body = _table(columns, rows, "rejects") if rows else "<p class='muted'>No rejects in the latest runs.</p>"
    return f"<h2>Rejects (latest runs)</h2>{body}"


def _queue(entries: list[dict[str, Any]] | None) -> str:
    if entries is None:
        return "<h2>Retry queue</h2><p class='muted'>No sync-state connection (crm_sync_state_default).</p>"
    columns = ["target", "source_id", "target_id", "action", "status", "attempts", "code", "message"]
    columns += ["last_attempt_at", "next_attempt_at"]
    rows = ["<tr>" + "".join(_cell(entry.get(c), left=True) for c in columns) + "</tr>" for entry in entries]
    body = _table(columns, rows, "retry-queue") if rows else "<p class='muted'>The retry queue is empty.</p>"
    return f"<h2>Retry queue ({len(entries)})</h2>{body}"


def _pools(pools: Mapping[str, Any]) -> str:
    rows = []
    for crm, pool in pools.items():
        if "error" in pool:
            rows.append(f"<tr>{_cell(crm, left=True)}<td class='l bad' colspan='4'>{escape(pool['error'])}</td></tr>")
            continue
        for name, limit in pool["limits"].items():
            share = limit["used"] / limit["limit"] if limit["limit"] else 0
            rows.append(
                "<tr>"
                + _cell(pool["account"], left=True)
                + _cell(f"{name} ({limit['limit']} per {limit['window_seconds']:g} s)", left=True)
                + _cell(limit["used"], key=f"{crm}.{name}.used")
                + _cell(f"{share:.1%}", css="bad" if share > 0.8 else "")
                + _cell(pool["paused_seconds"], key=f"{crm}.paused", css="bad" if pool["paused_seconds"] else "")
                + "</tr>"
            )
    headers = ["account", "limit", "used in window", "share", "paused (s)"]
    return f"<h2>Rate-limit pool (live)</h2>{_table(headers, rows, 'pools')}"


def overview_page(
    runs: list[dict[str, Any]],
    rejects: list[dict[str, Any]],
    queue: list[dict[str, Any]] | None,
    pools: Mapping[str, Any],
) -> str:
    body = "<h1>CRM sync health</h1>" + _search_form()
    body += f"<h2>Recent runs ({len(runs)})</h2>{_runs(runs)}{_outcomes(runs)}"
    body += _pools(pools) + _queue(queue) + _rejects(rejects)
    return _document("CRM sync health", body)


def contact_page(history: dict[str, Any], queue: list[dict[str, Any]] | None) -> str:
    ids = ", ".join(history["ids"]) or "none found"
    body = f'<p><a href="./">&larr; CRM sync health</a></p><h1>Contact history: {escape(history["query"])}</h1>'
    body += _search_form(history["query"]) + f"<p>Ids followed: <code id='ids'>{escape(ids)}</code></p>"
    columns = ["run", "window", "target", "decision", "source", "target id", "reason", "fields written", "CRM answer"]
    rows = []
    for event in history["events"]:
        fields = ", ".join(f"{name}={value}" for name, value in event["fields_written"].items())
        answers = "; ".join(
            ("ok" if answer["ok"] else f"refused {answer['code']}: {answer['message']}")
            + f" ({answer['action']}{', id ' + answer['target_id'] if answer['target_id'] else ''})"
            + (" [dry run]" if answer["dry_run"] else "")
            for answer in event["answers"]
        )
        refused = any(not answer["ok"] for answer in event["answers"]) or event["action"] == "reject"
        rows.append(
            "<tr>"
            + _cell(event["run_id"], left=True)
            + _cell(event["window"], left=True)
            + _cell(event["target"], left=True)
            + _cell(event["action"], left=True, key="decision", css="bad" if event["action"] == "reject" else "")
            + _cell(event["source"], left=True)
            + _cell(event["target_id"], left=True)
            + _cell(event["reason"], left=True, key="reason")
            + _cell(fields, left=True, key="fields")
            + _cell(answers or "(nothing sent)", left=True, key="answer", css="bad" if refused else "ok")
            + "</tr>"
        )
    body += _table(columns, rows, "history") if rows else "<p class='muted'>No run touched this contact.</p>"
    return _document(f"Contact {history['query']}", body + _queue(queue))
