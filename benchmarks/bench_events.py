"""Change-to-sync latency and API calls per synced change: the event-driven DAG against the windowed DAG on the same
stream of edits, under the real scheduler, in steady state (issue 20).

Processes as in the multi-worker proof (`tests/multiworker/proof.py`), with the LocalExecutor instead of Celery:
PostgreSQL (metadata DB and sync state), Redis (the event queue and the rate-limit pool), both CRM sandboxes on the
real clock (HubSpot sends signed webhooks to the api-server's endpoint; Salesforce is found by the trigger's poll),
Airflow's api-server, scheduler, dag-processor and triggerer.

1. `--contacts` people on both sides (valid data); one full resync (`airflow dags test`, not measured) pairs them.
2. Before every phase's stream the sandboxes' admin `age` moves every record's stamps `AGE` back: the paired
   contacts were then last modified long before any window (+ lookback) a measured run reads, as in steady state
   (a contact edited today was last synced long ago), so the windowed runs must look every counterpart up.
3. Events, one phase per `--rates` rate: only `crm_contact_sync_events` unpaused. For `--minutes`, `rate` edits a
   second, the CRMs taking turns, each a new job title on a paired contact no other edit of the run touches,
   through the CRM's own API (as a user's edit). A watcher reads the pending edits' counterparts (sandbox admin
   reads) every second: an edit is synced when the other CRM holds its value; latency = that moment - the edit's.
   API calls: both sandboxes' request counts over the phase, until the event runs are idle again (so the reads of
   their own writes' echoes are in), less the edits' own requests.
4. Windowed: the event DAG paused, `crm_contact_sync` unpaused (its 15-minute schedule).
   - Steady (`--steady-rate`): a stream that does not stop, from now until the run of the first full window after
     its start is done; that run is measured. It reads a full window of edits, the lookback's again, and the echoes
     of the run before it (which synced the stream's first part); its own echoes are the next run's share as the
     previous run's are its. Latency: the edits of that window (uniformly placed in it, as a steady stream's are).
   - Short (`--windowed-rates`, after the steady phase): `--minutes` of edits inside one window, until synced and
     the run is done; the echoes fall in the next window and are not counted, and the window holds only a short
     stream's edits (a steady stream's fixed per-run calls are spread over a full window's).
Prints p50 / p95 / max latency, edits never synced, API calls per synced change, and writes them to `--out`.

    .venv/bin/python benchmarks/bench_events.py                  # events 1/s (2 min), windowed steady 1/s (~35 min)
    .venv/bin/python benchmarks/bench_events.py --rates 1 5 --windowed-rates 5 --finish-by 04:36
    .venv/bin/python benchmarks/bench_events.py --no-windowed    # the event path only (~5 minutes)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from hubspot import HubSpot  # noqa: E402

from benchmarks.crm_bench import dag_env, salesforce_client  # noqa: E402
from sandbox.testing import SandboxProcess, start_sandbox  # noqa: E402
from tests.local_services import postgres_cluster, redis_server, wait_for_port  # noqa: E402
from tests.multiworker.proof import airflow, airflow_env, quarter_floor, start  # noqa: E402

EVENT_DAG = "crm_contact_sync_events"
WINDOWED_DAG = "crm_contact_sync"
WEBHOOK_SECRET = "bench-events-webhook-secret"
WEBHOOK_PATH = "/crm-sync-events/hubspot"
REDIS_DB = 1
WINDOW = timedelta(minutes=15)  # the windowed DAG's schedule (CronDataIntervalTimetable */15)
#: How far each phase moves every record's stamps back: more than the windowed run's read (its 15-minute window
#: and the default 10-minute lookback), so no paired contact is in a measured run's read unless edited in it.
AGE = timedelta(hours=1)
#: How long the steady windowed stream may last: the rest of one window, a full window, its run, and a margin.
STEADY_SPAN = 2 * WINDOW + timedelta(minutes=10)
RUN_ALLOWANCE = timedelta(minutes=4)  # a windowed run's start delay and duration, for planning


@dataclass
class Edit:
    """One edit of the stream: a new value of one field on one side, and when the other side held it."""

    side: str  # "salesforce" or "hubspot": where the edit was made
    contact: str  # the edited contact's id on that side
    counterpart: str  # its pair's id on the other side
    value: str
    edited_at: float  # epoch seconds, when the CRM answered the edit
    synced_at: float | None = None

    @property
    def latency(self) -> float | None:
        return None if self.synced_at is None else self.synced_at - self.edited_at


@dataclass
class Count:
    """The sandboxes' request counts per CRM and endpoint at one moment (since the last reset), and the edits made
    by then (the editor's own count)."""

    endpoints: dict[str, dict[str, int]]
    edits: dict[str, int]


@dataclass
class Calls:
    """API requests between two counts: per CRM less the edits' own, and every request per endpoint."""

    per_crm: dict[str, int]
    endpoints: dict[str, dict[str, int]]

    @classmethod
    def between(cls, before: Count, after: Count) -> Calls:
        endpoints = {
            side: {
                path: n - before.endpoints.get(side, {}).get(path, 0)
                for path, n in paths.items()
                if n > before.endpoints.get(side, {}).get(path, 0)
            }
            for side, paths in after.endpoints.items()
        }
        per_crm = {
            side: sum(paths.values()) - (after.edits[side] - before.edits[side]) for side, paths in endpoints.items()
        }
        return cls(per_crm, endpoints)

    @property
    def total(self) -> int:
        return sum(self.per_crm.values())

    def text(self) -> str:
        return f"{self.total} (" + ", ".join(f"{side} {n}" for side, n in sorted(self.per_crm.items())) + ")"


@dataclass
class Phase:
    """What one DAG did with one stream."""

    name: str
    edits: list[Edit]  # the edits whose sync the phase measures
    calls: Calls  # the measured runs' API calls
    runs: int
    seconds: float
    load: list[float]  # the 1-minute load average, sampled during the stream
    echo_reads: str  # where the reads of the sync's own writes' echoes are

    @property
    def synced(self) -> list[float]:
        return sorted(edit.latency for edit in self.edits if edit.latency is not None)

    def row(self) -> str:
        done = self.synced
        load = f"{statistics.mean(self.load):.1f} / {max(self.load):.1f}" if self.load else "-"
        head = f"| {self.name} | {len(done)} of {len(self.edits)}"
        if not done:
            return f"{head} | - | - | - | {self.calls.text()} | {self.echo_reads} | - | {self.runs} | {load} |"
        p95 = statistics.quantiles(done, n=20, method="inclusive")[-1] if len(done) > 1 else done[0]
        return (
            f"{head} | {statistics.median(done):.1f} | {p95:.1f} | {done[-1]:.1f} | {self.calls.text()} | "
            f"{self.echo_reads} | {self.calls.total / len(done):.3f} | {self.runs} | {load} |"
        )


class World:
    """The paired contacts (from both sandboxes' records) and what each side holds now."""

    def __init__(self, sandbox: SandboxProcess) -> None:
        self.sandbox = sandbox

    def records(self, ids: dict[str, list[str]] | None = None) -> dict[str, dict[str, dict[str, Any]]]:
        """Every contact of both sides, or (`ids`) only those with these ids, per side."""

        def read(system: str) -> list[dict[str, Any]]:
            path = "records" if ids is None else "records?ids=" + ",".join(ids[system])
            return self.sandbox.admin(system, "GET", path).json()["contacts"]

        sf, hs = read("salesforce"), read("hubspot")
        return {
            "salesforce": {row["Id"]: row for row in sf if not row["IsDeleted"]},
            "hubspot": {row["id"]: row["properties"] for row in hs if not row["archived"]},
        }

    def pairs(self) -> list[tuple[str, str]]:
        """(Salesforce Id, HubSpot id) of contacts linked both ways."""
        held = self.records()
        return sorted(
            (sf_id, row["HubSpot_Contact_Id__c"])
            for sf_id, row in held["salesforce"].items()
            if row.get("HubSpot_Contact_Id__c")
            and held["hubspot"].get(row["HubSpot_Contact_Id__c"], {}).get("salesforce_contact_id") == sf_id
        )

    @staticmethod
    def holds(records: dict[str, dict[str, dict[str, Any]]], edit: Edit) -> bool:
        """The other side holds the edit's value."""
        if edit.side == "salesforce":
            return records["hubspot"].get(edit.counterpart, {}).get("jobtitle") == edit.value
        return records["salesforce"].get(edit.counterpart, {}).get("Title") == edit.value


class Editor:
    """Edits job titles through each CRM's own API, as a user or another integration would."""

    def __init__(self, sandbox: SandboxProcess) -> None:
        self.salesforce = salesforce_client(sandbox)  # logs in now: the token request is not a phase's call
        self.hubspot = HubSpot(access_token=sandbox.hubspot_token, host=sandbox.hubspot_url)
        self.made = {"salesforce": 0, "hubspot": 0}

    def edit(self, side: str, contact: str, counterpart: str, value: str) -> Edit:
        if side == "salesforce":
            self.salesforce.Contact.update(contact, {"Title": value})
        else:
            self.hubspot.crm.contacts.basic_api.update(contact, {"properties": {"jobtitle": value}})
        self.made[side] += 1
        return Edit(side, contact, counterpart, value, time.time())


@dataclass
class Stream:
    """Edits at `rate` a second, the CRMs taking turns, one paired contact per edit, watched meanwhile (a thread)
    every `watch` seconds so each edit's sync time is seen as it happens; the load average sampled as often."""

    name: str
    rate: float
    watch: float
    edits: list[Edit] = field(default_factory=list)
    load: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)  # set: no further edit

    def run(self, editor: Editor, world: World, pairs: list[tuple[str, str]]) -> None:
        """Edit until the pairs run out or `stop` is set."""
        done = threading.Event()

        def watched() -> None:
            while not done.wait(self.watch):
                self.load.append(os.getloadavg()[0])
                mark_synced(world, list(self.edits))

        watcher = threading.Thread(target=watched, daemon=True)
        watcher.start()
        start_at = time.monotonic()
        for number, (sf_id, hs_id) in enumerate(pairs):
            self.stop.wait(max(0.0, start_at + number / self.rate - time.monotonic()))
            if self.stop.is_set():
                break
            side = "salesforce" if number % 2 == 0 else "hubspot"
            own, other = (sf_id, hs_id) if side == "salesforce" else (hs_id, sf_id)
            self.edits.append(editor.edit(side, own, other, f"{self.name} edit {number} {time.time():.0f}"))
        done.set()
        watcher.join()


