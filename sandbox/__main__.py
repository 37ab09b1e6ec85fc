"""`python -m sandbox serve ...`: run the Salesforce (HTTPS) and HubSpot (HTTP) sandboxes in one process.

Prints shell-sourceable connection lines (also written to STATE_DIR/env.sh), then `SANDBOX_READY`, and
serves until SIGTERM/SIGINT. Both apps share one sandbox clock, so advancing it moves both CRMs.
With `--persist`, the CRMs' data outlives the process: written to STATE_DIR on SIGTERM/SIGINT and restored
(instead of seeding) by the next start, which consumes the file, so a process killed outright starts fresh.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import pickle
import shlex
import signal
import sys
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandbox.core import Clock, RunningServer, parse_iso, serve
from sandbox.generator import Mess, generate
from sandbox.hubspot.app import ALL_SCOPES, BATCH_MODES, DEFAULT_TOKEN, HubSpotApp
from sandbox.hubspot.store import DEFAULT_LINK_PROPERTY
from sandbox.salesforce import LINK_ATTRIBUTES_ENV, LINK_FIELD_ENV
from sandbox.tls import make_tls

if TYPE_CHECKING:
    from sandbox.salesforce.app import SalesforceApp

log = logging.getLogger("sandbox")

SNAPSHOT_FILE = "crm-data.pickle"
WEBHOOKS_ENV = "SANDBOX_HUBSPOT_WEBHOOKS"  # JSON settings; the environment keeps the client secret off argv
# The attributes holding each app's records (and the ids and API budgets tied to them); sessions, faults and
# stats start afresh, as after a real outage.
PERSISTED = {"hubspot": ("store", "search_engine", "limits"), "salesforce": ("ids", "store", "bulk", "budget")}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="serve both sandboxes until SIGTERM")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--salesforce-port", type=int, default=0, help="0 picks a free port")
    run.add_argument("--hubspot-port", type=int, default=0, help="0 picks a free port")
    run.add_argument("--state-dir", type=Path, help="where env.sh and the CA bundle go (default: a temp dir)")
    run.add_argument("--contacts", type=int, default=0, help="generated contacts to seed per side")
    run.add_argument("--seed", type=int, default=42, help="generator seed")
    run.add_argument("--overlap", type=int, help="seeded people present on both sides (default: half of --contacts)")
    run.add_argument(
        "--valid-only",
        action="store_true",
        help="seed only data both CRMs accept (no duplicates, bad or missing emails, missing last names, long values)",
    )
    run.add_argument("--window-minutes", type=float, default=15.0, help="seeded modified stamps span this, ending now")
    run.add_argument(
        "--persist",
        action="store_true",
        help=f"keep the CRMs' data in STATE_DIR/{SNAPSHOT_FILE} across restarts (written on SIGTERM/SIGINT, "
        "restored instead of seeding, consumed at start); prints SANDBOX_RESTORED=1 or 0",
    )
    run.add_argument("--clock", help="start the sandbox clock at this ISO-8601 instant")
    run.add_argument("--freeze-clock", action="store_true", help="the clock only moves via the admin API")
    run.add_argument("--hubspot-token", default=DEFAULT_TOKEN)
    run.add_argument("--hubspot-requests-per-10s", type=int, default=100)
    run.add_argument("--hubspot-search-requests-per-s", type=int, default=5)
    run.add_argument("--hubspot-daily-limit", type=int, default=500_000)
    run.add_argument("--hubspot-batch-mode", choices=BATCH_MODES, default="multi-status")
    run.add_argument(
        "--hubspot-retry-after-header",
        action="store_true",
        help="send Retry-After on 429 (HubSpot does not document it)",
    )
    run.add_argument("--hubspot-scopes", default=",".join(ALL_SCOPES), help="the private app's scopes, comma-separated")
    run.add_argument(
        "--hubspot-link-property", default=DEFAULT_LINK_PROPERTY, help="the unique link property ('' for none)"
    )
    run.add_argument("--hubspot-search-index-delay", type=float, default=0.0, help="seconds before search sees a write")
    run.add_argument(
        "--hubspot-webhooks",
        default=os.environ.get(WEBHOOKS_ENV),
        help=f"the private app's webhook settings as JSON, as POST /__admin/webhooks takes (default: ${WEBHOOKS_ENV})",
    )
    run.add_argument("--salesforce-daily-limit", type=int, default=100_000)
    run.add_argument("--salesforce-page-size", type=int, default=2000)
    run.add_argument("--consumer-key", default="sandbox-consumer-key")
    run.add_argument("--consumer-secret", default="sandbox-consumer-secret")
    run.add_argument(
        "--salesforce-login-host",
        help="also serve Salesforce on this address as a generic login host (login.salesforce.com's part)",
    )
    run.add_argument("--salesforce-jwt-cert", type=Path, help="PEM certificate that verifies JWT bearer assertions")
    run.add_argument(
        "--salesforce-bulk-seconds", type=float, default=0.0, help="how long Bulk API ingest jobs stay InProgress"
    )
    run.add_argument(
        "--salesforce-link-field",
        help='name of the Contact custom field holding the HubSpot id ("" = the org has none)',
    )
    run.add_argument(
        "--salesforce-link-field-attributes",
        help="comma-separated: external_id, unique (default both; '' = a plain text field)",
    )
    run.add_argument("--no-salesforce", action="store_true", help="serve HubSpot only")
    run.add_argument("--log-level", default="INFO")
    return parser


def _salesforce_app(args: argparse.Namespace, clock: Clock) -> SalesforceApp | None:
    if args.no_salesforce:
        return None
    # The org's schema is read once when the Salesforce modules load (sandbox.salesforce.schema).
    if args.salesforce_link_field is not None:
        os.environ[LINK_FIELD_ENV] = args.salesforce_link_field
    if args.salesforce_link_field_attributes is not None:
        os.environ[LINK_ATTRIBUTES_ENV] = args.salesforce_link_field_attributes
    from sandbox.salesforce.app import SalesforceApp

    return SalesforceApp(
        clock=clock,
        daily_api_limit=args.salesforce_daily_limit,
        page_size=args.salesforce_page_size,
        consumer_key=args.consumer_key,
        consumer_secret=args.consumer_secret,
        jwt_certificate=args.salesforce_jwt_cert.read_bytes() if args.salesforce_jwt_cert else None,
        login_host=args.salesforce_login_host,
        bulk_processing_seconds=args.salesforce_bulk_seconds,
    )


def _seed(args: argparse.Namespace, clock: Clock, hubspot: HubSpotApp, salesforce: SalesforceApp | None) -> None:
    if args.contacts <= 0:
        return
    data = generate(
        args.contacts,
        args.seed,
        clock.now(),
        timedelta(minutes=args.window_minutes),
        mess=Mess.valid_only() if args.valid_only else None,
        shared_people=args.overlap,
    )
    result = hubspot.seed({"contacts": data.hubspot})
    log.info("hubspot seeded: %s created, %s rejected", result["created"], len(result["rejected"]))
    if salesforce is not None:
        sf_result = salesforce.seed({"contacts": data.salesforce})
        log.info("salesforce seeded: %s", _summary(sf_result))


class _SnapshotPickler(pickle.Pickler):
    """Pickles the apps' locks as fresh locks and id counters by their next value (itertools.count's own
    pickling is deprecated)."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type(threading.Lock())):
            return threading.Lock, ()
        if isinstance(obj, itertools.count):
            return itertools.count, (int(repr(obj)[len("count(") : -1]),)
        return NotImplemented


