"""How much of a call's wall time is the HubSpot sandbox itself?

Starts the sandbox as a real process with N generated contacts, drives it with the unmodified
hubspot-api-client, and compares each call's client wall time with the server-side handling time the
sandbox records per endpoint (GET /__admin/stats, handler_seconds: routing, auth, rate limiting, the
store and JSON encoding; not socket I/O). The rest of the wall time is HTTP on loopback plus the
client's own (de)serialisation.

    .venv/bin/python benchmarks/bench_sandbox.py --contacts 50000 --rounds 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
)

from sandbox.testing import SandboxProcess, start_sandbox

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def calls(hs: HubSpot, emails: list[str], ids: list[str]) -> dict[str, tuple[str, Callable[[int], object]]]:
    """name -> (stats endpoint key, call for round i)."""
    contacts = hs.crm.contacts
    low = int((NOW - timedelta(minutes=15)).timestamp() * 1000)
    window = {
        "filters": [
            {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(low)},
            {"propertyName": "lastmodifieddate", "operator": "LT", "value": str(low + 15 * 60_000)},
        ]
    }
    props = ["email", "firstname", "lastname", "phone", "mobilephone", "jobtitle", "company", "salesforce_contact_id"]

    def search_page(i: int) -> object:
        request = PublicObjectSearchRequest(
            filter_groups=[window],
            sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            properties=props,
            limit=200,
            after=str((i % 40) * 200),
        )
        return contacts.search_api.do_search(request)

    def batch_read(i: int) -> object:
        chunk = emails[(i * 100) % len(emails) :][:100]
        return contacts.batch_api.read(
            BatchReadInputSimplePublicObjectId(
                inputs=[{"id": e} for e in chunk], id_property="email", properties=props, properties_with_history=[]
            )
        )

    def batch_update(i: int) -> object:
        chunk = ids[(i * 100) % len(ids) :][:100]
        return contacts.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[{"id": c, "properties": {"jobtitle": f"Title {i}"}} for c in chunk]
            )
        )

    def batch_upsert(i: int) -> object:
        return contacts.batch_api.upsert(
            BatchInputSimplePublicObjectBatchInputUpsert(
                inputs=[
                    {
                        "id": f"003{i:07d}{n:08d}",
                        "idProperty": "salesforce_contact_id",
                        "properties": {"email": f"bench{i}.{n}@example.com", "lastname": "Bench"},
                    }
                    for n in range(100)
                ]
            )
        )

    return {
        "search (200/page, window)": ("POST /crm/v3/objects/contacts/search", search_page),
        "batch/read (100 by email)": ("POST /crm/v3/objects/contacts/batch/read", batch_read),
        "batch/update (100)": ("POST /crm/v3/objects/contacts/batch/update", batch_update),
        "batch/upsert (100 new)": ("POST /crm/v3/objects/contacts/batch/upsert", batch_upsert),
    }


def run(sandbox: SandboxProcess, rounds: int) -> None:
    hs = HubSpot(access_token=sandbox.hubspot_token, host=sandbox.hubspot_url)
    records = sandbox.admin("hubspot", "GET", "records").json()["contacts"]
    emails = [r["properties"]["email"].strip().lower() for r in records if r["properties"].get("email")]
    ids = [r["id"] for r in records]
    print(f"{'call':28} {'n':>4} {'wall p50':>9} {'wall p95':>9} {'server':>8} {'share':>6}")
    for name, (endpoint, call) in calls(hs, emails, ids).items():
        call(0)  # warm the connection pool and the search cache's first build
        sandbox.admin("hubspot", "POST", "stats/reset")
        walls = []
        for i in range(1, rounds + 1):
            started = time.perf_counter()
            call(i)
            walls.append(time.perf_counter() - started)
        row = sandbox.admin("hubspot", "GET", "stats").json()[endpoint]
        server = row["handler_seconds"] / row["requests"]
        wall = statistics.fmean(walls)
        p95 = statistics.quantiles(walls, n=20)[-1]
        print(
            f"{name:28} {rounds:>4} {statistics.median(walls) * 1000:>7.1f}ms {p95 * 1000:>7.1f}ms "
            f"{server * 1000:>6.2f}ms {server / wall:>6.0%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        sandbox = start_sandbox(
            tmp,
            timeout=300,
            no_salesforce=True,
            contacts=args.contacts,
            window_minutes=60,
            clock=NOW.isoformat(),
            freeze_clock=True,
            hubspot_requests_per_10s=1_000_000,
            hubspot_search_requests_per_s=1_000_000,
        )
        print(f"sandbox up with {args.contacts} contacts in {time.perf_counter() - started:.1f}s")
        with sandbox:
            run(sandbox, args.rounds)
    print("server = mean handling time inside the sandbox; share = server / mean client wall time")


if __name__ == "__main__":
    main()
