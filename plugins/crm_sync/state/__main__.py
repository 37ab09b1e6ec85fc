"""`python -m crm_sync.state {list,size,retry,clear}`: look at and act on the sync's retry queue.

    list   entries matching the filters, as a table (CRM messages with emails redacted)
    size   entries per status
    retry  make matching entries pending and due now, attempts reset (the next run writes them)
    clear  delete matching entries; needs a filter or --all

Filters: --target salesforce|hubspot, --status pending|parked, --source-id ID [ID ...].
The database: the Airflow connection --conn-id (default crm_sync_state_default, e.g. from
AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT) or a SQLAlchemy URL given with --url.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from crm_sync.pii import redact
from crm_sync.state.schema import STATUSES, TARGETS
from crm_sync.state.store import SyncStateStore

LIST_COLUMNS = [
    "target",
    "source_id",
    "target_id",
    "action",
    "status",
    "attempts",
    "next_attempt_at",
    "code",
    "message",
]
MESSAGE_WIDTH = 60


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m crm_sync.state", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["list", "size", "retry", "clear"])
    parser.add_argument("--target", choices=TARGETS, help="the CRM the entries write to")
    parser.add_argument("--status", choices=STATUSES)
    parser.add_argument("--source-id", dest="source_ids", nargs="+", action="extend", metavar="ID")
    parser.add_argument("--all", action="store_true", help="clear: every entry")
    database = parser.add_mutually_exclusive_group()
    database.add_argument("--conn-id", help="Airflow connection of the state (default: [crm_sync] state_conn_id)")
    database.add_argument("--url", help="SQLAlchemy URL of the state database, instead of a connection")
    return parser


def _store(args: argparse.Namespace) -> SyncStateStore:
    if args.url:
        from crm_sync.state.engine import create_state_engine

        store = SyncStateStore(create_state_engine(args.url))
        store.create_schema()
        return store
    from airflow.sdk.exceptions import AirflowNotFoundException  # Airflow: only when a connection is used

    from crm_sync.settings import crm_sync_settings
    from crm_sync.state.hook import SyncStateHook

    try:
        return SyncStateHook(args.conn_id or crm_sync_settings().state_conn_id).get_store()
    except AirflowNotFoundException as exc:
        raise SystemExit(f"python -m crm_sync.state: {exc}") from None


def _table(entries: pd.DataFrame) -> str:
    shown = entries.reindex(columns=LIST_COLUMNS).copy()
    shown["next_attempt_at"] = shown["next_attempt_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    shown["message"] = ["" if pd.isna(message) else redact(message)[:MESSAGE_WIDTH] for message in shown["message"]]
    return shown.fillna("").to_string(index=False)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    filters = {"target": args.target, "status": args.status, "source_ids": args.source_ids}
    if args.command == "clear" and not args.all and not any(value is not None for value in filters.values()):
        parser.error("clear needs a filter (--target, --status, --source-id) or --all")
    if args.all and args.command != "clear":
        parser.error("--all belongs to clear")
    store = _store(args)
    if args.command == "list":
        entries = store.entries(**filters)
        print(_table(entries) if len(entries) else "no entries")
        print(f"{len(entries)} entries")
    elif args.command == "size":
        for status, count in store.queue_size().items():
            print(f"{status}: {count}")
    elif args.command == "retry":
        print(f"released {store.release(**filters)} entries: due now")
    else:
        print(f"cleared {store.clear(**filters)} entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
