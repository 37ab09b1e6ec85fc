"""The DAG params both sync DAGs offer (the windowed `crm_contact_sync` and the event-driven one), defined once.

Defaults come from `RunParams` (a run's behaviour) and the `[crm_sync]` settings (its connections); the tasks read
them through `RunParams.from_params` and their templated connection-id arguments.
"""

from __future__ import annotations

from airflow.sdk import Param

from crm_sync.params import RunParams
from crm_sync.settings import CrmSyncSettings
from include.sync_logic.sides import Direction

RUN = RunParams()  # the behaviour switches' defaults


def direction_param() -> Param:
    return Param(
        str(RUN.direction), enum=[str(direction) for direction in Direction], description="Which way changes flow."
    )


def connection_params(settings: CrmSyncSettings) -> dict[str, Param]:
    """The connection ids (defaults: [crm_sync] salesforce_conn_id ...); tasks take them as templated arguments."""
    return {
        "salesforce_conn_id": Param(settings.salesforce_conn_id, type="string"),
        "hubspot_conn_id": Param(settings.hubspot_conn_id, type="string"),
        "redis_conn_id": Param(settings.redis_conn_id, type="string"),
        "state_conn_id": Param(settings.state_conn_id, type="string", description="The sync-state database."),
    }


def log_pii_param() -> Param:
    return Param(RUN.log_pii, type="boolean", description="Show emails and phones in logs, the view and alerts.")


def mass_change_params() -> dict[str, Param]:
    """The mass-change gate's switches."""
    return {
        "allow_mass_change": Param(
            RUN.allow_mass_change, type="boolean", description="Let a run past the mass-change gate."
        ),
        "max_change_share": Param(
            RUN.max_change_share,
            type="number",
            minimum=0,
            maximum=1,
            description="Mass-change gate: largest share of a CRM's contacts that may be updated or deleted.",
        ),
        "mass_change_min_count": Param(
            RUN.mass_change_min_count,
            type="integer",
            minimum=0,
            description="Mass-change gate: this many changes to a CRM or fewer pass.",
        ),
    }
