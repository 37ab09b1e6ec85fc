"""Bulk API 2.0 ingest pieces: the uploaded CSV and the poll schedule."""

from __future__ import annotations

import csv
import io
from itertools import islice

from crm_sync.hooks.sf_bulk import ingest_csv, poll_intervals


def test_ingest_csv_sets_nulls_and_keeps_absent_cells_empty():
    text = ingest_csv("upsert", [{"Ext__c": "1", "Title": None}, {"Ext__c": "2", "Email": 'a,"b"@example.com'}])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["Ext__c", "Title", "Email"]
    assert rows[0]["Title"] == "#N/A" and rows[0]["Email"] == ""
    assert rows[1]["Email"] == 'a,"b"@example.com'


def test_delete_csv_carries_only_ids():
    assert ingest_csv("delete", [{"Id": "003A", "LastName": "x"}]) == "Id\n003A\n"


def test_polls_back_off_up_to_a_cap():
    assert list(islice(poll_intervals(1.0, factor=2.0, cap=5.0), 5)) == [1.0, 2.0, 4.0, 5.0, 5.0]
