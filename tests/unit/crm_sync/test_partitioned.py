"""A full resync reconciled in many partitions decides exactly what one reconcile of everything decides."""

from __future__ import annotations

import pandas as pd
from airflow.sdk import ObjectStoragePath

from crm_sync.partitioned import reconcile_staged
from crm_sync.staging import read_frames, write_frame
from include.sync_logic.merge import SNAPSHOT_COLUMNS
from include.sync_logic.reconcile import reconcile
from include.sync_logic.sides import Direction, Side
from tests.unit.include.sync_logic.rows import ANN_BASE, ANN_HS, ANN_SF, MAPPING, frames, hs_row, sf_row, snapshot


def people() -> tuple[pd.DataFrame, pd.DataFrame]:
    sf_rows, hs_rows = [], []
    for i in range(40):
        email = f"p{i}@example.com"
        kind = i % 8
        if kind == 0:  # linked pair, equal
            sf_rows.append(sf_row(f"003{i:03d}", link=f"1{i:03d}", **{**ANN_SF, "Email": email}))
            hs_rows.append(hs_row(f"1{i:03d}", link=f"003{i:03d}", minute=1, **{**ANN_HS, "email": email}))
        elif kind == 1:  # email pair with an edit on one side
            sf_rows.append(sf_row(f"003{i:03d}", **{**ANN_SF, "Email": email, "Title": "CTO"}))
            hs_rows.append(hs_row(f"1{i:03d}", minute=3, **{**ANN_HS, "email": email.upper()}))
        elif kind == 2:  # duplicates inside Salesforce
            sf_rows.append(sf_row(f"003{i:03d}", **{**ANN_SF, "Email": email}))
            sf_rows.append(sf_row(f"004{i:03d}", **{**ANN_SF, "Email": email}))
        elif kind == 3:  # HubSpot contact linked to one Salesforce contact, carrying another's email
            sf_rows.append(sf_row(f"003{i:03d}", link=f"1{i:03d}", **{**ANN_SF, "Email": email}))
            sf_rows.append(sf_row(f"004{i:03d}", **{**ANN_SF, "Email": f"q{i}@example.com"}))
            hs_rows.append(hs_row(f"1{i:03d}", link=f"003{i:03d}", **{**ANN_HS, "email": f"q{i}@example.com"}))
        elif kind == 4:  # two Salesforce contacts linking one HubSpot contact
            sf_rows.append(sf_row(f"003{i:03d}", link=f"1{i:03d}", **{**ANN_SF, "Email": email}))
            sf_rows.append(sf_row(f"004{i:03d}", link=f"1{i:03d}", **{**ANN_SF, "Email": f"r{i}@example.com"}))
            hs_rows.append(hs_row(f"1{i:03d}", link=f"003{i:03d}", **{**ANN_HS, "email": email}))
        elif kind == 5:  # only in Salesforce, one with a bad email
            sf_rows.append(sf_row(f"003{i:03d}", **{**ANN_SF, "Email": email if i % 2 else "broken@"}))
        elif kind == 6:  # only in HubSpot
            hs_rows.append(hs_row(f"1{i:03d}", **{**ANN_HS, "email": email, "lastname": "Solo"}))
        else:  # linked, conflicting edits against the state
            sf_rows.append(
                sf_row(f"003{i:03d}", link=f"1{i:03d}", minute=5, **{**ANN_SF, "Email": email, "LastName": "S"})
            )
            hs_rows.append(
                hs_row(f"1{i:03d}", link=f"003{i:03d}", minute=6, **{**ANN_HS, "email": email, "lastname": "H"})
            )
    return frames(sf_rows, hs_rows)


def state() -> pd.DataFrame:
    rows = [snapshot(f"003{i:03d}", f"1{i:03d}", **{**ANN_BASE, "email": f"p{i}@example.com"}) for i in range(7, 40, 8)]
    return pd.DataFrame(rows, columns=SNAPSHOT_COLUMNS)


def ordered(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def test_partitioned_resync_equals_one_reconcile(tmp_path):
    sf, hs = people()
    snapshots = state()
    whole = reconcile(sf, hs, sf_changed_ids=sf["Id"], hs_changed_ids=hs["id"], mapping=MAPPING, snapshots=snapshots)
    folder = ObjectStoragePath(f"file://{tmp_path}")
    parts = {
        Side.SALESFORCE: [write_frame(folder / "sf" / f"{n}.parquet", sf.iloc[n::3]) for n in range(3)],
        Side.HUBSPOT: [write_frame(folder / "hs" / f"{n}.parquet", hs.iloc[n::2]) for n in range(2)],
    }

    def read_snapshots(sf_ids: pd.Series, hs_ids: pd.Series) -> pd.DataFrame:
        return snapshots[snapshots["salesforce_id"].isin(sf_ids) | snapshots["hubspot_id"].isin(hs_ids)]

    out = reconcile_staged(
        parts, MAPPING, direction=Direction.BOTH, read_snapshots=read_snapshots, folder=folder, partition_contacts=4
    )
    assert out.partitions == -(-len(sf) // 4) == len(out.decisions) == len(out.baseline)
    keys = ["target", "source_system", "source_id", "action"]
    decided = read_frames(out.decisions)
    assert len(decided) == len(whole.decisions)
    pd.testing.assert_frame_equal(ordered(decided, keys), ordered(whole.decisions, keys), check_dtype=False)
    baseline = read_frames(out.baseline)
    pd.testing.assert_frame_equal(
        ordered(baseline, ["salesforce_id"]), ordered(whole.baseline, ["salesforce_id"]), check_dtype=False
    )
    assert sum(out.counts.values()) == len(whole.decisions) and out.snapshots_read == len(snapshots)
    assert {"hubspot.reject", "hubspot.create", "salesforce.create"} <= set(out.counts)