def mark_synced(world: World, edits: list[Edit]) -> None:
    """Note, for every edit not yet synced, whether the other side holds its value now."""
    pending = [edit for edit in edits if edit.synced_at is None]
    if not pending:
        return
    records = world.records(
        {
            "salesforce": [edit.counterpart for edit in pending if edit.side == "hubspot"],
            "hubspot": [edit.counterpart for edit in pending if edit.side == "salesforce"],
        }
    )
    now = time.time()
    for edit in pending:
        if World.holds(records, edit):
            edit.synced_at = now


def wait_synced(world: World, edits: list[Edit], deadline: float, every: float) -> None:
    while any(edit.synced_at is None for edit in edits) and time.time() < deadline:
        mark_synced(world, edits)
        time.sleep(every)


def requests_made(sandbox: SandboxProcess) -> dict[str, dict[str, int]]:
    """API requests per CRM and endpoint since the stats were reset, by the sandboxes' own count; Salesforce's
    token requests left out (its API limits do not count them, and each task logs in anew)."""
    made: dict[str, dict[str, int]] = {}
    for system in ("salesforce", "hubspot"):
        rows = sandbox.admin(system, "GET", "stats").json()
        made[system] = {
            endpoint: int(row["requests"])
            for endpoint, row in rows.items()
            if endpoint != "total" and row["requests"] and "oauth2/token" not in endpoint
        }
    return made


