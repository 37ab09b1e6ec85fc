"""The chart of recent runs: contacts read, writes and rejects, API calls, and each org-wide API budget.

Drawn on the api-server by matplotlib as inline SVG: the page needs no script and nothing from the internet
(deployments are often air-gapped), and the numbers come from the same run summaries as the tables.
"""

from __future__ import annotations

import io
import json
from functools import lru_cache
from typing import Any

from crm_sync.health.times import parse_time
from include.sync_logic.sides import WRITE_ACTIONS, Side

MIN_SLOTS = 10
COLORS = {"read": "#98a2b3", "writes": "#2e90fa", "rejects": "#d92d20", "Salesforce": "#0b5cab", "HubSpot": "#ff7a59"}


def _label(run: dict[str, Any]) -> str:
    """The data interval's end, short (`11-28 10:00`); the run id when the report names no interval."""
    end = parse_time(run["data_interval_end"])
    return end.strftime("%m-%d %H:%M") if end else run["run_id"][:16]


def writes(outcomes: dict[str, int]) -> int:
    """Creates, updates and deletes a CRM accepted (`<target>.<action>.ok`); link-backs and dry runs not."""
    return sum(count for key, count in outcomes.items() if key.split(".")[1] in WRITE_ACTIONS and key.endswith(".ok"))


def chart_data(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The chart's series from run summaries (given newest first), oldest run first so time runs left to right.

    `budgets` maps `<side> <limit>` to per-run `used` / `maximum` / `ceiling` lists (None where a run's
    report holds no vendor figure for it).
    """
    ordered = list(reversed(runs))
    names = sorted({(side, name) for run in ordered for side, limits in run["org_budgets"].items() for name in limits})
    budgets = {
        f"{side} {name}": {
            figure: [run["org_budgets"].get(side, {}).get(name, {}).get(figure) for run in ordered]
            for figure in ("used", "maximum", "ceiling")
        }
        for side, name in names
    }
    return {
        "labels": [_label(run) for run in ordered],
        "read": [sum(run["extracted"].values()) for run in ordered],
        "writes": [writes(run["outcomes"]) for run in ordered],
        "rejects": [run["rejects"] for run in ordered],
        "calls": {str(side): [run["api"][side]["calls"] for run in ordered] for side in Side},
        "throttled": {str(side): [run["api"][side]["throttled"] for run in ordered] for side in Side},
        "budgets": budgets,
    }


def _bars(axes: Any, series: dict[str, list[int]], colors: dict[str, str]) -> None:
    width = 0.8 / len(series)
    for index, (name, values) in enumerate(series.items()):
        offset = (index - (len(series) - 1) / 2) * width
        axes.bar([x + offset for x in range(len(values))], values, width, label=name, color=colors[name])


def runs_chart_svg(data: dict[str, Any]) -> str:
    """The chart as an `<svg>` element to inline in the page (text kept as text, no metadata date).

    Drawing takes a good part of a second; the runs change only when a report arrives, so page reloads in
    between reuse the last few drawings.
    """
    return _drawn(json.dumps(data, sort_keys=True))


@lru_cache(maxsize=4)
def _drawn(data_json: str) -> str:
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    data = json.loads(data_json)
    panels = 3 if data["budgets"] else 2
    height = 1.9 * panels
    figure = Figure(figsize=(10, height))
    # Fixed margins in inches (tick labels below, legends on the right): a layout engine doubles the time.
    figure.subplots_adjust(left=0.08, right=0.8, top=1 - 0.3 / height, bottom=0.95 / height, hspace=0.5)
    axes = figure.subplots(panels, 1, sharex=True)
    positions = range(len(data["labels"]))

    contacts = {"read": data["read"], "writes": data["writes"], "rejects": data["rejects"]}
    _bars(axes[0], contacts, COLORS)
    axes[0].set_title(
        "Contacts per run: read in the window, writes accepted (create, update, delete), rejects", fontsize=11
    )

    _bars(axes[1], {side.label: data["calls"][side] for side in Side}, COLORS)
    for side in Side:
        for x, count in zip(positions, data["throttled"][side], strict=True):
            if count:
                axes[1].annotate(f"{count}×429", (x, data["calls"][side][x]), color=COLORS["rejects"], fontsize=8)
    axes[1].set_title("API calls per run (×429: responses throttled)")

    if data["budgets"]:
        for name, figures in data["budgets"].items():
            label = Side(name.split(" ")[0]).label
            axes[2].plot(positions, figures["used"], marker="o", color=COLORS.get(label), label=f"{label}: used")
            axes[2].plot(positions, figures["maximum"], color="#344054", linestyle="--", label=f"{label}: maximum")
            axes[2].plot(positions, figures["ceiling"], color="#f79009", linestyle=":", label=f"{label}: sync stops")
        axes[2].set_ylim(bottom=0)
        axes[2].set_title("Org-wide daily API budget at each run's report (every integration counts)")
    for panel in axes:
        panel.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        panel.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        panel.grid(axis="y", color="#eaecf0")
        panel.set_axisbelow(True)
        panel.spines[["top", "right"]].set_visible(False)
    axes[-1].set_xticks(list(positions), data["labels"], rotation=45, ha="right", fontsize=8)
    # At least MIN_SLOTS places, empty ones on the left, so a few runs keep narrow bars and the newest stays right.
    axes[-1].set_xlim(len(positions) - max(len(positions), MIN_SLOTS) - 0.6, len(positions) - 0.4)
    axes[-1].set_xlabel("data interval end (UTC)")

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "crm-sync"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]