def _save(snapshot: Path, apps: dict[str, Any]) -> None:
    """Write the CRMs' data once the servers are down (no request can change it mid-write)."""
    data = {name: {attr: getattr(app, attr) for attr in PERSISTED[name]} for name, app in apps.items() if app}
    partial = snapshot.with_suffix(".partial")
    with partial.open("wb") as out:
        _SnapshotPickler(out).dump(data)
    partial.replace(snapshot)
    log.info("CRM data saved to %s", snapshot)


def _restore(snapshot: Path, apps: dict[str, Any]) -> bool:
    """Load the data the last clean stop saved (our own file in our own state dir) and consume it."""
    if not snapshot.exists():
        return False
    try:
        data = pickle.loads(snapshot.read_bytes())  # our own file, written by _save
    except Exception as exc:  # written by other sandbox code (classes moved or renamed since): start afresh
        log.warning("CRM data in %s not restored (%s: %s); seeding afresh", snapshot, type(exc).__name__, exc)
        return False
    finally:
        snapshot.unlink()
    for name, app in apps.items():
        if app is not None and name in data:
            for attr, value in data[name].items():
                setattr(app, attr, value)
    log.info("CRM data restored from %s (not seeded)", snapshot)
    return True


def _summary(result: Any) -> str:
    if isinstance(result, dict):
        return ", ".join(f"{k}={len(v) if isinstance(v, list) else v}" for k, v in result.items())
    return type(result).__name__


