#!/usr/bin/env bash
# The real Airflow, locally: `airflow standalone` (api-server + UI, scheduler, dag-processor,
# triggerer) on http://127.0.0.1:8080, with the CRM sandboxes and a redis-server as connections.
# Trigger runs or start a backfill from the UI (trigger dialog: Single Run / Backfill), or:
#   airflow backfill create --dag-id crm_contact_sync --from-date ... --to-date ...
set -euo pipefail
source "$(dirname "$0")/airflow_env.sh"
RUN_DIR="$AIRFLOW_HOME/standalone"
trap 'stop_services "$RUN_DIR"' EXIT
start_redis "$RUN_DIR/redis"
export AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT="${AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT:-sqlite:///$RUN_DIR/sync-state.db}"
start_sandbox "$RUN_DIR/sandbox" --contacts "${CONTACTS:-1000}" --seed "${SEED:-7}" "$@"
airflow db migrate >"$RUN_DIR/db-migrate.log" 2>&1
ensure_pools
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__API__PORT="${AIRFLOW_PORT:-8080}"
echo "Airflow UI: http://127.0.0.1:${AIRFLOW__API__PORT} (login: see $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated)"
echo "Sandboxes: salesforce $SANDBOX_SALESFORCE_URL, hubspot $SANDBOX_HUBSPOT_URL (admin API under /__admin/)"
airflow standalone