def count(sandbox: SandboxProcess, editor: Editor) -> Count:
    """The request counts now, with the editor's count taken on both sides of them (again if an edit came between)."""
    while True:
        edits = dict(editor.made)
        made = requests_made(sandbox)
        if editor.made == edits:
            return Count(made, edits)


def start_counting(sandbox: SandboxProcess, editor: Editor) -> Count:
    """Every record's stamps `AGE` back (steady state: no paired contact in a measured read unless edited), then the
    request counts from zero; the count to measure from."""
    for system in ("salesforce", "hubspot"):
        sandbox.admin(system, "POST", "age", json={"seconds": int(AGE.total_seconds())})
        sandbox.admin(system, "POST", "stats/reset")
    return count(sandbox, editor)


def metadata(env: dict[str, str], query: str, **params: Any) -> list[Any]:
    engine = sa.create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    with engine.connect() as conn:
        rows = list(conn.execute(sa.text(query), params).all())
    engine.dispose()
    return rows


def runs_of(env: dict[str, str], dag_id: str) -> dict[str, str]:
    rows = metadata(env, "SELECT run_id, state FROM dag_run WHERE dag_id = :dag", dag=dag_id)
    return {run_id: state for run_id, state in rows}


def wait_idle(env: dict[str, str], queue: redis.Redis, deadline: float, quiet: float = 15.0) -> None:
    """Until the event queue is empty and no event run is queued or running, for `quiet` seconds."""
    calm_since: float | None = None
    from crm_sync.events.queue import ContactEventQueue

    events = ContactEventQueue(queue)
    while time.monotonic() < deadline:
        busy = any(state in ("queued", "running") for state in runs_of(env, EVENT_DAG).values())
        busy = busy or bool(events.lag()) or bool(events.pending()["count"])
        if busy:
            calm_since = None
        elif calm_since is None:
            calm_since = time.monotonic()
        elif time.monotonic() - calm_since >= quiet:
            return
        time.sleep(1.0)
    raise TimeoutError("the event runs never went idle")


