"""Two-way sync of Salesforce and HubSpot contacts, one 15-minute data interval per run.

Wiring only: the work lives in the operators of the `crm_sync` plugin package and the pure logic in
`include.sync_logic`. Nothing heavy (pandas, the CRM clients) is imported at parse time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable, Param

from crm_sync.alerts import AlertThresholds
from crm_sync.dag_params import RUN, connection_params, direction_param, log_pii_param, mass_change_params
from crm_sync.notify import SyncAlertNotifier
from crm_sync.operators.check import RunOutcomeOperator
from crm_sync.operators.extract import ExtractContactsOperator
from crm_sync.operators.gate import MassChangeGateOperator
from crm_sync.operators.link_back import LinkBackOperator
from crm_sync.operators.load import LoadContactsOperator
from crm_sync.operators.plan import PlanWritesOperator
from crm_sync.operators.preflight import PreflightOperator
from crm_sync.operators.reconcile import ReconcileContactsOperator
from crm_sync.operators.report import SyncReportOperator
from crm_sync.operators.settle import SettleStateOperator
from crm_sync.settings import DAG_ID, crm_sync_settings
from include.sync_logic.sides import Side

SETTINGS = crm_sync_settings()  # [crm_sync]: connections, mapping, retries, alert recipients
ALERTS = AlertThresholds()
MAPPING_PATH = SETTINGS.mapping_path

with DAG(
    dag_id=DAG_ID,
    description="Two-way sync of Salesforce and HubSpot contacts modified in each data interval",
    schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=4,
    tags=["crm", "salesforce", "hubspot"],
    on_failure_callback=SyncAlertNotifier(),
    default_args={
        "retries": SETTINGS.task_retries,
        "retry_delay": timedelta(seconds=SETTINGS.retry_delay_seconds),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
    params={
        "direction": direction_param(),
        "dry_run": Param(RUN.dry_run, type="boolean", description="Plan and report, write nothing."),
        "full_resync": Param(
            RUN.full_resync, type="boolean", description="Ignore the window; reconcile every contact."
        ),
        "lookback_minutes": Param(
            RUN.lookback_minutes,
            type="integer",
            minimum=0,
            maximum=120,
            description="Widen the window backwards (clock skew, late commits, search-index lag).",
        ),
        **connection_params(SETTINGS),
        "log_pii": log_pii_param(),
        **mass_change_params(),
        # Nullable: Airflow's trigger form counts an empty string default as a missing required value and
        # greys out Trigger and Run Backfill; None (an empty field) passes.
        "alert_to": Param(
            SETTINGS.alert_to,
            type=["null", "string"],
            description="Alert email addresses, comma-separated (empty: no alerts). Default: [crm_sync] alert_to.",
        ),
        "alert_conn_id": Param(
            SETTINGS.alert_conn_id, type="string", description="SMTP connection the alerts go through."
        ),
        "alert_reject_share": Param(
            ALERTS.reject_share,
            type="number",
            minimum=0,
            maximum=1,
            description="Alert when rejects pass this share of a run.",
        ),
        "alert_retry_queue": Param(
            ALERTS.retry_queue, type="integer", minimum=0, description="Alert when the retry queue holds more contacts."
        ),
        "alert_api_budget_share": Param(
            ALERTS.api_budget_share,
            type="number",
            minimum=0,
            maximum=1,
            description="Alert when a daily API budget passes this share.",
        ),
    },
) as dag:
    preflight = PreflightOperator(task_id="preflight", mapping_path=MAPPING_PATH, retries=0)
    extract_salesforce = ExtractContactsOperator(
        task_id="extract_salesforce", side=Side.SALESFORCE, mapping_path=MAPPING_PATH
    )
    extract_hubspot = ExtractContactsOperator(task_id="extract_hubspot", side=Side.HUBSPOT, mapping_path=MAPPING_PATH)
    extracts = {Side.SALESFORCE: extract_salesforce.output, Side.HUBSPOT: extract_hubspot.output}
    reconcile = ReconcileContactsOperator(task_id="reconcile", mapping_path=MAPPING_PATH, extracts=extracts)
    gate = MassChangeGateOperator(task_id="mass_change_gate", reconcile_result=reconcile.output)
    plan_hubspot = PlanWritesOperator(task_id="plan_hubspot", side=Side.HUBSPOT, reconcile_result=reconcile.output)
    plan_salesforce = PlanWritesOperator(
        task_id="plan_salesforce", side=Side.SALESFORCE, reconcile_result=reconcile.output
    )
    load_hubspot = LoadContactsOperator.partial(
        task_id="load_hubspot", side=Side.HUBSPOT, pool="crm_sync_hubspot", mapping_path=MAPPING_PATH
    ).expand(shard=plan_hubspot.output)
    load_salesforce = LoadContactsOperator.partial(
        task_id="load_salesforce", side=Side.SALESFORCE, pool="crm_sync_salesforce", mapping_path=MAPPING_PATH
    ).expand(shard=plan_salesforce.output)
    link_back = LinkBackOperator(
        task_id="link_back", mapping_path=MAPPING_PATH, reconcile_result=reconcile.output, trigger_rule="none_failed"
    )
    settle_state = SettleStateOperator(
        task_id="settle_state", reconcile_result=reconcile.output, trigger_rule="all_done"
    )
    report = SyncReportOperator(
        task_id="report",
        extracts=extracts,
        reconcile_result=reconcile.output,
        loads={Side.HUBSPOT: load_hubspot.output, Side.SALESFORCE: load_salesforce.output},
        link_back_result=link_back.output,
        settle_result=settle_state.output,
        trigger_rule="all_done",
    )
    check = RunOutcomeOperator(task_id="check_run")

    preflight >> [extract_salesforce, extract_hubspot]
    gate >> [plan_hubspot, plan_salesforce]
    [load_hubspot, load_salesforce] >> link_back >> settle_state >> report >> check
