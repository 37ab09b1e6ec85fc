"""Change-to-sync latency and API calls per synced change: the event-driven DAG against the windowed DAG on the same
stream of edits, under the real scheduler (issue 20).

Processes as in the multi-worker proof (`tests/multiworker/proof.py`), with the LocalExecutor instead of Celery:
PostgreSQL (metadata DB and sync state), Redis (the event queue and the rate-limit pool), both CRM sandboxes on the
real clock (HubSpot sends signed webhooks to the api-server's endpoint; Salesforce is found by the trigger's poll),
Airflow's api-server, scheduler, dag-processor and triggerer.

1. `--contacts` people on both sides (valid data); one full resync (`airflow dags test`, not measured) pairs them.
2. Events: only `crm_contact_sync_events` unpaused. For `--minutes`, `--rate` edits a second, the CRMs taking turns,
   each a new job title on a paired contact no other edit of the phase touches, through the CRM's own API (as a
   user's edit). A watcher reads both sandboxes' records every second: an edit is synced when the other CRM holds
   its value; latency = that moment - the edit's. API calls: both sandboxes' request counts over the phase (until
   the event runs are idle again), less the edits' own requests.
3. Windowed: the event DAG paused, `crm_contact_sync` unpaused (its 15-minute schedule), the same stream on other
   contacts, until every edit is synced.
Prints p50 / p95 / max latency, edits never synced, API calls per synced change, and writes them to `--out`.

    .venv/bin/python benchmarks/bench_events.py                      # 2 minutes a phase: a smoke run
    .venv/bin/python benchmarks/bench_events.py --minutes 10 --rate 1
    .venv/bin/python benchmarks/bench_events.py --no-windowed        # the event path only (~5 minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
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
class Phase:
    """What one DAG did with one stream."""

    name: str
    edits: list[Edit]
    calls: dict[str, int] = field(default_factory=dict)  # the sync's API requests per CRM (edits' own left out)
    endpoints: dict[str, dict[str, int]] = field(default_factory=dict)  # every request per CRM and endpoint
    runs: int = 0
    seconds: float = 0.0

    @property
    def synced(self) -> list[float]:
        return sorted(edit.latency for edit in self.edits if edit.latency is not None)

    def line(self) -> str:
        done = self.synced
        total_calls = sum(self.calls.values())
        if not done:
            return f"| {self.name} | 0 of {len(self.edits)} | - | - | - | {total_calls} | - | {self.runs} |"
        p95 = statistics.quantiles(done, n=20)[-1] if len(done) > 1 else done[0]
        per_change = total_calls / len(done)
        calls = ", ".join(f"{side} {n}" for side, n in sorted(self.calls.items()))
        return (
            f"| {self.name} | {len(done)} of {len(self.edits)} | {statistics.median(done):.1f} | {p95:.1f} | "
            f"{done[-1]:.1f} | {total_calls} ({calls}) | {per_change:.3f} | {self.runs} |"
        )


class World:
    """The paired contacts (from both sandboxes' records) and what each side holds now."""

    def __init__(self, sandbox: SandboxProcess) -> None:
        self.sandbox = sandbox

    def records(self) -> dict[str, dict[str, dict[str, Any]]]:
        sf = self.sandbox.admin("salesforce", "GET", "records").json()["contacts"]
        hs = self.sandbox.admin("hubspot", "GET", "records").json()["contacts"]
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


def stream(
    name: str, editor: Editor, pairs: list[tuple[str, str]], minutes: float, rate: float, world: World
) -> list[Edit]:
    """`rate` edits a second for `minutes`, the CRMs taking turns, one contact per edit, watched every second
    meanwhile (a thread) so each edit's sync time is seen as it happens."""
    count = int(minutes * 60 * rate)
    if count > len(pairs):
        raise ValueError(f"{count} edits need as many pairs, only {len(pairs)}: raise --contacts")
    edits: list[Edit] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(1.0):
            mark_synced(world, list(edits))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start_at = time.monotonic()
    for number, (sf_id, hs_id) in enumerate(pairs[:count]):
        time.sleep(max(0.0, start_at + number / rate - time.monotonic()))
        side = "salesforce" if number % 2 == 0 else "hubspot"
        own, other = (sf_id, hs_id) if side == "salesforce" else (hs_id, sf_id)
        edits.append(editor.edit(side, own, other, f"{name} edit {number} {time.time():.0f}"))
    done.set()
    watcher.join()
    return edits


def mark_synced(world: World, edits: list[Edit]) -> None:
    """Note, for every edit not yet synced, whether the other side holds its value now."""
    pending = [edit for edit in edits if edit.synced_at is None]
    if not pending:
        return
    records = world.records()
    now = time.time()
    for edit in pending:
        if World.holds(records, edit):
            edit.synced_at = now


def wait_synced(world: World, edits: list[Edit], deadline: float) -> None:
    while any(edit.synced_at is None for edit in edits) and time.time() < deadline:
        mark_synced(world, edits)
        time.sleep(1.0)


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


def reset_stats(sandbox: SandboxProcess) -> None:
    for system in ("salesforce", "hubspot"):
        sandbox.admin(system, "POST", "stats/reset")


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


def run_phase(
    name: str,
    dag_id: str,
    env: dict[str, str],
    sandbox: SandboxProcess,
    editor: Editor,
    pairs: list[tuple[str, str]],
    args: argparse.Namespace,
    settle: Callable[[float], None],
) -> Phase:
    """One DAG on one stream: stats reset, edits streamed and watched, then waited for until synced or timed out."""
    world = World(sandbox)
    reset_stats(sandbox)
    before = dict(editor.made)
    runs_before = set(runs_of(env, dag_id))
    started = time.monotonic()
    edits = stream(name, editor, pairs, args.minutes, args.rate, world)
    wait_synced(world, edits, time.time() + args.sync_timeout_minutes * 60)
    settle(time.monotonic() + 600)
    made = requests_made(sandbox)
    calls = {side: sum(made[side].values()) - (editor.made[side] - before[side]) for side in made}
    runs = len(set(runs_of(env, dag_id)) - runs_before)
    return Phase(name, edits, calls, made, runs, time.monotonic() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0, help="length of each phase's edit stream")
    parser.add_argument("--rate", type=float, default=1.0, help="edits a second (the CRMs take turns)")
    parser.add_argument("--contacts", type=int, help="people on both sides (default: enough for both streams)")
    parser.add_argument("--poll-seconds", type=int, default=30, help="the Salesforce poll's interval")
    parser.add_argument("--batch-seconds", type=float, help="the event path's batch delay (default: the DAG's)")
    parser.add_argument("--no-windowed", action="store_true", help="measure the event path only")
    parser.add_argument("--sync-timeout-minutes", type=float, default=25.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_events.md")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    edits_per_phase = int(args.minutes * 60 * args.rate)
    contacts = args.contacts or 2 * edits_per_phase + 20
    tmp = Path(tempfile.mkdtemp(prefix="bench-events-"))
    logs = tmp / "logs"
    logs.mkdir()
    print(f"working in {tmp}", flush=True)
    phases: list[Phase] = []
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
        pairs = World(sandbox).pairs()
        print(f"{len(pairs)} pairs linked both ways", flush=True)
        sandbox.admin("hubspot", "POST", "webhooks", json=webhooks(env))
        editor = Editor(sandbox)
        queue = redis.Redis(host="127.0.0.1", port=int(redis_url.rsplit(":", 1)[1].split("/")[0]), db=REDIS_DB)
        airflow(env, "dags", "unpause", EVENT_DAG)
        wait_watcher(env, time.monotonic() + 300)
        wait_idle(env, queue, time.monotonic() + 600)
        print(f"events phase: {edits_per_phase} edits over {args.minutes} min", flush=True)
        settle_events = partial(wait_idle, env, queue)
        phases.append(
            run_phase("events", EVENT_DAG, env, sandbox, editor, pairs[:edits_per_phase], args, settle_events)
        )
        print(phases[-1].line(), flush=True)
        airflow(env, "dags", "pause", EVENT_DAG)
        if not args.no_windowed:
            airflow(env, "dags", "unpause", WINDOWED_DAG)
            wait_windowed_idle(env, time.monotonic() + 900, first_run=True)
            print(f"windowed phase: {edits_per_phase} edits over {args.minutes} min", flush=True)
            later = pairs[edits_per_phase : 2 * edits_per_phase]
            settle_windowed = partial(wait_windowed_idle, env)
            phases.append(run_phase("windowed", WINDOWED_DAG, env, sandbox, editor, later, args, settle_windowed))
            print(phases[-1].line(), flush=True)
    report(phases, args, contacts)
    print(f"logs in {tmp}")
    return 0 if all(len(phase.synced) == len(phase.edits) for phase in phases) else 1


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


def report(phases: list[Phase], args: argparse.Namespace, contacts: int) -> None:
    lines = [
        f"# bench_events: change-to-sync latency under the scheduler ({datetime.now(UTC).date()})",
        "",
        f"{args.rate:g} edits/s for {args.minutes:g} min a phase (the CRMs take turns), {contacts} paired contacts, "
        f"Salesforce poll every {args.poll_seconds} s, LocalExecutor, {os.cpu_count()} cores.",
        "",
        "| DAG | synced | p50 s | p95 s | max s | API calls (per CRM) | calls / synced change | runs |",
        "|---|---|---|---|---|---|---|---|",
        *(phase.line() for phase in phases),
    ]
    lines += ["", "Requests per endpoint (the edits' own included: one PATCH per edit):", ""]
    for phase in phases:
        for system, endpoints in phase.endpoints.items():
            lines += [f"- {phase.name}, {system}: " + ", ".join(f"{path} {n}" for path, n in sorted(endpoints.items()))]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
