"""What every sync task reads from its context: params, the window, the mapping and the run folder; and the
connection ids a CRM-facing task takes as templated arguments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, ObjectStoragePath

from crm_sync.params import RunParams, param
from crm_sync.staging import run_folder, try_folder
from crm_sync.window import SyncWindow
from include.sync_logic.sides import Side

if TYPE_CHECKING:
    from airflow.sdk import Context

    from crm_sync.hooks.contacts import ContactsHook
    from include.sync_logic.mapping import MappingConfig

PROJECT_ROOT = Path(__file__).resolve().parents[3]
# Covers the CRMs' read-after-write lag (HubSpot's search index, Salesforce's late commits); re-reading a
# contact that equals its sync-state snapshot costs a read, never a write.
DEFAULT_LOOKBACK_MINUTES = 10


@dataclass(frozen=True)
class RunSettings:
    """The DAG params of one run, typed."""

    direction: str
    dry_run: bool
    full_resync: bool
    lookback_minutes: int
    salesforce_conn_id: str
    hubspot_conn_id: str
    redis_conn_id: str
    state_conn_id: str
    log_pii: bool = False
    allow_mass_change: bool = False
    max_change_share: float = 0.5
    mass_change_min_count: int = 100

    @classmethod
    def from_params(cls, params: Any) -> RunSettings:
        return cls(
            direction=str(param(params, "direction", "both")),
            dry_run=bool(param(params, "dry_run", False)),
            full_resync=bool(param(params, "full_resync", False)),
            lookback_minutes=int(param(params, "lookback_minutes", DEFAULT_LOOKBACK_MINUTES)),
            salesforce_conn_id=str(param(params, "salesforce_conn_id", "salesforce_default")),
            hubspot_conn_id=str(param(params, "hubspot_conn_id", "hubspot_default")),
            redis_conn_id=str(param(params, "redis_conn_id", "redis_default")),
            state_conn_id=str(param(params, "state_conn_id", "crm_sync_state_default")),
            log_pii=bool(param(params, "log_pii", False)),
            allow_mass_change=bool(param(params, "allow_mass_change", False)),
            max_change_share=float(param(params, "max_change_share", 0.5)),
            mass_change_min_count=int(param(params, "mass_change_min_count", 100)),
        )


class CrmSyncOperator(BaseOperator):
    """Base of the sync's operators: typed access to what the run context holds."""

    def settings(self, context: Context) -> RunSettings:
        return RunSettings.from_params(context["params"])

    def run_params(self, context: Context) -> RunParams:
        """The run's behaviour switches."""
        return RunParams.from_params(context["params"])

    def window(self, context: Context) -> SyncWindow:
        params = self.run_params(context)
        return SyncWindow.from_interval(
            context["data_interval_start"],
            context["data_interval_end"],
            lookback_minutes=params.lookback_minutes,
            full_resync=params.full_resync,
        )

    def run_folder(self, context: Context) -> ObjectStoragePath:
        """The run's folder: the latest try's report and rejects."""
        return run_folder(self.dag_id, context["run_id"])

    def try_folder(self, context: Context) -> ObjectStoragePath:
        """This try's folder: what this try extracts, decides and writes (a cleared run starts a new one)."""
        return try_folder(self.dag_id, context["run_id"], run_try(context))


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

