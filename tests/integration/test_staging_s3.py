"""Staging on object storage: `[crm_sync] staging_base` as s3:// (the amazon provider's filesystem, s3fs)
against moto's S3 server, first through plugins/crm_sync/staging.py, then in a real DAG run."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import pandas as pd
import pytest

from crm_sync import staging
from tests.integration.conftest import crm_env

pytestmark = pytest.mark.integration

T = datetime.fromisoformat("2026-11-28T10:00:00+00:00")
RUN_ID = "scheduled__2026-11-28T10:00:00+00:00"


def test_every_run_artifact_is_written_to_and_read_back_from_s3(s3_staging, monkeypatch) -> None:
    for key, value in s3_staging.env.items():
        monkeypatch.setenv(key, value)
    folder = staging.run_folder("crm_contact_sync", RUN_ID)
    frame = pd.DataFrame({"source_id": ["003A", "1001"], "action": ["create", "skip"], "n": [1, 2]})
    frames = {
        "extract/salesforce/part-00000.parquet": frame,
        "extract/hubspot/part-00000.parquet": frame.iloc[:1],
        "decisions/part-00000.parquet": frame,
        "batches/hubspot-00000.parquet": frame,
        "results/hubspot-00000.parquet": frame.iloc[1:],
        "rejects.parquet": frame.iloc[:0],
    }
    urls = {name: staging.write_frame(folder / name, data) for name, data in frames.items()}
    report_url = staging.write_json(folder / "report.json", {"decisions": {"hubspot.create": 1}, "at": T})

    run_prefix = "crm_contact_sync/scheduled__2026-11-28T10_00_00_00_00/"
    assert all(url.startswith(f"{s3_staging.base}/{run_prefix}") for url in urls.values())
    for name, url in urls.items():
        pd.testing.assert_frame_equal(staging.read_frame(url), frames[name].reset_index(drop=True))
    parts = sorted(str(path) for path in (folder / "extract").rglob("*.parquet"))
    assert len(staging.read_frames(parts)) == 3
    assert staging.read_json(report_url) == {"decisions": {"hubspot.create": 1}, "at": str(T)}
    # Written in place (an S3 PUT is atomic): no temporary objects left behind by a copy-and-delete rename.
    assert s3_staging.keys() == sorted(f"staging/{run_prefix}{name}" for name in [*frames, "report.json"])


def test_a_dag_run_stages_everything_on_s3_and_leaves_its_report_in_the_bucket(
    airflow_project, sandbox_factory, clean_redis, state_conn, s3_staging
) -> None:
    sandbox = sandbox_factory(contacts=150, seed=5, clock=(T - timedelta(seconds=30)).isoformat(), window_minutes=14)
    env = {**crm_env(sandbox, clean_redis, state_conn), **s3_staging.env}

    run = airflow_project.dags_test(T.isoformat(), env=env, staging_base=s3_staging.base)
    assert run.returncode == 0, run.log[-5000:]

    keys = s3_staging.keys()
    names = {re.sub(r"^staging/crm_contact_sync/[^/]+/(try-[^/]+/)?", "", key) for key in keys}
    assert {"decisions/part-00000.parquet", "baseline/part-00000.parquet", "report.json", "rejects.parquet"} <= names
    for pattern in (
        r"extract/salesforce/part-\d+\.parquet",
        r"extract/hubspot/part-\d+\.parquet",
        r"batches/.+",
        r"results/.+",
    ):
        assert any(re.fullmatch(pattern, name) for name in names), (pattern, sorted(names))
    assert not any(name.endswith(".tmp") for name in names)
    (report_key,) = [key for key in keys if key.endswith("/report.json")]
    report = json.loads(s3_staging.client().get_object(Bucket=s3_staging.bucket, Key=report_key)["Body"].read())
    assert report["extracted"]["salesforce"] > 0 and report["extracted"]["hubspot"] > 0
    written = sum(n for key, n in report["decisions"].items() if key.split(".")[1] in ("create", "update"))
    assert written > 0
