"""What every sync task reads from its context: params, the window, the mapping and the run folder; and the
connection ids a CRM-facing task takes as templated arguments."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, ObjectStoragePath

from crm_sync.params import RunParams
from crm_sync.staging import run_folder, try_folder
from crm_sync.window import SyncWindow
from include.sync_logic.sides import Side

if TYPE_CHECKING:
    from airflow.sdk import Context

    from crm_sync.hooks.contacts import ContactsHook
    from include.sync_logic.mapping import MappingConfig

PROJECT_ROOT = Path(__file__).resolve().parents[3]


class CrmSyncOperator(BaseOperator):
    """Base of the sync's operators: typed access to what the run context holds."""

    def run_params(self, context: Context) -> RunParams:
        """The run's behaviour switches."""
        return RunParams.from_params(context["params"])

    def window(self, context: Context) -> SyncWindow:
        params = self.run_params(context)
        return SyncWindow.from_interval(
            *data_interval(context), lookback_minutes=params.lookback_minutes, full_resync=params.full_resync
        )

    def run_folder(self, context: Context) -> ObjectStoragePath:
        """The run's folder: the latest try's report and rejects."""
        return run_folder(self.dag_id, context["run_id"])

    def try_folder(self, context: Context) -> ObjectStoragePath:
        """This try's folder: what this try extracts, decides and writes (a cleared run starts a new one)."""
        return try_folder(self.dag_id, context["run_id"], run_try(context))


def data_interval(context: Context) -> tuple[datetime, datetime]:
    """The run's data interval; every run of the DAG's data-interval timetable has one."""
    start, end = context["data_interval_start"], context["data_interval_end"]
    if start is None or end is None:
        raise ValueError("the run has no data interval: the DAG needs a data-interval timetable")
    return start, end


def param_template(name: str) -> str:
    """A template of the run's param `name`: what an argument defaults to when each run may choose it."""
    return f"{{{{ params.{name} }}}}"


class CrmConnectionsOperator(CrmSyncOperator):
    """A task talking to the CRMs: their connection ids and the rate-limit pool's Redis are templated
    arguments (as providers' operators take `*_conn_id`), by default the run's connection-id params."""

    template_fields: Sequence[str] = ("salesforce_conn_id", "hubspot_conn_id", "redis_conn_id")

    def __init__(
        self,
        *,
        salesforce_conn_id: str = param_template("salesforce_conn_id"),
        hubspot_conn_id: str = param_template("hubspot_conn_id"),
        redis_conn_id: str = param_template("redis_conn_id"),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.salesforce_conn_id = salesforce_conn_id
        self.hubspot_conn_id = hubspot_conn_id
        self.redis_conn_id = redis_conn_id

    def conn_id(self, side: Side) -> str:
        """The connection id of a CRM."""
        return self.salesforce_conn_id if side is Side.SALESFORCE else self.hubspot_conn_id

    def contacts_hook(self, side: Side, *, max_wait_seconds: float | None = None) -> ContactsHook:
        """The contacts hook of a CRM on this task's connections."""
        from crm_sync.hooks.contacts import contacts_hook

        return contacts_hook(
            side, self.conn_id(side), redis_conn_id=self.redis_conn_id, max_wait_seconds=max_wait_seconds
        )


def run_try(context: Context) -> str:
    """Which try of its run a task belongs to: the same for every task, task retry and deferral of one try.

    `clear_number` counts the clears (a reprocessing backfill clears too). It alone is not enough: `airflow dags
    test` replaces an earlier run of its date by a new one with the same run id and clear number 0, so the
    run's start (reset when a finished run is cleared) is part of the key.
    """
    dag_run = context["dag_run"]
    started = dag_run.start_date.strftime("%Y%m%dT%H%M%S%f") if dag_run.start_date else "unstarted"
    return f"{dag_run.clear_number or 0}-{started}"


def load_mapping_file(mapping_path: str) -> MappingConfig:
    """Load the YAML mapping; a relative path is taken from the project root."""
    from include.sync_logic.mapping import load_mapping

    path = Path(mapping_path)
    return load_mapping(path if path.is_absolute() else PROJECT_ROOT / path)
