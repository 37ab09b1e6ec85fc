"""Staged run data: Parquet and JSON files in one folder per DAG run, and inside it one folder per try.

A cleared run, and a backfill that reprocesses a run, runs again under the same run id, so whatever a try
decides and writes lives in a `try-…/` folder of its own inside the run folder: a new try never sees an
earlier try's decisions, batches or load results. The run folder itself holds the latest try's report and rejects.
XCom carries only the URLs and counts; rows stay in files. The base is Airflow's ObjectStoragePath, so
`[crm_sync] staging_base` (env AIRFLOW__CRM_SYNC__STAGING_BASE) may point at s3://, gs://, ... as well as
the default local folder under AIRFLOW_HOME. An object store's connection is named in the URL's user part,
e.g. `s3://aws_default@bucket/prefix`, and travels in every URL this module returns.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow.sdk import ObjectStoragePath

from crm_sync.settings import crm_sync_settings

if TYPE_CHECKING:
    import pandas as pd


def staging_base() -> ObjectStoragePath:
    """`[crm_sync] staging_base`, or file://$AIRFLOW_HOME/crm_sync_staging."""
    configured = crm_sync_settings().staging_base
    if configured:
        return ObjectStoragePath(configured)
    return ObjectStoragePath(
        "file://" + os.path.join(os.environ.get("AIRFLOW_HOME", os.path.expanduser("~/airflow")), "crm_sync_staging")
    )


def run_folder(dag_id: str, run_id: str) -> ObjectStoragePath:
    """The folder of one DAG run; run ids hold ':' and '+', which object stores dislike."""
    safe_run = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    folder = staging_base() / dag_id / safe_run
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def try_folder(dag_id: str, run_id: str, run_try: str) -> ObjectStoragePath:
    """The folder of one try of a run (`run_try`: see the operators' `run_try`)."""
    return run_folder(dag_id, run_id) / f"try-{run_try}"


def result_urls(folder: str | None, *, links: bool = True) -> list[str]:
    """The load (and, with `links`, link-back) results staged in a try's folder, in name order."""
    if not folder:
        return []
    paths = sorted((ObjectStoragePath(folder) / "results").glob("*.parquet"))
    return [str(path) for path in paths if links or not path.name.startswith("link-")]


def write_frame(path: ObjectStoragePath, frame: pd.DataFrame) -> str:
    """Write a frame as Parquet, never visible half-written: a retried task must not read a partial part.

    Local files go through a temporary name and a rename. An object store's PUT is already all or nothing
    (and its "rename" is a copy plus a delete), so there the object is written directly.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    local = path.protocol in ("", "file", "local")
    target = path.parent / f".{path.name}.tmp" if local else path
    with target.open("wb") as handle:
        frame.to_parquet(handle, index=False)
    if local:
        target.rename(path)
    return str(path)


def read_frame(url: str, columns: list[str] | None = None) -> pd.DataFrame:
    import pandas as pd

    with ObjectStoragePath(url).open("rb") as handle:
        return pd.read_parquet(handle, columns=columns)


def iter_frames(urls: list[str], columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """Staged parts one at a time: what keeps a large run's memory at one part."""
    for url in urls:
        yield read_frame(url, columns)


def read_frames(urls: list[str]) -> pd.DataFrame | None:
    """Concatenate staged parts; None when there are none."""
    import pandas as pd

    frames = [read_frame(url) for url in urls]
    return pd.concat(frames, ignore_index=True) if frames else None


def write_json(path: ObjectStoragePath, payload: Any) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True, default=str)
    return str(path)


def read_json(url: str) -> Any:
    with ObjectStoragePath(url).open("r") as handle:
        return json.load(handle)