def wait_watcher(env: dict[str, str], deadline: float) -> None:
    """Until the triggerer runs the event DAG's watcher (registered when the dag-processor parses the unpaused DAG)."""
    query = "SELECT count(*) FROM trigger WHERE classpath LIKE '%ContactEventTrigger' AND triggerer_id IS NOT NULL"
    while not metadata(env, query)[0][0]:
        if time.monotonic() > deadline:
            raise TimeoutError("the triggerer never started the event DAG's watcher")
        time.sleep(1.0)


@dataclass
class Bench:
    """What every phase works with: Airflow's environment, the sandboxes, the editor, the event queue, the options."""

    env: dict[str, str]
    sandbox: SandboxProcess
    editor: Editor
    queue: redis.Redis
    args: argparse.Namespace


def events_phase(bench: Bench, rate: float, pairs: list[tuple[str, str]]) -> Phase:
    """The event DAG on one stream: edits streamed and watched, then waited for until synced and the runs idle."""
    env, sandbox, editor, args = bench.env, bench.sandbox, bench.editor, bench.args
    world = World(sandbox)
    before = start_counting(sandbox, editor)
    runs_before = set(runs_of(env, EVENT_DAG))
    started = time.monotonic()
    edits = Stream(f"events {rate:g}/s", rate, 1.0)
    edits.run(editor, world, pairs)
    wait_synced(world, edits.edits, time.time() + args.sync_timeout_minutes * 60, 1.0)
    wait_idle(env, bench.queue, time.monotonic() + 600)
    calls = Calls.between(before, count(sandbox, editor))
    runs = len(set(runs_of(env, EVENT_DAG)) - runs_before)
    seconds = time.monotonic() - started
    return Phase(edits.name, edits.edits, calls, runs, seconds, edits.load, "in the phase (until the runs are idle)")


