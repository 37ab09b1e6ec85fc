"""The contact history's "gone" and "back" events, from the tombstones part a run's reconcile staged."""

from __future__ import annotations

import pandas as pd
from airflow.sdk import ObjectStoragePath

from crm_sync.gone_contacts import EVENT_COLUMNS
from crm_sync.health.contact import _tombstone_events
from crm_sync.staging import write_frame

REPORT = {"run_id": "manual__1", "window": "[10:00, 10:15)"}


def test_a_gone_counterpart_and_a_restore_are_events_of_the_contact_and_bring_their_ids(tmp_path) -> None:
    staged = ObjectStoragePath(f"file://{tmp_path}")
    rows = [
        ("hubspot", "101", "003A", "gone", "hubspot contact 101 archived at 2026-11-28 10:02 UTC"),
        ("salesforce", "003Z", "999", "gone", "salesforce contact 003Z purged from the Recycle Bin"),
        ("salesforce", "003B", None, "back", "salesforce contact 003B is back (restored or undeleted)"),
    ]
    write_frame(staged / "tombstones" / "part-00000.parquet", pd.DataFrame(rows, columns=EVENT_COLUMNS))
    ids = {"003A", "003B"}
    events = _tombstone_events(str(staged), ids, REPORT)
    assert [(e["action"], e["source"], e["target_id"], e["reason"]) for e in events] == [
        ("gone", "hubspot:101", "003A", "hubspot contact 101 archived at 2026-11-28 10:02 UTC"),
        ("back", "salesforce:003B", None, "salesforce contact 003B is back (restored or undeleted)"),
    ]
    assert ids == {"003A", "003B", "101"}  # the gone counterpart's own id joins the history
    assert _tombstone_events(str(tmp_path / "elsewhere"), {"003A"}, REPORT) == []
