"""The sync at scale: three windows of the real DAG against the theoretical minimum of API calls and the
rate-limit floor, beside the naive per-record script on the same data. Prints ONE table and writes it
(markdown) to `--out`.

    .venv/bin/python benchmarks/bench_scale.py                                   # 20,000 / 2,000 / 1,000
    .venv/bin/python benchmarks/bench_scale.py --contacts 2000 --overlap 200 --changes 100   # quick

Phases, each one `airflow dags test` of the real DAG (AirflowProject: SQLite metadata DB) against the CRM
sandboxes, with a real redis-server as the rate-limit pool and a private PostgreSQL cluster as the sync state,
all started here:
  1. initial sync: `--contacts` a side, `--overlap` people on both sides, every contact modified inside the
     first window (the sandbox's `--overlap` and `--valid-only`: only data both CRMs accept, so the expected
     end state is exact; the messy data is the integration tests' subject). `--initial-full-resync` runs it as
     a full resync (Bulk query and the HubSpot list API) instead of a window.
  2. incremental window: `--changes` edits a side, one REST call each through the sandboxes at its own
     instant inside that window's data interval (Salesforce Title, HubSpot firstname); `--both-share` of
     them on pairs edited on both sides, the rest on contacts whose counterpart did not change.
  3. echo window: the next data interval, holding only the sync's own writes of phase 2. It must write 0.
The runs sync [E-15 min, E) widened by `--lookback-minutes` (the DAG's default, 10, passed explicitly), every
other param at its default (the mass-change gate included: phase 2 passes it against the sync state's pairs). Phase
2's interval is two hours after phase 1's (the intervals between, which would hold phase 1's own writes, are
not run), its edits are stamped in the first 15 - lookback minutes of its interval (so phase 3, the next
interval, reads only the sync's writes), and the sandbox clock runs from E + 1 min during each run.

Correctness (exit status 1 when wrong), checked from the sandboxes' stores, not from the DAG's report: after
each phase every contact on each side is linked both ways to exactly one contact on the other side with the
same normalised email, both sides hold 2 x contacts - overlap contacts and every seeded email once (no
duplicates, none missing); after phase 2 each edited value is on both sides; phase 3 changes no record and
makes no write call.

Definitions (also printed under the table):
- Theoretical minimum of calls in a phase = per side, reads: ceil(records that had to be read / page), page
  2,000 for Salesforce (a SOQL REST page or a Bulk result page; window and counterparts together), 200 for the
  HubSpot search API (the window), 100 for HubSpot batch reads (the counterparts) and the list API (a full
  resync); the records that had to be read are the window's records plus the counterparts needed (contacts
  paired with a window contact that are not in that side's window), known from the scenario built here;
  writes: ceil(records that had to be written / batch) per target and action (create, update, link), batch 200
  for Salesforce sObject Collections and 100 for HubSpot batch endpoints, from the scenario too (the DAG's own
  outcomes are printed beside it). Fixed calls (Salesforce tokens, describe, limits, Bulk job create/poll/close;
  HubSpot token info and property definitions; the read plan's counts, one call per side the report's
  `read_plan` counted: a Salesforce COUNT() query, a one-result HubSpot search) are the column "fixed"; the
  ratio is shown without and with them.
- Rate-limit floor = the least time the allowed request rates permit for the calls made: HubSpot's rolling
  10-second limit (`--requests-per-10s`, every admitted call except search and token info) and its search
  limit (`--search-per-s`), each with one window's burst at the start (call k, from 0, at window *
  floor(k / limit) at the earliest); the phase's floor is the larger bucket. Salesforce has no request-rate
  limit (only the daily budget), so it adds nothing.
- Wall time = Airflow's start-up taken out: the first task's start to the last task's end (start_date /
  end_date of the run's task instances in the metadata DB, which `airflow dags test` records).
- Reconcile throughput = contacts reconciled (window rows plus fetched counterparts, both sides, from the
  task's "Sync state: N snapshots for S + H contacts" log line, plus the contacts it found equal to the sync
  state, the report's `settled_in_window`; on a full resync every extracted contact) / the reconcile task's
  duration (metadata DB); its duration includes the counterpart reads, rate-limit waits included.
- Peak RSS per task: `airflow dags test` runs every task in its one process, one after another, so the bench
  samples that process every 20 ms: it reads VmHWM (the peak RSS) from /proc/PID/status and resets it by
  writing 5 to /proc/PID/clear_refs, so each sample is the exact peak of its 20 ms interval; each interval is
  charged to the task instances running in it (start/end from the metadata DB). The figure is the process's
  RSS, so it includes Airflow's own baseline (printed under the table with each task's rise over the RSS it
  started with) and memory earlier tasks left mapped; the task named is the one running when the process
  first came within 1% of its maximum. The sampler also looks for child processes (none: the tasks run in it).
- DAG parse time: `airflow dags report` (DagBag's own per-file duration) after each phase.
- Naive: `crm_bench.naive_sync` (one lookup and one write per contact, each way) on a second pair of sandboxes
  seeded identically and edited identically (by email), with HubSpot's rate limits and both daily budgets
  lifted so every call runs (each call counted in the sandbox stats; its HubSpot search is sliced by minute
  to read past the 10,000 cap). Its time in the table is its rate-limit floor (its calls at the allowed
  rates, as above), labelled as such; its measured unthrottled time is printed beside it.
Targets printed beside the figures: calls <= 1.05x the minimum per phase, wall time <= 1.15x the floor,
0 writes in the echo window. Missed targets do not fail the bench; a wrong sync result does.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from benchmarks.call_budget import (  # noqa: E402
    FIXED,
    GROUP_TITLES,
    GROUPS,
    PhaseReads,
    bucket_floor,
    group_calls,
    hubspot_floor,
    hubspot_rate_limited,
    minimum_calls,
)
from benchmarks.crm_bench import T, dag_env, naive_sync, reset_stats, stats  # noqa: E402
from sandbox.testing import SandboxProcess, start_sandbox  # noqa: E402
from tests.integration.airflow_project import DAG_ID, AirflowProject, DagRun  # noqa: E402
from tests.integration.crm_edits import CrmEditor  # noqa: E402
from tests.local_services import create_database, postgres_cluster, postgres_conn_uri, redis_server  # noqa: E402

PHASES = ("initial", "incremental", "echo")
PHASE_TITLES = {"initial": "1 initial sync", "incremental": "2 incremental", "echo": "3 echo"}
MINUTE = timedelta(minutes=1)
WINDOW = timedelta(minutes=15)
GAP = timedelta(hours=2)  # phase 1's interval end -> phase 2's: phase 1's own writes land in between
CALLS_TARGET, WALL_TARGET = 1.05, 1.15
SAMPLE_SECONDS = 0.02
QUIET_SECONDS = 10.5  # HubSpot's rolling window, empty before each phase so the floor's burst is there
UNLIMITED = 10**9
RECONCILE_LINE = re.compile(r"Sync state: (\d+) snapshots for (\d+) \+ (\d+) contacts")
LOG_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z ")


# ---------------------------------------------------------------------------------------------------------
# Memory: the peak RSS of each task of one `airflow dags test` process


class RssSampler:
    """Samples one process's peak RSS every `interval` seconds: VmHWM, then reset through clear_refs (5), so
    each sample is the exact peak since the previous one (without permission to reset: VmRSS). Also notes any
    child process, to confirm the tasks ran in this one process."""

    def __init__(self, interval: float = SAMPLE_SECONDS) -> None:
        self.interval = interval
        self.samples: list[tuple[float, int, int]] = []  # (epoch s, peak KiB since the previous, RSS KiB now)
        self.exact = True
        self.children: set[int] = set()

    @contextmanager
    def watch(self, pid: int) -> Iterator[None]:
        self.samples, self.children = [], set()
        stop = threading.Event()
        thread = threading.Thread(target=self._loop, args=(pid, stop), daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _loop(self, pid: int, stop: threading.Event) -> None:
        count = 0
        while not stop.is_set():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                hwm, rss = (int(fields[key].split()[0]) for key in ("VmHWM", "VmRSS"))
                if self.exact:
                    try:
                        Path(f"/proc/{pid}/clear_refs").write_text("5")
                    except OSError:
                        self.exact = False
                self.samples.append((time.time(), hwm if self.exact else rss, rss))
                count += 1
                if count % 25 == 0:  # twice a second: children of any of its threads
                    for children in Path(f"/proc/{pid}/task").glob("*/children"):
                        self.children.update(int(child) for child in children.read_text().split())
            except (OSError, KeyError, ValueError):
                pass  # the process is gone (or a zombie without memory figures)
            stop.wait(self.interval)


@dataclass
class Memory:
    """Peak RSS per task instance and where the process's maximum was first reached."""

    peaks: dict[str, int]  # task -> peak KiB while it ran
    rises: dict[str, int]  # task -> peak KiB while it ran - RSS KiB when it started
    baseline: int | None  # highest KiB before the first task (Airflow started, the DAG parsed)
    peak_task: str | None  # the task running when the process first came within 1% of its maximum
    children: int = 0

    @property
    def peak(self) -> int:
        return max(self.peaks.values(), default=0)