def env_lines(
    args: argparse.Namespace, hubspot_url: str, salesforce_url: str | None, bundle: str, login_url: str | None = None
) -> list[str]:
    hubspot_conn = {
        "conn_type": "http",
        "host": hubspot_url,
        "password": args.hubspot_token,
        "extra": {
            "requests_per_10s": args.hubspot_requests_per_10s,
            "search_requests_per_s": args.hubspot_search_requests_per_s,
        },
    }
    lines = []
    if salesforce_url:
        salesforce_conn = {
            "conn_type": "salesforce",
            "extra": {
                "login_url": salesforce_url,
                "consumer_key": args.consumer_key,
                "consumer_secret": args.consumer_secret,
            },
        }
        lines.append(f"AIRFLOW_CONN_SALESFORCE_DEFAULT={shlex.quote(json.dumps(salesforce_conn))}")
    lines.append(f"AIRFLOW_CONN_HUBSPOT_DEFAULT={shlex.quote(json.dumps(hubspot_conn))}")
    lines.append(f"REQUESTS_CA_BUNDLE={shlex.quote(bundle)}")
    if salesforce_url:
        lines.append(f"SANDBOX_SALESFORCE_URL={salesforce_url}")
    if login_url:
        lines.append(f"SANDBOX_SALESFORCE_LOGIN_URL={login_url}")
    lines.append(f"SANDBOX_HUBSPOT_URL={hubspot_url}")
    return lines


def serve_command(args: argparse.Namespace) -> int:
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="crm-sandbox-"))
    state_dir.mkdir(parents=True, exist_ok=True)
    clock = Clock(parse_iso(args.clock) if args.clock else None, frozen=args.freeze_clock)
    hubspot = HubSpotApp(
        clock=clock,
        access_token=args.hubspot_token,
        requests_per_10s=args.hubspot_requests_per_10s,
        search_requests_per_s=args.hubspot_search_requests_per_s,
        daily_limit=args.hubspot_daily_limit,
        batch_mode=args.hubspot_batch_mode,
        retry_after_header=args.hubspot_retry_after_header,
        scopes=tuple(filter(None, args.hubspot_scopes.split(","))),
        link_property=args.hubspot_link_property,
        search_index_delay_seconds=args.hubspot_search_index_delay,
    )
    salesforce = _salesforce_app(args, clock)
    apps = {"hubspot": hubspot, "salesforce": salesforce}
    snapshot = state_dir / SNAPSHOT_FILE
    restored = args.persist and _restore(snapshot, apps)
    if not restored:
        _seed(args, clock, hubspot, salesforce)
    if args.hubspot_webhooks:  # after seeding: the initial data is the portal as the app finds it, not an import
        hubspot.configure_webhooks(json.loads(args.hubspot_webhooks))

    extra_ips = [args.salesforce_login_host] if args.salesforce_login_host else []
    context, bundle = make_tls(state_dir, extra_ips)
    servers: list[RunningServer] = [serve(hubspot, args.host, args.hubspot_port)]
    salesforce_url = login_url = None
    if salesforce is not None:
        servers.append(serve(salesforce, args.host, args.salesforce_port, ssl_context=context))
        salesforce_url = salesforce.my_domain_url = servers[-1].url
        if args.salesforce_login_host:
            servers.append(serve(salesforce, args.salesforce_login_host, 0, ssl_context=context))
            login_url = servers[-1].url

    lines = env_lines(args, servers[0].url, salesforce_url, bundle, login_url)
    if args.persist:
        lines.append(f"SANDBOX_RESTORED={int(restored)}")  # 0: seeded afresh, so a sync state must start afresh too
    (state_dir / "env.sh").write_text("".join(f"export {line}\n" for line in lines))
    print("\n".join([*lines, "SANDBOX_READY"]), flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    for server in servers:
        server.shutdown()
    hubspot.webhooks.stop()
    if args.persist:
        _save(snapshot, apps)
    log.info("sandbox stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    return serve_command(args)


if __name__ == "__main__":
    sys.exit(main())