def windowed_phase(bench: Bench, rate: float, pairs: list[tuple[str, str]]) -> Phase:
    """The windowed DAG on a short stream inside one window, until every edit is synced and the run is done. Its
    writes' echoes fall in the next window, after the phase: their reads are not counted."""
    env, sandbox, editor, args = bench.env, bench.sandbox, bench.editor, bench.args
    world = World(sandbox)
    wait_window_room(env, len(pairs) / rate + 60, time.monotonic() + 2 * WINDOW.total_seconds())
    before = start_counting(sandbox, editor)
    runs_before = set(runs_of(env, WINDOWED_DAG))
    started = time.monotonic()
    edits = Stream(f"windowed {rate:g}/s, one short stream", rate, 5.0)
    edits.run(editor, world, pairs)
    wait_synced(world, edits.edits, time.time() + args.sync_timeout_minutes * 60, 5.0)
    wait_windowed_idle(env, time.monotonic() + 900)
    calls = Calls.between(before, count(sandbox, editor))
    runs = len(set(runs_of(env, WINDOWED_DAG)) - runs_before)
    seconds = time.monotonic() - started
    return Phase(edits.name, edits.edits, calls, runs, seconds, edits.load, "not counted (next window)")


def steady_windowed_phase(bench: Bench, rate: float, pairs: list[tuple[str, str]]) -> Phase:
    """The windowed DAG in steady state: a stream that does not stop, from now until the run of the first full window
    after its start is done. That run is measured: a full window of edits, the lookback's edits read again, and the
    echoes of the run before it (which synced the stream's first part); its own writes' echoes are the next run's
    share, as the previous run's are this one's. Latency: the edits of that full window."""
    env, sandbox, editor, args = bench.env, bench.sandbox, bench.editor, bench.args
    world = World(sandbox)
    wait_windowed_idle(env, time.monotonic() + 900)
    start_counting(sandbox, editor)
    first = quarter_floor(datetime.now(UTC)) + WINDOW  # the measured window is [first, first + WINDOW)
    edits = Stream(f"windowed {rate:g}/s, steady", rate, 5.0)
    streaming = threading.Thread(target=edits.run, args=(editor, world, pairs), daemon=True)
    streaming.start()
    print(f"steady stream: the run of {first:%H:%M}-{first + WINDOW:%H:%M} UTC is measured", flush=True)
    wait_run_done(env, first, time.monotonic() + 2 * WINDOW.total_seconds())
    time.sleep(max(0.0, (first + WINDOW - datetime.now(UTC)).total_seconds() - 5))
    before = count(sandbox, editor)  # the run of the window before is done, the measured one not started
    started = time.monotonic()
    wait_run_done(env, first + WINDOW, time.monotonic() + WINDOW.total_seconds())
    calls = Calls.between(before, count(sandbox, editor))
    seconds = time.monotonic() - started
    edits.stop.set()
    streaming.join()
    measured = [edit for edit in edits.edits if first.timestamp() <= edit.edited_at < (first + WINDOW).timestamp()]
    wait_synced(world, measured, time.time() + args.sync_timeout_minutes * 60, 5.0)
    earlier = sum(edit.edited_at < first.timestamp() for edit in edits.edits)
    echoes = f"in the run: the run before synced {earlier} edits of the stream"
    return Phase(edits.name, measured, calls, 1, seconds, edits.load, echoes)