@dataclass
class TaskRun:
    task_id: str
    map_index: int
    start: float  # epoch seconds
    end: float
    state: str

    @property
    def name(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"


def task_runs(project: AirflowProject, run_id: str) -> list[TaskRun]:
    """The run's task instances with start and end, from the metadata DB `airflow dags test` wrote."""
    with sqlite3.connect(project.home / "airflow.db") as db:
        rows = db.execute(
            "SELECT task_id, map_index, start_date, end_date, state FROM task_instance "
            "WHERE dag_id = ? AND run_id = ? AND start_date IS NOT NULL AND end_date IS NOT NULL",
            (DAG_ID, run_id),
        ).fetchall()
    return sorted(
        (TaskRun(task, int(index), epoch(start), epoch(end), str(state)) for task, index, start, end, state in rows),
        key=lambda task: task.start,
    )


def epoch(stamp: str) -> float:
    moment = datetime.fromisoformat(str(stamp))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def memory_per_task(samples: list[tuple[float, int, int]], tasks: list[TaskRun], children: int = 0) -> Memory:
    """Charge each sample's interval (previous sample, this one] to the task instances running in it."""
    peaks: dict[str, int] = {}
    rises: dict[str, int] = {}
    at_start: dict[str, int] = {}
    previous = samples[0][0] - SAMPLE_SECONDS if samples else 0.0
    for moment, kib, rss in samples:
        for task in tasks:
            if moment < task.start:
                at_start[task.name] = rss  # the last RSS reading before the task started
            elif previous <= task.end:
                peaks[task.name] = max(peaks.get(task.name, 0), kib)
        previous = moment
    for name, kib in peaks.items():
        rises[name] = kib - at_start.get(name, kib)
    first = tasks[0].start if tasks else float("inf")
    before = [kib for moment, kib, _ in samples if moment < first]
    peak_task = None
    if peaks:
        top = max(peaks.values())
        previous = samples[0][0] - SAMPLE_SECONDS
        for moment, kib, _ in samples:
            running = [task for task in tasks if task.start <= moment and previous <= task.end]
            if kib >= 0.99 * top and running:
                peak_task = max(running, key=lambda task: task.start).name
                break
            previous = moment
    return Memory(peaks, rises, max(before) if before else None, peak_task, children)


# ---------------------------------------------------------------------------------------------------------
# The scenario: who is edited, when, and what each phase had to read and write


@dataclass(frozen=True)
class Pair:
    email: str
    salesforce_id: str
    hubspot_id: str


@dataclass(frozen=True)
class Edit:
    moment: datetime
    side: str  # "salesforce" or "hubspot"
    email: str
    fields: dict[str, str]


@dataclass
class Scenario:
    contacts: int
    overlap: int
    changes: int
    both: int
    full_resync: bool
    edits: list[Edit] = field(default_factory=list)

    @property
    def pairs(self) -> int:
        return 2 * self.contacts - self.overlap

    def reads(self, phase: str) -> PhaseReads:
        if phase == "initial" and self.full_resync:
            return PhaseReads(self.contacts, 0, 0, 0, hubspot_listed=self.contacts)
        if phase == "initial":
            return PhaseReads(self.contacts, 0, self.contacts, 0)
        # Phase 2's windows hold the edits; phase 3's hold the sync's writes of phase 2 (the edited contacts'
        # counterparts). Either way `changes` a side, of which `both` pairs have both sides in the windows.
        counterparts = self.changes - self.both
        return PhaseReads(self.changes, counterparts, self.changes, counterparts)

    def writes(self, phase: str) -> dict[tuple[str, str], int]:
        if phase == "initial":
            only = self.contacts - self.overlap  # each side's contacts with no counterpart yet: created
            return {
                (target, action): count
                for target in ("salesforce", "hubspot")
                for action, count in (("create", only), ("update", self.overlap), ("link", only))
            }
        if phase == "incremental":
            return {("salesforce", "update"): self.changes, ("hubspot", "update"): self.changes}
        return {}


def plan_edits(pairs: list[Pair], scenario: Scenario, start: datetime, span: timedelta, seed: int) -> list[Edit]:
    """`changes` edits a side on random pairs: `both` pairs edited on both sides (different fields), the rest
    on one side only; each edit at its own millisecond, spread over [start, start + span), sides interleaved."""
    rng = random.Random(seed)
    one_side = scenario.changes - scenario.both
    chosen = rng.sample(sorted(pairs, key=lambda pair: pair.email), scenario.both + 2 * one_side)
    both, sf_only, hs_only = (
        chosen[: scenario.both],
        chosen[scenario.both : scenario.both + one_side],
        chosen[scenario.both + one_side :],
    )
    work = [("salesforce", pair.email) for pair in both + sf_only] + [
        ("hubspot", pair.email) for pair in both + hs_only
    ]
    rng.shuffle(work)
    step = span / max(len(work), 1)
    edits = []
    for number, (side, email) in enumerate(work):
        moment = start + step * number
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        value = {"salesforce": {"Title": f"Scale title {number}"}, "hubspot": {"firstname": f"Scale{number}"}}[side]
        edits.append(Edit(moment, side, email, value))
    return edits


# ---------------------------------------------------------------------------------------------------------
# The sandboxes' stores: the world as it is, checked independently of the DAG


def norm(email: Any) -> str:
    return str(email or "").strip().lower()


@dataclass
class World:
    salesforce: dict[str, dict[str, Any]]  # Id -> record (active only)
    hubspot: dict[str, dict[str, Any]]  # id -> properties (active only)

    @classmethod
    def read(cls, sandbox: SandboxProcess) -> World:
        sf = sandbox.admin("salesforce", "GET", "records").json()["contacts"]
        hs = sandbox.admin("hubspot", "GET", "records").json()["contacts"]
        return cls(
            {row["Id"]: row for row in sf if not row.get("IsDeleted")},
            {row["id"]: row["properties"] for row in hs if not row.get("archived")},
        )

    def emails(self) -> tuple[set[str], set[str]]:
        return (
            {norm(row.get("Email")) for row in self.salesforce.values()},
            {norm(props.get("email")) for props in self.hubspot.values()},
        )

    def by_email(self) -> tuple[dict[str, str], dict[str, str]]:
        return (
            {norm(row.get("Email")): sf_id for sf_id, row in self.salesforce.items()},
            {norm(props.get("email")): hs_id for hs_id, props in self.hubspot.items()},
        )

    def pairs(self) -> list[Pair]:
        return [
            Pair(norm(row.get("Email")), sf_id, str(row["HubSpot_Contact_Id__c"]))
            for sf_id, row in self.salesforce.items()
            if row.get("HubSpot_Contact_Id__c")
        ]


def check_linked(world: World, universe: set[str], expected: int) -> list[str]:
    """Every contact linked both ways to one contact with its email; `expected` a side; every email once."""
    problems = []
    for side, records in (("salesforce", world.salesforce), ("hubspot", world.hubspot)):
        if len(records) != expected:
            problems.append(f"{side} holds {len(records)} contacts, expected {expected}")
    sf_emails, hs_emails = world.emails()
    for side, emails, records in (
        ("salesforce", sf_emails, world.salesforce),
        ("hubspot", hs_emails, world.hubspot),
    ):
        if len(emails) != len(records):
            problems.append(f"{side}: {len(records) - len(emails)} duplicate contacts (same email)")
        if missing := universe - emails:
            problems.append(f"{side}: {len(missing)} seeded people missing, e.g. {sorted(missing)[:3]}")
        if extra := emails - universe:
            problems.append(f"{side}: {len(extra)} unexpected emails, e.g. {sorted(extra)[:3]}")
    links_to: Counter[str] = Counter()
    broken = unlinked = 0
    for sf_id, row in world.salesforce.items():
        hs_id = row.get("HubSpot_Contact_Id__c")
        if not hs_id:
            unlinked += 1
            continue
        links_to[str(hs_id)] += 1
        counterpart = world.hubspot.get(str(hs_id))
        if (
            counterpart is None
            or counterpart.get("salesforce_contact_id") != sf_id
            or norm(counterpart.get("email")) != norm(row.get("Email"))
        ):
            broken += 1
    unlinked_hs = sum(1 for props in world.hubspot.values() if not props.get("salesforce_contact_id"))
    shared = sum(1 for count in links_to.values() if count > 1)
    for what, count in (
        ("Salesforce contacts without a link", unlinked),
        ("HubSpot contacts without a link", unlinked_hs),
        ("pairs not linked both ways with one email", broken),
        ("HubSpot contacts linked from several Salesforce contacts", shared),
    ):
        if count:
            problems.append(f"{count} {what}")
    return problems


def check_edits(world: World, edits: list[Edit]) -> list[str]:
    """Each edited value on both sides of its pair."""
    sf_by_email, hs_by_email = world.by_email()
    counterpart = {"salesforce": {"Title": "jobtitle"}, "hubspot": {"firstname": "FirstName"}}
    wrong = 0
    for edit in edits:
        sf = world.salesforce.get(sf_by_email.get(edit.email, ""), {})
        hs = world.hubspot.get(hs_by_email.get(edit.email, ""), {})
        for name, value in edit.fields.items():
            other = counterpart[edit.side][name]
            here, there = (sf.get(name), hs.get(other)) if edit.side == "salesforce" else (hs.get(name), sf.get(other))
            wrong += here != value or there != value
    return [f"{wrong} edited values not on both sides"] if wrong else []


def apply_edits(sandbox: SandboxProcess, world: World, edits: list[Edit], *, limited_to: int | None) -> int:
    """Make the edits through the CRMs' REST APIs (HubSpot's limit lifted meanwhile, then `limited_to` again);
    returns the edits whose contact was not found (by email)."""
    sf_by_email, hs_by_email = world.by_email()
    missing = 0
    if limited_to is not None:
        sandbox.admin("hubspot", "POST", "limits", {"requests_per_10s": UNLIMITED})
    try:
        with CrmEditor(sandbox) as editor:
            for edit in edits:
                if edit.side == "salesforce" and edit.email in sf_by_email:
                    editor.salesforce(edit.moment, sf_by_email[edit.email], edit.fields)
                elif edit.side == "hubspot" and edit.email in hs_by_email:
                    editor.hubspot(edit.moment, hs_by_email[edit.email], edit.fields)
                else:
                    missing += 1
    finally:
        if limited_to is not None:
            sandbox.admin("hubspot", "POST", "limits", {"requests_per_10s": limited_to})
    return missing


def run_clock(sandbox: SandboxProcess, moment: datetime) -> None:
    """The shared sandbox clock at `moment`, running: writes of the run get real, increasing timestamps."""
    sandbox.admin("hubspot", "POST", "clock", {"set": moment.isoformat(), "frozen": False})


def freeze_clock(sandbox: SandboxProcess) -> None:
    sandbox.admin("hubspot", "POST", "clock", {"frozen": True})


# ---------------------------------------------------------------------------------------------------------
# One phase of each implementation


@dataclass
class Calls:
    """One phase's requests per endpoint, from the sandboxes' stats."""

    rows: list[tuple[str, str, int, int]]  # (system, endpoint, requests, answered 429)

    @classmethod
    def of(cls, sandbox: SandboxProcess) -> Calls:
        return cls(
            [
                (system, endpoint, int(row["requests"]), int(row["429"]))
                for system, snapshot in stats(sandbox).items()
                for endpoint, row in snapshot.items()
                if endpoint != "total"
            ]
        )

    @property
    def groups(self) -> dict[str, int]:
        return group_calls((system, endpoint, requests) for system, endpoint, requests, _ in self.rows)

    @property
    def total(self) -> int:
        return sum(requests for _, _, requests, _ in self.rows)

    @property
    def throttled(self) -> int:
        return sum(answered for _, _, _, answered in self.rows)

    def floor(self, args: argparse.Namespace) -> tuple[float, str]:
        return hubspot_floor(*self._hubspot(), requests_per_10s=args.requests_per_10s, search_per_s=args.search_per_s)

    def floor_reading_first(self, args: argparse.Namespace) -> float:
        """The floor when the window's searches must end before the other HubSpot calls start (a sync must
        read a window before it can decide a write): the two buckets one after the other."""
        non_search, search = self._hubspot()
        return bucket_floor(search, args.search_per_s, 1.0) + bucket_floor(non_search, args.requests_per_10s, 10.0)

    def _hubspot(self) -> tuple[int, int]:
        admitted = {endpoint: n - n429 for system, endpoint, n, n429 in self.rows if system == "hubspot"}
        return hubspot_rate_limited(admitted)


@dataclass
class DagPhase:
    phase: str
    run: DagRun
    calls: Calls
    tasks: list[TaskRun]
    memory: Memory
    parse_ms: float | None
    problems: list[str] = field(default_factory=list)

    @property
    def report(self) -> dict[str, Any]:
        return self.run.report or {}

    @property
    def wall(self) -> float | None:
        if not self.tasks:
            return None
        return max(task.end for task in self.tasks) - min(task.start for task in self.tasks)

    @cached_property
    def in_operators(self) -> float | None:
        """The run's time in its operators (see `operator_seconds`)."""
        return operator_seconds(self.run.log)

    @property
    def written(self) -> Counter[tuple[str, str]]:
        """Records the DAG sent per (target, action), from its report (ok and refused; dry runs excluded)."""
        out: Counter[tuple[str, str]] = Counter()
        for key, count in self.report.get("outcomes", {}).items():
            target, action, status = key.split(".")
            if status != "dry_run":
                out[target, action] += int(count)
        return out

    @property
    def groups(self) -> dict[str, int]:
        """Calls per group, with the read plan's counts (one call per side it counted, per the report: a
        Salesforce COUNT() query, a one-result HubSpot search) moved from the reads to the fixed calls."""
        groups = self.calls.groups
        for side, plan in (self.report.get("read_plan") or {}).items():
            group = {"salesforce": "sf_reads", "hubspot": "hs_search"}.get(side)
            if group and isinstance(plan, dict) and plan.get("contacts") is not None and groups[group]:
                groups[group] -= 1
                groups[FIXED] += 1
        return groups

    def reconcile_rate(self) -> tuple[float, int, float] | None:
        """(contacts per second, contacts, seconds) of the reconcile task: the contacts it reconciled (its log
        line, plus those it found equal to the sync state), else every contact extracted (a full resync)."""
        task = next((task for task in self.tasks if task.task_id == "reconcile"), None)
        if task is None:
            return None
        match = RECONCILE_LINE.search(self.run.log)
        if match is not None:
            settled = self.report.get("settled_in_window") or {}
            contacts = int(match.group(2)) + int(match.group(3)) + sum(int(n) for n in settled.values())
        else:
            contacts = sum(int(n) for n in (self.report.get("extracted") or {}).values())
        seconds = task.end - task.start
        return contacts / seconds if seconds > 0 else float("inf"), contacts, seconds


TASK_START = "task start"  # `operator_spans`' marker of a new task in a log that holds several
END_GROUP, POST_EXECUTE = "::endgroup::", "::group::Post Execute"


def operator_spans(events: Iterable[tuple[float, str]]) -> list[tuple[float, float]]:
    """Each task's (start, end) inside its operator, from its log's markers in order, `(moment, marker)`: from
    the end of Airflow's pre-execute group (the task runner's first `END_GROUP`) to its `POST_EXECUTE` group.
    `TASK_START` opens the next task of a log that runs several (`airflow dags test`)."""
    spans: list[tuple[float, float]] = []
    began: float | None = None
    waiting = True  # inside a task, before its pre-execute group ended
    for moment, marker in events:
        if marker == TASK_START:
            waiting, began = True, None
        elif waiting and marker == END_GROUP:
            waiting, began = False, moment
        elif began is not None and marker == POST_EXECUTE:
            spans.append((began, moment))
            began = None
    return spans


def operator_seconds(log: str) -> float | None:
    """Seconds the tasks spent in their operators, from the `airflow dags test` log (`operator_spans`; the first
    task's pre-execute includes starting the in-process execution API). Tasks run one after another there, so
    the sum is the run's time with every task's Airflow start-up and wrap-up taken out."""

    def markers() -> Iterator[tuple[float, str]]:
        for line in log.splitlines():
            match = LOG_STAMP.match(line)
            if match is None:
                continue
            moment = datetime.fromisoformat(match.group(1)).timestamp()
            if "[DAG TEST] starting task_id=" in line:
                yield moment, TASK_START
            elif END_GROUP in line and "[task]" in line:
                yield moment, END_GROUP
            elif POST_EXECUTE in line:
                yield moment, POST_EXECUTE

    spans = operator_spans(markers())
    return sum(end - start for start, end in spans) if spans else None


@dataclass
class NaivePhase:
    phase: str
    calls: Calls
    seconds: float
    outcome: dict[str, int]


def quiet(last_hubspot_call: float) -> None:
    """Wait until HubSpot's rolling window (and the pool's) holds none of the previous calls."""
    time.sleep(max(0.0, last_hubspot_call + QUIET_SECONDS - time.monotonic()))


def dag_phase(
    phase: str,
    project: AirflowProject,
    sandbox: SandboxProcess,
    env: dict[str, str],
    end: datetime,
    conf: dict[str, Any],
    sampler: RssSampler,
) -> DagPhase:
    run_clock(sandbox, end + MINUTE)
    reset_stats(sandbox)
    print(f"[{phase}] airflow dags test {end.isoformat()} {json.dumps(conf)}", flush=True)
    run = project.dags_test(end.isoformat(), conf=conf, env=env, watch=sampler.watch, timeout=3 * 3600)
    calls = Calls.of(sandbox)
    freeze_clock(sandbox)
    run_id = (run.report or {}).get("run_id")
    tasks = task_runs(project, run_id) if run_id else []
    memory = memory_per_task(sampler.samples, tasks, len(sampler.children))
    result = DagPhase(phase, run, calls, tasks, memory, parse_ms(project, env))
    log_path = project.home / f"dags-test-{phase}.log"
    log_path.write_text(run.log)
    if run.returncode != 0 or run.report is None:
        failed = [line for line in run.log.splitlines() if "did not succeed" in line or "Task failed" in line]
        result.problems.append(
            f"the DAG run failed (exit {run.returncode}): {(failed or ['see the log'])[-1][:300]} (log: {log_path})"
        )
    print(f"[{phase}] {run.seconds:.1f} s, {calls.total} API calls", flush=True)
    return result


def parse_ms(project: AirflowProject, env: dict[str, str]) -> float | None:
    """DagBag's own parse duration of the DAG file (`airflow dags report`), in milliseconds."""
    try:
        rows = json.loads(project.airflow("dags", "report", "-o", "json", extra_env=env).strip().splitlines()[-1])
    except (RuntimeError, ValueError, IndexError):
        return None
    for row in rows:
        if str(row.get("file", "")).endswith("crm_contact_sync.py"):
            return _duration_seconds(row.get("duration")) * 1000
    return None


def _duration_seconds(value: Any) -> float:
    """`0:00:00.021000` (timedelta text) or a number of seconds."""
    if isinstance(value, int | float):
        return float(value)
    hours, minutes, seconds = str(value).split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def naive_phase(phase: str, sandbox: SandboxProcess, end: datetime) -> NaivePhase:
    run_clock(sandbox, end + MINUTE)
    reset_stats(sandbox)
    print(f"[naive {phase}] window ending {end.isoformat()}", flush=True)
    result = naive_sync(sandbox, window_end=end, per_second=None, slice_minutes=1)
    calls = Calls.of(sandbox)
    freeze_clock(sandbox)
    print(f"[naive {phase}] {result['seconds']:.1f} s, {calls.total} API calls", flush=True)
    return NaivePhase(phase, calls, result["seconds"], result["outcome"])


# ---------------------------------------------------------------------------------------------------------
# The table


def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "n/a"


def _mark(value: float, base: float, target: float) -> str:
    if not base:
        return "n/a"
    ratio = value / base
    return f"{ratio:.2f}x {'✓' if ratio <= target else '✗'}"


def render(
    args: argparse.Namespace,
    scenario: Scenario,
    dag: dict[str, DagPhase],
    naive: dict[str, NaivePhase],
    notes: list[str],
) -> str:
    headers = [
        "phase",
        *(f"{GROUP_TITLES[group]} (min)" for group in GROUPS),
        "fixed",
        f"calls/min excl. fixed (≤{CALLS_TARGET}x)",
        "calls/min incl. fixed",
        "429s",
        "wall s (first task → last)",
        "rate-limit floor s",
        f"wall/floor (≤{WALL_TARGET}x)",
        "in operators s (/floor)",
        "records written (needed)",
        "reconcile contacts/s",
        "peak RSS MiB (task)",
        "DAG parse ms",
        "naive calls",
        "naive time s: rate-limit floor (measured unthrottled)",
        "calls DAG/naive",
        "time DAG/naive (wall / naive floor)",
    ]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for phase in PHASES:
        if phase not in dag:
            continue
        result = dag[phase]
        groups = result.groups
        minimum = minimum_calls(scenario.reads(phase), scenario.writes(phase))
        variable, fixed, least = sum(groups[g] for g in GROUPS), groups[FIXED], sum(minimum.values())
        floor, bucket = result.calls.floor(args)
        wall, inside = result.wall, result.in_operators
        written, needed = sum(result.written.values()), sum(scenario.writes(phase).values())
        if phase == "echo":
            written_cell = f"{written:,} {'✓' if written == 0 else '✗'} (target 0)"
        else:
            written_cell = f"{written:,} ({needed:,})"
        rate = result.reconcile_rate()
        memory = result.memory
        naive_cells = ["–", "–", "–", "–"]
        if phase in naive:
            other = naive[phase]
            naive_floor, _ = other.calls.floor(args)
            naive_cells = [
                f"{other.calls.total:,}",
                f"{naive_floor:,.0f} ({other.seconds:,.1f})",
                _ratio(result.calls.total, other.calls.total),
                _ratio(wall, naive_floor) if wall is not None else "n/a",
            ]
        cells = [
            PHASE_TITLES[phase],
            *(f"{groups[g]:,} ({minimum[g]:,})" for g in GROUPS),
            f"{fixed:,}",
            _mark(variable, least, CALLS_TARGET),
            _ratio(variable + fixed, least),
            f"{result.calls.throttled:,}",
            f"{wall:,.1f}" if wall is not None else "n/a",
            f"{floor:,.0f} ({bucket})",
            _mark(wall, floor, WALL_TARGET) if wall is not None and floor else "n/a (floor 0)",
            f"{inside:,.1f} ({_mark(inside, floor, WALL_TARGET)})" if inside is not None else "n/a",
            written_cell,
            f"{rate[0]:,.0f} ({rate[1]:,} in {rate[2]:.1f} s)" if rate else "n/a",
            f"{memory.peak / 1024:,.0f} ({memory.peak_task})" if memory.peak_task else "n/a",
            f"{result.parse_ms:.0f}" if result.parse_ms is not None else "n/a",
            *naive_cells,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    mode = "full resync" if args.initial_full_resync else "window"
    head = [
        f"# bench_scale: {args.contacts:,} contacts a side, {args.overlap:,} on both sides, {args.changes:,} changes "
        f"a side ({scenario.both:,} pairs changed on both sides)",
        "",
        f"HubSpot limits {args.requests_per_10s} per 10 s, search {args.search_per_s} per s; lookback "
        f"{args.lookback_minutes} min; phase 1 as a {mode}; seed {args.seed}; commit {checkout_commit()}; "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
    ]
    definitions = [
        "",
        "Cells: calls made (theoretical minimum). Targets: calls ≤ 1.05x the minimum per phase, wall time ≤ 1.15x "
        "the floor, 0 writes in the echo window (✓ met, ✗ missed; the bench fails only on a wrong sync result).",
        "- Theoretical minimum = per side, reads: ceil(records that had to be read / page), page 2,000 for "
        "Salesforce (a SOQL REST page or a Bulk result page), 200 for HubSpot search, 100 for HubSpot batch reads "
        "and the list API; the records that had to be read are the window's plus the counterparts needed (paired "
        "with a window contact, not in that side's window), from the scenario; writes: ceil(records that had to be "
        "written / batch) per target and action (create, update, link), batch 200 for Salesforce sObject "
        "Collections, 100 for HubSpot batch endpoints.",
        "- fixed = Salesforce tokens, describe, limits, Bulk job create/poll/close; HubSpot token info and property "
        "definitions; the read plan's counts (a Salesforce COUNT() query, a one-result HubSpot search: one per side "
        "the report's read_plan counted). 'calls/min' divides all non-fixed calls (excl.) or all calls (incl.) by "
        "the phase's minimum.",
        "- Rate-limit floor = least time HubSpot's rolling 10-second limit (every admitted call but search and "
        "token info) and its search limit permit for the calls made, one window's burst allowed at the start; "
        "the larger bucket (named). Salesforce has no request-rate limit. Wall time = first task start to last "
        "task end (task instances in the metadata DB): Airflow's start-up taken out. 'in operators' = the same "
        "run with each task's Airflow start-up and wrap-up taken out as well (from the dags-test log: the end of the "
        "task runner's pre-execute group to its Post Execute group, summed; the first task's pre-execute starts "
        "Airflow's in-process execution API, 6-8 s here).",
        "- Reconcile contacts/s = window rows + fetched counterparts, both sides (its log line), + those found equal "
        "to the sync state (report) / the reconcile task's duration (metadata DB; counterpart reads and their "
        "rate-limit waits included).",
        "- Peak RSS = the `airflow dags test` process's peak RSS (VmHWM, reset every 20 ms through "
        "/proc/PID/clear_refs); the task named was running when the process first came within 1% of its maximum. "
        "All tasks run in that one process, so the figure includes Airflow's baseline and memory earlier tasks left "
        "mapped; each task's own rise is listed below.",
        "- DAG parse = `airflow dags report` (DagBag's parse duration of dags/crm_contact_sync.py).",
        "- naive = the per-record script (one lookup and one write per contact, each way) on sandboxes seeded and "
        "edited identically, with HubSpot's rate limits lifted so every call is counted: its time is its "
        "RATE-LIMIT FLOOR (its HubSpot calls at the limits above), not a measured time; the measured unthrottled "
        "time is in brackets. 'time DAG/naive' = the DAG's wall time / that floor.",
    ]
    return "\n".join([*head, *lines, *definitions, "", *notes]) + "\n"


def checkout_commit() -> str:
    """The checkout's commit (and whether it has local changes), so a table names the code it measured."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" + local changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def phase_notes(
    scenario: Scenario, dag: dict[str, DagPhase], naive: dict[str, NaivePhase], args: argparse.Namespace
) -> list[str]:
    notes = ["Per phase:"]
    for phase in PHASES:
        if phase not in dag:
            continue
        result = dag[phase]
        reads = scenario.reads(phase)
        written = ", ".join(f"{t}.{a} {n:,}" for (t, a), n in sorted(result.written.items())) or "none"
        needed = ", ".join(f"{t}.{a} {n:,}" for (t, a), n in sorted(scenario.writes(phase).items())) or "none"
        endpoints = ", ".join(f"{system} {endpoint} {n:,}" for system, endpoint, n, _ in sorted(result.calls.rows) if n)
        extracted = result.report.get("extracted", {})
        memory = result.memory
        baseline = f"{memory.baseline / 1024:,.0f} MiB" if memory.baseline else "n/a"
        rises = sorted(memory.rises.items(), key=lambda item: -item[1])[:3]
        slowest = sorted(result.tasks, key=lambda task: task.start - task.end)[:4]
        notes += [
            f"- {PHASE_TITLES[phase]}: window to read Salesforce {reads.salesforce_window:,} + "
            f"{reads.salesforce_counterparts:,} counterparts, HubSpot {reads.hubspot_window:,} + "
            f"{reads.hubspot_counterparts:,} counterparts"
            + (f" + {reads.hubspot_listed:,} listed" if reads.hubspot_listed else "")
            + f"; the DAG extracted {extracted}. Written by the DAG: {written}; needed: {needed}.",
            f"  - process {result.run.seconds:.1f} s including Airflow's start-up; RSS before the first task "
            f"{baseline}; largest rises while a task ran: "
            + ", ".join(f"{name} +{kib / 1024:,.0f} MiB" for name, kib in rises)
            + f"; child processes seen: {memory.children}; slowest tasks: "
            + ", ".join(f"{task.name} {task.end - task.start:.1f} s" for task in slowest),
            f"  - endpoints: {endpoints}",
        ]
        ordered, inside = result.calls.floor_reading_first(args), result.in_operators
        if ordered and result.wall is not None and inside is not None:
            notes.append(
                f"  - rate-limit floor with the window read before any write (search bucket, then the 10-second "
                f"bucket): {ordered:,.0f} s; wall {result.wall / ordered:.2f}x, in operators {inside / ordered:.2f}x"
            )
        if result.report.get("read_plan") is not None:
            notes.append(f"  - read_plan: {json.dumps(result.report['read_plan'], sort_keys=True)}")
        if phase in naive:
            other = naive[phase]
            notes.append(
                f"  - naive: {other.calls.total:,} calls ({other.calls.groups}), outcome {other.outcome}, "
                f"measured {other.seconds:.1f} s unthrottled"
            )
        for problem in result.problems:
            notes.append(f"  - WRONG: {problem}")
    return notes


# ---------------------------------------------------------------------------------------------------------


def add_initial_sync_arguments(parser: argparse.ArgumentParser) -> None:
    """The data and limits of phase 1 (the initial sync), shared with `bench_scheduled`."""
    parser.add_argument("--contacts", type=int, default=20_000, help="contacts a side")
    parser.add_argument("--overlap", type=int, default=2_000, help="people on both sides")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--requests-per-10s", type=int, default=100, help="HubSpot's rolling 10-second limit")
    parser.add_argument("--search-per-s", type=int, default=5, help="HubSpot's search limit")
    parser.add_argument("--lookback-minutes", type=int, default=10, help="the DAG param (its default: 10)")


def seeding(args: argparse.Namespace) -> dict[str, Any]:
    """`start_sandbox` options that seed phase 1's data: every contact modified in the window ending at T, only
    data both CRMs accept, the clock frozen just before T."""
    return {
        "contacts": args.contacts,
        "overlap": args.overlap,
        "valid_only": True,
        "seed": args.seed,
        "clock": (T - timedelta(seconds=30)).isoformat(),
        "freeze_clock": True,
        "window_minutes": 14,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_initial_sync_arguments(parser)
    parser.add_argument("--changes", type=int, default=1_000, help="edits a side in the incremental window")
    parser.add_argument("--both-share", type=float, default=0.2, help="share of the edits on pairs edited both sides")
    parser.add_argument("--initial-full-resync", action="store_true", help="phase 1 as a full resync")
    parser.add_argument("--no-naive", action="store_true", help="the DAG only")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_scale.md")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, staged data)")
    args = parser.parse_args()
    if not 0 <= args.lookback_minutes < 15:
        parser.error("--lookback-minutes must be below the 15-minute interval (the edits go before it)")
    if not 0 < args.overlap <= args.contacts:
        parser.error("--overlap must be between 1 and --contacts")
    both = round(args.changes * args.both_share)
    if 2 * args.changes - both > 2 * args.contacts - args.overlap:
        parser.error("more changes than pairs")
    scenario = Scenario(args.contacts, args.overlap, args.changes, both, args.initial_full_resync)
    ends = {"initial": T, "incremental": T + GAP, "echo": T + GAP + WINDOW}
    conf = {"lookback_minutes": args.lookback_minutes}
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    print(f"working in {tmp}", flush=True)
    seeded = seeding(args)
    dag: dict[str, DagPhase] = {}
    naive: dict[str, NaivePhase] = {}
    notes: list[str] = []
    with ExitStack() as stack:
        redis_url = stack.enter_context(redis_server(tmp))
        state_conn = postgres_conn_uri(create_database(stack.enter_context(postgres_cluster()), "crm_sync_state"))
        sandbox = stack.enter_context(
            start_sandbox(
                tmp / "dag-sandbox",
                timeout=300,
                hubspot_requests_per_10s=args.requests_per_10s,
                hubspot_search_requests_per_s=args.search_per_s,
                **seeded,
            )
        )
        project = AirflowProject(tmp / "airflow")
        project.migrate()
        env = dag_env(
            sandbox, redis_url, state_conn, requests_per_10s=args.requests_per_10s, search_per_s=args.search_per_s
        )
        sampler = RssSampler()
        before = World.read(sandbox)
        universe = set().union(*before.emails())
        if len(universe) != scenario.pairs:
            raise SystemExit(f"the seeded data has {len(universe)} people, expected {scenario.pairs}")
        last_hubspot = time.monotonic()

        for phase in PHASES:
            phase_conf = {**conf, **({"full_resync": True} if phase == "initial" and args.initial_full_resync else {})}
            if phase == "incremental":
                start = ends["incremental"] - WINDOW
                span = WINDOW - timedelta(minutes=args.lookback_minutes)
                scenario.edits = plan_edits(World.read(sandbox).pairs(), scenario, start, span, args.seed)
                print(f"[{phase}] {len(scenario.edits):,} edits through the sandboxes", flush=True)
                apply_edits(sandbox, World.read(sandbox), scenario.edits, limited_to=args.requests_per_10s)
                last_hubspot = time.monotonic()
            quiet(last_hubspot)
            before_phase = World.read(sandbox) if phase == "echo" else None
            result = dag_phase(phase, project, sandbox, env, ends[phase], phase_conf, sampler)
            last_hubspot = time.monotonic()
            world = World.read(sandbox)
            result.problems += check_linked(world, universe, scenario.pairs)
            if phase == "initial":
                stamps = [row.get("SystemModstamp") for row in world.salesforce.values()] + [
                    props.get("lastmodifieddate") for props in world.hubspot.values()
                ]
                latest = max(epoch(str(stamp).replace("Z", "+00:00")) for stamp in stamps if stamp)
                reads_from = ends["incremental"] - WINDOW - timedelta(minutes=args.lookback_minutes)
                if latest >= reads_from.timestamp():
                    result.problems.append(f"phase 1 wrote at {latest}, inside phase 2's read range")
            if phase == "incremental":
                result.problems += check_edits(world, scenario.edits)
            if phase == "echo":
                write_calls = result.groups["sf_writes"] + result.groups["hs_writes"]
                if write_calls:
                    result.problems.append(f"{write_calls} write calls in the echo window")
                if before_phase is not None and (
                    before_phase.salesforce != world.salesforce or before_phase.hubspot != world.hubspot
                ):
                    changed = sum(before_phase.salesforce.get(k) != v for k, v in world.salesforce.items()) + sum(
                        before_phase.hubspot.get(k) != v for k, v in world.hubspot.items()
                    )
                    result.problems.append(f"{changed} records changed in the echo window")
                if sum(result.written.values()):
                    result.problems.append(f"the DAG reports {sum(result.written.values())} writes in the echo window")
            dag[phase] = result
            if result.problems:
                print(f"[{phase}] WRONG: {result.problems}", flush=True)
        sandbox.stop()

        if not args.no_naive:
            # Seeded identically; HubSpot's limits and both daily budgets lifted: every naive call runs and counts.
            other = stack.enter_context(
                start_sandbox(
                    tmp / "naive-sandbox",
                    timeout=300,
                    hubspot_requests_per_10s=UNLIMITED,
                    hubspot_search_requests_per_s=UNLIMITED,
                    hubspot_daily_limit=UNLIMITED,
                    salesforce_daily_limit=UNLIMITED,
                    **seeded,
                )
            )
            for phase in PHASES:
                if phase == "incremental":
                    missing = apply_edits(other, World.read(other), scenario.edits, limited_to=None)
                    if missing:
                        notes.append(f"naive: {missing} edits found no contact by email in the naive world")
                naive[phase] = naive_phase(phase, other, ends[phase])

    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        notes.append(f"working folder kept: {tmp}")
    table = render(args, scenario, dag, naive, phase_notes(scenario, dag, naive, args) + notes)
    print("\n" + table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(f"written to {args.out}")
    wrong = [problem for result in dag.values() for problem in result.problems]
    return 1 if wrong or len(dag) < len(PHASES) else 0


if __name__ == "__main__":
    sys.exit(main())
