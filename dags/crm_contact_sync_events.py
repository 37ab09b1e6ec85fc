"""Event-driven two-way sync of Salesforce and HubSpot contacts: a run whenever contact change events wait.

HubSpot's webhooks (the plugin's endpoint on the api-server) and the Salesforce poll (run by the trigger) queue
events in Redis; the trigger watching that queue fires the asset, the asset starts a run, and the run's one task
syncs the events' contacts through the windowed DAG's code and sync state (`crm_sync.operators.events`). The
windowed DAG `crm_contact_sync` keeps running: whatever an event missed, its window still finds.

Wiring only. An asset-triggered run has no data interval: its scope is the events it claims.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Asset, AssetWatcher

from crm_sync.dag_params import connection_params, direction_param, log_pii_param, mass_change_params
from crm_sync.events.trigger import ContactEventTrigger
from crm_sync.notify import SyncAlertNotifier
from crm_sync.operators.events import SyncContactEventsOperator
from crm_sync.settings import crm_sync_settings

SETTINGS = crm_sync_settings()

CONTACT_EVENTS = Asset(
    "crm_sync_contact_events",
    watchers=[
        AssetWatcher(
            name="crm_sync_contact_event_queue",
            trigger=ContactEventTrigger(
                redis_conn_id=SETTINGS.redis_conn_id,
                salesforce_conn_id=SETTINGS.salesforce_conn_id,
                salesforce_poll_seconds=SETTINGS.events_salesforce_poll_seconds or None,
            ),
        )
    ],
)

with DAG(
    dag_id="crm_contact_sync_events",
    description="Two-way sync of the Salesforce and HubSpot contacts that change events name, as they come",
    schedule=CONTACT_EVENTS,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,  # one consumer of the queue at a time: events of one contact are synced in order
    tags=["crm", "salesforce", "hubspot", "events"],
    on_failure_callback=SyncAlertNotifier(),
    default_args={
        "retries": SETTINGS.task_retries,
        "retry_delay": timedelta(seconds=5),  # a retry takes the failed try's events over at once
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=5),
    },
    params={
        "direction": direction_param(),
        **connection_params(SETTINGS),
        "log_pii": log_pii_param(),
        **mass_change_params(),
    },
) as dag:
    SyncContactEventsOperator(
        task_id="sync_events",
        mapping_path=SETTINGS.mapping_path,
        max_batch=SETTINGS.events_max_batch,
        batch_seconds=SETTINGS.events_batch_seconds,
        run_seconds=SETTINGS.events_run_seconds,
    )