def wait_run_done(env: dict[str, str], window_end: datetime, deadline: float) -> None:
    """Until the windowed run of the window ending at `window_end` has finished."""
    query = "SELECT state FROM dag_run WHERE dag_id = :dag AND data_interval_end = :end"
    while not any(
        state in ("success", "failed") for (state,) in metadata(env, query, dag=WINDOWED_DAG, end=window_end)
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the windowed run of the window ending {window_end} never finished")
        time.sleep(5.0)


def wait_window_room(env: dict[str, str], seconds: float, deadline: float) -> None:
    """Until the current window has `seconds` left and the run of the window before it is done (so a stream lies in
    one window and no other run's calls fall in the phase): at once, or after the next window starts."""
    query = "SELECT state, data_interval_end FROM dag_run WHERE dag_id = :dag"
    while True:
        now = datetime.now(UTC)
        start = quarter_floor(now)
        runs = metadata(env, query, dag=WINDOWED_DAG)
        busy = any(state in ("queued", "running") for state, _ in runs)
        closed = any(state in ("success", "failed") and end == start for state, end in runs)
        if closed and not busy and (start + WINDOW - now).total_seconds() >= seconds:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("no window with room for the stream")
        time.sleep(2.0)


def windowed_end(now: datetime, seconds: float) -> datetime:
    """About when a short windowed phase starting now is done: the end of the window its stream fits in, plus a run."""
    start = quarter_floor(now)
    if (start + WINDOW - now).total_seconds() < seconds + 60:
        start += WINDOW
    return start + WINDOW + RUN_ALLOWANCE


def steady_end(now: datetime) -> datetime:
    """About when the steady windowed phase starting now is done: the run of the first full window after now."""
    return quarter_floor(now) + 2 * WINDOW + RUN_ALLOWANCE


def plan_windowed(
    now: datetime, steady: bool, short_rates: list[float], seconds: float, finish_by: datetime | None
) -> tuple[bool, list[float]]:
    """Whether the steady windowed phase runs, and the short ones after it, all done by `finish_by` (the steady one
    first: it is the fair measure; a short one that would end later is left out with the ones after it)."""
    if finish_by is None:
        return steady, short_rates
    with_steady = steady and steady_end(now) <= finish_by
    end = steady_end(now) if with_steady else now
    kept: list[float] = []
    for rate in short_rates:
        end = windowed_end(end, seconds)
        if end > finish_by:
            break
        kept.append(rate)
    return with_steady, kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0, help="length of each short stream")
    parser.add_argument("--rates", type=float, nargs="+", default=[1.0], help="the event phases' edits a second")
    parser.add_argument(
        "--windowed-rates", type=float, nargs="*", default=[], help="short windowed phases (one stream in one window)"
    )
    parser.add_argument("--steady-rate", type=float, default=1.0, help="the steady windowed phase's edits a second")
    parser.add_argument("--contacts", type=int, help="people on both sides (default: enough for every stream)")
    parser.add_argument("--poll-seconds", type=int, default=30, help="the Salesforce poll's interval")
    parser.add_argument("--batch-seconds", type=float, help="the event path's batch delay (default: the DAG's)")
    parser.add_argument("--no-windowed", action="store_true", help="measure the event path only")
    parser.add_argument("--finish-by", help="HH:MM UTC: windowed phases that would end later are left out")
    parser.add_argument("--commit", default=measured_commit(), help="the commit under test, for the results")
    parser.add_argument("--sync-timeout-minutes", type=float, default=25.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_events.md")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    finish_by = finish_time(args.finish_by)
    short_rates = [] if args.no_windowed else args.windowed_rates
    steady = not args.no_windowed
    short = {rate: int(args.minutes * 60 * rate) for rate in [*args.rates, *short_rates]}
    steady_edits = int(args.steady_rate * STEADY_SPAN.total_seconds()) if steady else 0
    contacts = args.contacts or sum(short[rate] for rate in [*args.rates, *short_rates]) + steady_edits + 20
    tmp = Path(tempfile.mkdtemp(prefix="bench-events-"))
    logs = tmp / "logs"
    logs.mkdir()
    print(f"working in {tmp}", flush=True)
    phases: list[Phase] = []
    notes: list[str] = []
    with ExitStack() as stack:
        pg = stack.enter_context(postgres_cluster(max_connections=200))
        redis_url = stack.enter_context(redis_server(tmp))
        sandbox = stack.enter_context(
            start_sandbox(tmp / "sandbox", timeout=300, contacts=contacts, overlap=contacts, valid_only=True, seed=20)
        )
        env = bench_env(tmp, pg, redis_url, sandbox, args)
        deadline = time.monotonic() + 900
        start_components(stack, env, logs, deadline)
        print("initial sync (full resync, airflow dags test) ...", flush=True)
        now = datetime.now(UTC)
        airflow(
            env,
            "dags",
            "test",
            WINDOWED_DAG,
            quarter_floor(now).isoformat(),
            "-c",
            '{"full_resync": true}',
            timeout=1800,
        )
        pairs = iter(World(sandbox).pairs())
        sandbox.admin("hubspot", "POST", "webhooks", json=webhooks(env))
        queue = redis.Redis(host="127.0.0.1", port=int(redis_url.rsplit(":", 1)[1].split("/")[0]), db=REDIS_DB)
        bench = Bench(env, sandbox, Editor(sandbox), queue, args)
        airflow(env, "dags", "unpause", EVENT_DAG)
        wait_watcher(env, time.monotonic() + 300)
        wait_idle(env, queue, time.monotonic() + 600)
        for rate in args.rates:
            print(f"events phase: {short[rate]} edits over {args.minutes:g} min at {rate:g}/s", flush=True)
            phases.append(events_phase(bench, rate, take(pairs, short[rate])))
            print(phases[-1].row(), flush=True)
        airflow(env, "dags", "pause", EVENT_DAG)
        if steady or short_rates:
            airflow(env, "dags", "unpause", WINDOWED_DAG)
            wait_windowed_idle(env, time.monotonic() + 900, first_run=True)
            steady_kept, kept = plan_windowed(datetime.now(UTC), steady, short_rates, args.minutes * 60, finish_by)
            notes += ["windowed, steady: left out (no time)."] if steady and not steady_kept else []
            notes += [
                f"windowed {rate:g}/s, one short stream: left out (no time)." for rate in short_rates[len(kept) :]
            ]
            if steady_kept:
                print(f"steady windowed phase at {args.steady_rate:g}/s", flush=True)
                phases.append(steady_windowed_phase(bench, args.steady_rate, take(pairs, steady_edits)))
                print(phases[-1].row(), flush=True)
            for rate in kept:
                print(f"windowed phase: {short[rate]} edits over {args.minutes:g} min at {rate:g}/s", flush=True)
                phases.append(windowed_phase(bench, rate, take(pairs, short[rate])))
                print(phases[-1].row(), flush=True)
    report(phases, args, contacts, notes)
    print(f"logs in {tmp}")
    return 0 if all(len(phase.synced) == len(phase.edits) for phase in phases) else 1


def take(pairs: Iterator[tuple[str, str]], wanted: int) -> list[tuple[str, str]]:
    """The next `wanted` pairs: no two streams edit the same contact."""
    taken = list(itertools.islice(pairs, wanted))
    if len(taken) < wanted:
        raise ValueError(f"{wanted} edits need as many pairs, {len(taken)} left: raise --contacts")
    return taken


def finish_time(text: str | None) -> datetime | None:
    """HH:MM UTC as today's moment (None: no limit)."""
    if text is None:
        return None
    hours, minutes = (int(part) for part in text.split(":"))
    return datetime.now(UTC).replace(hour=hours, minute=minutes, second=0, microsecond=0)


def measured_commit() -> str:
    """The checkout's commit, marked when the code under test (dags, plugins, include) has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "dags", "plugins", "include"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} + uncommitted changes" if dirty else head


def wait_windowed_idle(env: dict[str, str], deadline: float, *, first_run: bool = False) -> None:
    """Until no windowed run is queued or running (with `first_run`: and the catch-up run the scheduler starts for
    the latest interval on unpausing exists)."""
    while True:
        runs = runs_of(env, WINDOWED_DAG)
        scheduled = any(run_id.startswith("scheduled__") for run_id in runs)
        if (scheduled or not first_run) and not any(state in ("queued", "running") for state in runs.values()):
            return
        if time.monotonic() > deadline:
            raise TimeoutError("a windowed run never finished")
        time.sleep(2.0)


def bench_env(tmp: Path, pg: str, redis_url: str, sandbox: SandboxProcess, args: argparse.Namespace) -> dict[str, str]:
    """The proof's environment with the LocalExecutor, the event path's settings and the webhook's secret."""
    env = airflow_env(
        tmp / "airflow-home", pg, redis_url, {"AIRFLOW__CRM_SYNC__STAGING_BASE": f"file://{tmp / 'staging'}"}, sandbox
    )
    host, port = redis_url.split("//")[1].split("/")[0].split(":")
    redis_conn = json.dumps({"conn_type": "redis", "host": host, "port": int(port), "extra": {"db": REDIS_DB}})
    env.update(dag_env(sandbox, redis_conn, env["AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT"]))
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",  # an unpaused DAG's watcher registers sooner
            "AIRFLOW__CRM_SYNC__EVENTS_SALESFORCE_POLL_SECONDS": str(args.poll_seconds),
            "AIRFLOW_CONN_HUBSPOT_WEBHOOK_DEFAULT": json.dumps({"conn_type": "generic", "password": WEBHOOK_SECRET}),
        }
    )
    if args.batch_seconds is not None:
        env["AIRFLOW__CRM_SYNC__EVENTS_BATCH_SECONDS"] = str(args.batch_seconds)
    return env


