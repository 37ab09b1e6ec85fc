"""The deployment's settings: the `[crm_sync]` section of Airflow's config, every default in this one place.

A run's params say how one run behaves (`crm_sync.params`); these say where the sync lives. The DAG file takes
its connection-id params' defaults, retries, mapping and alert recipients from here, the tasks their staging
base and partition size, and the sync-health view (which sees no run's params) its connections. Set an option
in airflow.cfg's `[crm_sync]` or as `AIRFLOW__CRM_SYNC__<OPTION>`; it is read when asked for, not at import.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from include.sync_logic.sides import Side

SECTION = "crm_sync"
DAG_ID = "crm_contact_sync"


@dataclass(frozen=True)
class CrmSyncSettings:
    """The `[crm_sync]` options; the field defaults are the defaults."""

    salesforce_conn_id: str = "salesforce_default"
    hubspot_conn_id: str = "hubspot_default"
    redis_conn_id: str = "redis_default"  # the rate-limit pool shared by every worker and run
    state_conn_id: str = "crm_sync_state_default"  # the sync-state database
    alert_conn_id: str = "smtp_default"
    alert_to: str | None = None  # comma-separated; None: no alerts
    mapping_path: str = "include/mappings/contacts.yaml"  # absolute, or relative to the project root
    task_retries: int = 3
    retry_delay_seconds: int = 20
    staging_base: str | None = None  # an ObjectStoragePath URL; None: file://$AIRFLOW_HOME/crm_sync_staging
    # Contacts of the larger side per full-resync partition: a reconcile of 100,000 a side peaks near 500 MiB.
    partition_contacts: int = 100_000
    # The event-driven DAG (crm_contact_sync_events). Salesforce has no change feed here: the trigger polls it every
    # this many seconds (86,400 / N calls a day while quiet: 2,880 at 30 s; 0: no poll).
    events_salesforce_poll_seconds: int = 30
    # A micro-batch is claimed when its oldest event is this old, or at once when events_max_batch events wait:
    # API calls per change against latency.
    events_batch_seconds: int = 20
    events_max_batch: int = 500  # events one micro-batch claims at most
    events_run_seconds: int = 240  # how long one event run keeps claiming micro-batches before it ends

    def conn_id(self, side: Side) -> str:
        """The connection id of a CRM."""
        return self.salesforce_conn_id if side is Side.SALESFORCE else self.hubspot_conn_id


DEFAULTS = CrmSyncSettings()


def crm_sync_settings() -> CrmSyncSettings:
    """The `[crm_sync]` options as Airflow's config has them now; an empty optional one is None."""
    from airflow.sdk import conf

    values: dict[str, Any] = {}
    for option in fields(CrmSyncSettings):
        default = option.default
        if isinstance(default, int):
            values[option.name] = conf.getint(SECTION, option.name, fallback=default)
        elif default is None:
            values[option.name] = conf.get(SECTION, option.name, fallback="") or None
        else:
            values[option.name] = conf.get(SECTION, option.name, fallback=default)
    return CrmSyncSettings(**values)
