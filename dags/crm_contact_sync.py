"""Two-way sync of Salesforce and HubSpot contacts, one 15-minute data interval per run.

Wiring only: the work lives in the operators of the `crm_sync` plugin package and the pure logic in
`include.sync_logic`. Nothing heavy (pandas, the CRM clients) is imported at parse time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable, Param, conf

from crm_sync.notify import SyncAlertNotifier
from crm_sync.operators.check import RunOutcomeOperator
from crm_sync.operators.extract import ExtractHubSpotContactsOperator, ExtractSalesforceContactsOperator
from crm_sync.operators.gate import MassChangeGateOperator
from crm_sync.operators.link_back import LinkBackOperator
from crm_sync.operators.load import HubSpotLoadOperator, SalesforceLoadOperator
from crm_sync.operators.plan import PlanWritesOperator
from crm_sync.operators.preflight import PreflightOperator
from crm_sync.operators.reconcile import ReconcileContactsOperator
from crm_sync.operators.report import SyncReportOperator
from crm_sync.operators.settle import SettleStateOperator

# [crm_sync] mapping_path: another mapping file (absolute, or relative to the project root).
MAPPING_PATH = conf.get("crm_sync", "mapping_path", fallback="include/mappings/contacts.yaml")

with DAG(
    dag_id="crm_contact_sync",
    description="Two-way sync of Salesforce and HubSpot contacts modified in each data interval",
    schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=4,
    tags=["crm", "salesforce", "hubspot"],
    on_failure_callback=SyncAlertNotifier(),
    default_args={
        # [crm_sync] task_retries / retry_delay_seconds tune every task's Airflow retries per deployment.
        "retries": conf.getint("crm_sync", "task_retries", fallback=3),
        "retry_delay": timedelta(seconds=conf.getint("crm_sync", "retry_delay_seconds", fallback=20)),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
    params={
        "direction": Param(
            "both",
            enum=["both", "salesforce_to_hubspot", "hubspot_to_salesforce"],
            description="Which way changes flow.",
        ),
        "dry_run": Param(False, type="boolean", description="Plan and report, write nothing."),
        "full_resync": Param(False, type="boolean", description="Ignore the window; reconcile every contact."),
        "lookback_minutes": Param(
            10,
            type="integer",
            minimum=0,
            maximum=120,
            description="Widen the window backwards (clock skew, late commits, search-index lag).",
        ),
        "salesforce_conn_id": Param("salesforce_default", type="string"),
        "hubspot_conn_id": Param("hubspot_default", type="string"),
        "redis_conn_id": Param("redis_default", type="string"),
        "state_conn_id": Param("crm_sync_state_default", type="string", description="The sync-state database."),
        "log_pii": Param(False, type="boolean", description="Show emails and phones in logs, the view and alerts."),
        "allow_mass_change": Param(False, type="boolean", description="Let a run past the mass-change gate."),
        "max_change_share": Param(
            0.5,
            type="number",
            minimum=0,
            maximum=1,
            description="Mass-change gate: largest share of a CRM's contacts that may be updated or deleted.",
        ),
        "mass_change_min_count": Param(
            100, type="integer", minimum=0, description="Mass-change gate: this many changes to a CRM or fewer pass."
        ),
        # Nullable: Airflow's trigger form counts an empty string default as a missing required value and
        # greys out Trigger and Run Backfill; None (an empty field) passes.
        "alert_to": Param(
            conf.get("crm_sync", "alert_to", fallback="") or None,
            type=["null", "string"],
            description="Alert email addresses, comma-separated (empty: no alerts). Default: [crm_sync] alert_to.",
        ),
        "alert_conn_id": Param("smtp_default", type="string", description="SMTP connection the alerts go through."),
        "alert_reject_share": Param(
            0.05, type="number", minimum=0, maximum=1, description="Alert when rejects pass this share of a run."
        ),
        "alert_retry_queue": Param(
            500, type="integer", minimum=0, description="Alert when the retry queue holds more contacts."
        ),
        "alert_api_budget_share": Param(
            0.8, type="number", minimum=0, maximum=1, description="Alert when a daily API budget passes this share."
        ),
    },
) as dag:
    preflight = PreflightOperator(task_id="preflight", mapping_path=MAPPING_PATH, retries=0)
    extract_salesforce = ExtractSalesforceContactsOperator(task_id="extract_salesforce", mapping_path=MAPPING_PATH)
    extract_hubspot = ExtractHubSpotContactsOperator(task_id="extract_hubspot", mapping_path=MAPPING_PATH)
    reconcile = ReconcileContactsOperator(
        task_id="reconcile",
        mapping_path=MAPPING_PATH,
        salesforce_extract=extract_salesforce.output,
        hubspot_extract=extract_hubspot.output,
    )
    gate = MassChangeGateOperator(task_id="mass_change_gate", reconcile_result=reconcile.output)
    plan_hubspot = PlanWritesOperator(task_id="plan_hubspot", target="hubspot", reconcile_result=reconcile.output)
    plan_salesforce = PlanWritesOperator(
        task_id="plan_salesforce", target="salesforce", reconcile_result=reconcile.output
    )
    load_hubspot = HubSpotLoadOperator.partial(
        task_id="load_hubspot", pool="crm_sync_hubspot", mapping_path=MAPPING_PATH
    ).expand(shard=plan_hubspot.output)
    load_salesforce = SalesforceLoadOperator.partial(
        task_id="load_salesforce", pool="crm_sync_salesforce", mapping_path=MAPPING_PATH
    ).expand(shard=plan_salesforce.output)
    link_back = LinkBackOperator(
        task_id="link_back", mapping_path=MAPPING_PATH, reconcile_result=reconcile.output, trigger_rule="none_failed"
    )
    settle_state = SettleStateOperator(task_id="settle_state", trigger_rule="all_done")
    report = SyncReportOperator(task_id="report", trigger_rule="all_done")
    check = RunOutcomeOperator(task_id="check_run")

    preflight >> [extract_salesforce, extract_hubspot]
    gate >> [plan_hubspot, plan_salesforce]
    [load_hubspot, load_salesforce] >> link_back >> settle_state >> report >> check
    reconcile >> settle_state
