"""The sync-health view's HTML: server-rendered tables and an inline SVG chart (no scripts), every value escaped.

Tables fit the page: long values wrap instead of widening it, and each run's counts per side share one cell.
Times are UTC, without microseconds (see `times`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import Any

from crm_sync.health.chart import chart_data, runs_chart_svg
from crm_sync.health.times import readable_duration, readable_run_id, readable_time, readable_window
from crm_sync.state.schema import PARKED
from include.sync_logic.sides import Action, Side

ACTIONS = tuple(Action)
STATUSES = ("ok", "rejected", "dry_run")
REFUSED = frozenset({Action.REJECT, PARKED})  # history events that end a contact's write until someone acts
LONG_TEXT = frozenset({"reason", "message"})  # columns wrapped anywhere (CRM messages hold long JSON tokens)
STYLE = """
body{font-family:system-ui,sans-serif;margin:16px;color:#1f2933;font-size:14px;overflow-wrap:break-word}
h1{font-size:20px;margin:0 0 12px}h2{font-size:16px;margin:20px 0 8px}
table{border-collapse:collapse;margin-bottom:8px;max-width:100%}
th,td{border:1px solid #d5dae1;padding:3px 7px;text-align:right;vertical-align:top}
th{background:#eef1f5;text-align:left;vertical-align:bottom}td.l{text-align:left}td.text{overflow-wrap:anywhere;min-width:12em}
.bad{color:#b42318;font-weight:600}.ok{color:#067647}.muted{color:#667085}
form{margin:8px 0}input[type=text]{width:320px;max-width:100%;padding:4px}code{font-size:12px}
figure{margin:0 0 8px;max-width:1000px}.nw{white-space:nowrap}figure svg{width:100%;height:auto}
"""


def _cell(value: Any, *, key: str = "", left: bool = False, css: str = "", title: str = "") -> str:
    classes = " ".join(part for part in ("l" if left else "", css) if part)
    attrs = (f' data-key="{escape(key)}"' if key else "") + (f' class="{classes}"' if classes else "")
    attrs += f' title="{escape(title)}"' if title else ""
    return f"<td{attrs}>{escape('' if value is None else str(value))}</td>"


def _wrap(column: str) -> str:
    return "text" if column in LONG_TEXT else ""


def _raw_cell(html: str) -> str:
    """A left-aligned cell of markup built here from escaped parts."""
    return f'<td class="l">{html}</td>'


def _count(value: Any, key: str, label: str) -> str:
    """`<n> label` with the number keyed for tests and zeros muted."""
    css = ' class="muted"' if not value else ""
    return f'<span{css}><span data-key="{escape(key)}">{escape(str(value))}</span> {escape(label)}</span>'


def _table(headers: Iterable[str], rows: Iterable[str], table_id: str) -> str:
    """Column names may be field names: `source_id` is headed `source id`, so a header can wrap."""
    head = "".join(f"<th>{escape(header.replace('_', ' '))}</th>" for header in headers)
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


def _words(text: str) -> str:
    """Text that wraps only between words (a cell would otherwise break `2026-11-28` at its hyphens)."""
    return " ".join(f'<span class="nw">{escape(word)}</span>' for word in text.split(" "))


def _run_cell(run_id: str, *, suffix: str = "") -> str:
    """The run as people read it; the full run id in `data-run-id` and the tooltip."""
    return (
        f'<td class="l" data-key="run_id" data-run-id="{escape(run_id)}" title="{escape(run_id)}">'
        f"{_words(readable_run_id(run_id) + suffix)}</td>"
    )


def _window_cell(window: str) -> str:
    return f'<td class="l" data-key="window" title="{escape(window)}">{_words(readable_window(window))}</td>'


def _run_name(run: Mapping[str, Any]) -> str:
    return f"{readable_run_id(run['run_id'])}, window {readable_window(run['window'])}"


def _runs(runs: list[dict[str, Any]]) -> str:
    headers = ["run", "window (UTC)", "read SF / HS"]
    headers += [f"{side.label} decisions" for side in Side]
    headers += [f"{side.label} API" for side in Side]
    headers += ["rejects", "lag"]
    rows = []
    for run in runs:
        cells = [
            _run_cell(run["run_id"], suffix=" (dry run)" if run["dry_run"] else ""),
            _window_cell(run["window"]),
            _cell(f"{run['extracted'].get('salesforce', 0)} / {run['extracted'].get('hubspot', 0)}", key="read"),
        ]
        for side in Side:
            counts = [
                _count(run["decisions"].get(f"{side}.{action}", 0), f"{side}.{action}", action) for action in ACTIONS
            ]
            cells.append(_raw_cell(", ".join(counts)))
        for side in Side:
            api = run["api"][side]
            throttled = _count(api["throttled"], f"{side}.throttled", "×429")
            if api["throttled"]:
                throttled = f'<span class="bad">{throttled}</span>'
            waits = f"{api['waits']} waits ({readable_duration(api['wait_seconds'])})"
            cells.append(_raw_cell(f"{_count(api['calls'], f'{side}.calls', 'calls')}, {escape(waits)}, {throttled}"))
        cells += [
            _cell(run["rejects"], key="rejects", css="bad" if run["rejects"] else ""),
            _cell(readable_duration(run["lag_seconds"]), key="lag", title="now − data interval end, at the report"),
        ]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return _table(headers, rows, "runs") if rows else "<p class='muted'>No run reports yet.</p>"


def _chart(runs: list[dict[str, Any]]) -> str:
    if not runs:
        return ""
    return f'<figure id="runs-chart" role="img" aria-label="Recent runs">{runs_chart_svg(chart_data(runs))}</figure>'


def _outcomes(runs: list[dict[str, Any]]) -> str:
    """What each CRM answered to the newest run's writes, per target and action."""
    if not runs:
        return ""
    latest = runs[0]
    heading = f"<h2 id='outcomes-run'>What the CRMs answered: {escape(_run_name(latest))}</h2>"
    pairs = sorted({tuple(key.split(".")[:2]) for key in latest["outcomes"]})
    if not pairs:
        return heading + "<p class='muted' id='outcomes'>This run sent nothing to the CRMs.</p>"
    rows = []
    for target, action in pairs:
        cells = [_cell(Side(target).label, left=True), _cell(action, left=True)]
        for status in STATUSES:
            key = f"{target}.{action}.{status}"
            count = latest["outcomes"].get(key, 0)
            cells.append(_cell(count, key=key, css="bad" if status == "rejected" and count else ""))
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return heading + _table(["target", "action", "accepted", "refused", "dry run"], rows, "outcomes")


def _rejects(rejects: list[dict[str, Any]]) -> str:
    columns = ["stage", "target", "action", "source_system", "source_id", "target_id", "code", "reason"]
    rows = [
        "<tr>"
        + _run_cell(reject["run_id"])
        + "".join(_cell(reject.get(c), left=True, css=_wrap(c)) for c in columns)
        + "</tr>"
        for reject in rejects
    ]
    body = _table(["run", *columns], rows, "rejects") if rows else "<p class='muted'>No rejects in these runs.</p>"
    return f"<h2>Rejects in the latest runs' reports</h2>{body}"


def _queue(entries: list[dict[str, Any]] | None) -> str:
    if entries is None:
        return (
            "<h2>Retry queue</h2><p class='muted'>No sync-state connection (crm_sync_state_default), "
            "or its database did not answer (see the api-server log).</p>"
        )
    columns = ["target", "source_id", "target_id", "action", "status", "attempts", "code", "message"]
    times = ["last_attempt_at", "next_attempt_at"]
    rows = [
        "<tr>"
        + "".join(_cell(entry.get(c), left=True, css=_wrap(c)) for c in columns)
        + "".join(_cell(readable_time(entry.get(c)), left=True, title=entry.get(c) or "") for c in times)
        + "</tr>"
        for entry in entries
    ]
    headers = [*columns, "last attempt (UTC)", "next attempt (UTC)"]
    body = _table(headers, rows, "retry-queue") if rows else "<p class='muted'>The retry queue is empty.</p>"
    return f"<h2>Retry queue ({len(entries)})</h2>{body}"


def _limit_row(side: str, account: str, name: str, limit: Mapping[str, Any], paused: float) -> str:
    """One pool limit: the vendor's own account-wide figures when it reported them, else the pool's count."""
    if limit.get("org_maximum"):
        used, maximum = limit["org_used"], limit["org_maximum"]
        what = f"{name}: the org's usage, all integrations (vendor header)"
        ceiling = limit.get("ceiling")
        note = f"the sync stops at {ceiling:,}" if ceiling else ""
    else:
        used, maximum = limit["used"], limit["limit"]
        what = f"{name}: {maximum:,} per {readable_duration(limit['window_seconds'])} (this pool's count)"
        note = ""
    share = used / maximum if maximum else 0
    return (
        "<tr>"
        + _cell(account, left=True)
        + _cell(what, left=True)
        + _cell(f"{used:,}", key=f"{side}.{name}.used")
        + _cell(f"{maximum:,}", key=f"{side}.{name}.maximum")
        + _cell(f"{share:.1%}", css="bad" if share > 0.8 else "")
        + _cell(note, left=True, key=f"{side}.{name}.note")
        + _cell(readable_duration(paused), key=f"{side}.paused", css="bad" if paused else "")
        + "</tr>"
    )


def _pools(pools: Mapping[str, Any]) -> str:
    rows = []
    for side, pool in pools.items():
        if "error" in pool:
            rows.append(f"<tr>{_cell(side, left=True)}<td class='l bad' colspan='6'>{escape(pool['error'])}</td></tr>")
            continue
        for name, limit in pool["limits"].items():
            rows.append(_limit_row(side, pool["account"], name, limit, pool["paused_seconds"]))
    headers = ["account", "limit", "used", "of", "share", "note", "paused"]
    return f"<h2>Rate-limit pool (live)</h2>{_table(headers, rows, 'pools')}"


def overview_page(
    runs: list[dict[str, Any]],
    rejects: list[dict[str, Any]],
    queue: list[dict[str, Any]] | None,
    pools: Mapping[str, Any],
) -> str:
    """`runs` newest data interval first (see `runs.by_data_interval`)."""
    body = "<h1>CRM sync health</h1><p class='muted'>Times in UTC.</p>" + _search_form()
    body += f"<h2>Recent runs ({len(runs)}), newest data interval first</h2>{_chart(runs)}{_runs(runs)}"
    body += _outcomes(runs) + _pools(pools) + _queue(queue) + _rejects(rejects)
    return _document("CRM sync health", body)


def _answer_text(event: Mapping[str, Any]) -> tuple[str, str]:
    """The CRM's answers to one decision and their style; a reject was never sent, so it has its own."""
    if event["action"] == Action.REJECT:
        return "not sent: rejected by the sync's rules (see reason)", "bad"
    answers = "; ".join(
        ("ok" if answer["ok"] else f"refused {answer['code']}: {answer['message']}")
        + f" ({answer['action']}{', id ' + answer['target_id'] if answer['target_id'] else ''})"
        + (" [dry run]" if answer["dry_run"] else "")
        for answer in event["answers"]
    )
    if not answers:
        return "(nothing sent)", "muted"
    return answers, "bad" if any(not answer["ok"] for answer in event["answers"]) else "ok"


def contact_page(history: dict[str, Any], queue: list[dict[str, Any]] | None) -> str:
    ids = ", ".join(history["ids"]) or "none found"
    body = f'<p><a href="./">&larr; CRM sync health</a></p><h1>Contact history: {escape(history["query"])}</h1>'
    body += _search_form(history["query"]) + f"<p>Ids followed: <code id='ids'>{escape(ids)}</code></p>"
    columns = ["run", "window (UTC)", "target", "decision", "source", "target id", "reason", "fields written"]
    rows = []
    for event in history["events"]:
        fields = ", ".join(f"{name}={value}" for name, value in event["fields_written"].items())
        answer, css = _answer_text(event)
        rows.append(
            "<tr>"
            + _run_cell(event["run_id"])
            + _window_cell(event["window"])
            + _cell(event["target"], left=True)
            + _cell(event["action"], left=True, key="decision", css="bad" if event["action"] in REFUSED else "")
            + _cell(event["source"], left=True)
            + _cell(event["target_id"], left=True)
            + _cell(event["reason"], left=True, key="reason", css="text")
            + _cell(fields, left=True, key="fields", css="text")
            + _cell(answer, left=True, key="answer", css=f"text {css}")
            + "</tr>"
        )
    table = _table([*columns, "CRM answer"], rows, "history")
    body += table if rows else "<p class='muted'>No run touched this contact.</p>"
    return _document(f"Contact {history['query']}", body + _queue(queue))