def webhooks(env: dict[str, str]) -> dict[str, Any]:
    """The HubSpot app's webhook settings: every contact subscription, to the api-server's endpoint."""
    return {
        "target_url": f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}{WEBHOOK_PATH}",
        "client_secret": WEBHOOK_SECRET,
    }


def start_components(stack: ExitStack, env: dict[str, str], logs: Path, deadline: float) -> None:
    """Migrate, create the load pools, start the api-server, scheduler, dag-processor and triggerer; wait until both
    DAGs are parsed (both stay paused: `dags_are_paused_at_creation`)."""
    airflow(env, "db", "migrate", timeout=600)
    airflow(env, "pools", "set", "crm_sync_hubspot", "4", "HubSpot load tasks")
    airflow(env, "pools", "set", "crm_sync_salesforce", "4", "Salesforce load tasks")
    for name in ("api-server", "scheduler", "dag-processor", "triggerer"):
        start(stack, env, logs, name, name)
    wait_for_port(int(env["AIRFLOW__API__PORT"]), 120, "api-server")
    parsed = "SELECT count(*) FROM serialized_dag WHERE dag_id IN (:events, :windowed)"
    while metadata(env, parsed, events=EVENT_DAG, windowed=WINDOWED_DAG)[0][0] < 2:
        if time.monotonic() > deadline:
            raise TimeoutError("the dag-processor never parsed both DAGs")
        time.sleep(1.0)


def report(phases: list[Phase], args: argparse.Namespace, contacts: int, notes: list[str]) -> None:
    lines = [
        f"# bench_events: change-to-sync latency under the scheduler ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"Commit measured: {args.commit}. Short streams of {args.minutes:g} min, the steady windowed stream until the "
        f"run of its first full window is done (the CRMs take turns); {contacts} paired contacts, every record aged "
        f"{AGE} before each phase; Salesforce poll every {args.poll_seconds} s; LocalExecutor, {os.cpu_count()} cores.",
        "",
        "| DAG | synced | p50 s | p95 s | max s | API calls (per CRM) | echo reads | calls / synced change | runs "
        "| load avg (mean / max) |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(phase.row() for phase in phases),
    ]
    lines += ["", *notes] if notes else []
    lines += ["", "Requests per endpoint (the edits' own included: one PATCH per edit):", ""]
    for phase in phases:
        for system, endpoints in phase.calls.endpoints.items():
            lines += [f"- {phase.name}, {system}: " + ", ".join(f"{path} {n}" for path, n in sorted(endpoints.items()))]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
