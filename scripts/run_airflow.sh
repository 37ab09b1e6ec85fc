#!/usr/bin/env bash
# The real Airflow, locally, on http://127.0.0.1:${AIRFLOW_PORT:-8080}: api-server (UI), scheduler (LocalExecutor),
# dag-processor and triggerer as separate processes, each restarted when it exits, on PostgreSQL, wired to the
# CRM sandboxes and a redis-server. What lives under .airflow survives restarts: the PostgreSQL cluster
# (.airflow/postgres: the metadata DB `airflow` and the sync state `crm_sync_state`), the staged files, and the
# sandboxes' CRM data, which the sandbox saves on a clean stop (Ctrl-C). When there is no saved CRM data (the
# first start, or after a kill), the sandboxes are seeded afresh and the sync state and staged files are reset
# with them, so the sync state never describes CRMs that are gone. Trigger runs or start a backfill from the UI
# (trigger dialog: Single Run / Backfill), or:  airflow backfill create --dag-id crm_contact_sync --from-date ...
set -euo pipefail
source "$(dirname "$0")/airflow_env.sh"
cd "$ROOT"
PORT="${AIRFLOW_PORT:-8080}"
RUN_DIR="$AIRFLOW_HOME/run"
LOG_DIR="$AIRFLOW_HOME/logs/components"
PG_DIR="$AIRFLOW_HOME/postgres"
SANDBOX_DIR="$RUN_DIR/sandbox"
STAGING_DIR="$AIRFLOW_HOME/crm_sync_staging"
mkdir -p "$RUN_DIR" "$LOG_DIR"
chmod 755 "$AIRFLOW_HOME"  # as root, PostgreSQL runs as the postgres user and must reach its directory
SUPERVISORS=()

# Run a component in its own process group until stopped, restarting it 5 s after it exits (each restart is said
# on screen). Stopping gives it 30 s to finish (the scheduler waits for running tasks), then ends its group: the
# scheduler's idle LocalExecutor workers can outlive it otherwise.
supervise() {
  local name="$1"
  shift
  (
    child=""
    stop_child() {
      [ -n "$child" ] || exit 0
      kill -TERM "$child" 2>/dev/null || true
      for _ in $(seq 60); do kill -0 "$child" 2>/dev/null || break; sleep 0.5; done
      kill -KILL -- "-$child" 2>/dev/null || true
      wait "$child" 2>/dev/null || true
      exit 0
    }
    trap stop_child TERM
    while true; do
      setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 &
      child=$!
      code=0
      wait "$child" || code=$?
      echo "$(date -u '+%F %T') UTC: $name exited (code $code); restarting it in 5 s (log: $LOG_DIR/$name.log)" |
        tee -a "$LOG_DIR/restarts.log"
      sleep 5 &
      wait $!
    done
  ) &
  SUPERVISORS+=("$!")
}

# Stop in order: the components (the scheduler first, so no task starts), then the sandbox (it saves the CRM
# data once its servers are down), Redis and PostgreSQL.
stop_all() {
  trap - EXIT INT TERM
  echo "stopping Airflow, the sandboxes, Redis and PostgreSQL ..."
  local i
  for ((i = ${#SUPERVISORS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${SUPERVISORS[i]}" 2>/dev/null || true
    wait "${SUPERVISORS[i]}" 2>/dev/null || true
  done
  stop_services "$RUN_DIR"
  python -m tests.local_services postgres-stop "$PG_DIR" 2>/dev/null || true
}
trap stop_all EXIT
trap 'exit 0' INT TERM  # Ctrl-C is the way to stop: stop_all runs on exit

PG_URL=$(python -m tests.local_services postgres-start "$PG_DIR")
eval "$(python -m tests.local_services database "$PG_URL" airflow --print metadata-env)"
start_redis "$RUN_DIR/redis"
# Contacts modified over the last day, so a backfill of the last hours from the UI has work in each window.
start_sandbox "$SANDBOX_DIR" --persist --contacts "${CONTACTS:-1000}" --seed "${SEED:-7}" --window-minutes 1440 "$@"
if [ "$SANDBOX_RESTORED" = 1 ]; then
  STATE_NOTE="kept: the sandboxes' CRM data (saved at the last clean stop), the sync state and staged files"
  AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT=$(python -m tests.local_services database "$PG_URL" crm_sync_state --print connection)
else
  STATE_NOTE="RESET: no CRM data saved by a clean stop (first start, or the last stop was a kill), so the sandboxes
             were seeded afresh and the sync state and staged files reset with them (run history is kept)"
  AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT=$(python -m tests.local_services database "$PG_URL" crm_sync_state --fresh --print connection)
  rm -rf "$STAGING_DIR"
fi
export AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT

# One JWT secret for every component (the api-server signs task tokens the others must accept), kept across restarts.
[ -f "$AIRFLOW_HOME/jwt_secret" ] || python -c 'import secrets; print(secrets.token_urlsafe(64))' >"$AIRFLOW_HOME/jwt_secret"
AIRFLOW__API_AUTH__JWT_SECRET=$(cat "$AIRFLOW_HOME/jwt_secret")
export AIRFLOW__API_AUTH__JWT_SECRET
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW_PARALLELISM:-8}"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$PORT/execution/"
# The scheduler and triggerer serve their task logs on ports of their own (8793, 8794 by default): free ones.
AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$(free_port)
AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT=$(free_port)
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT
airflow db migrate >"$LOG_DIR/db-migrate.log" 2>&1
ensure_pools
# New DAGs start paused ([core] dags_are_paused_at_creation), and a paused DAG's backfill runs stay queued
# with nothing in the UI saying why: parse the DAG into the metadata DB now and unpause it.
airflow dags reserialize >"$LOG_DIR/dags-reserialize.log" 2>&1
airflow dags unpause crm_contact_sync >/dev/null

# The api-server first: task processes report to its execution API from their first line.
supervise api-server airflow api-server --host "${AIRFLOW_HOST:-127.0.0.1}" --port "$PORT" --workers 1
python - "$PORT" "$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated" <<'PY'
import sys, time, urllib.request
from pathlib import Path
port, passwords = sys.argv[1], Path(sys.argv[2])
for _ in range(360):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2)
        if passwords.exists():
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.5)
sys.exit(f"the api-server did not answer on port {port} within 3 minutes")
PY
supervise dag-processor airflow dag-processor
supervise triggerer airflow triggerer
supervise scheduler airflow scheduler
cat <<EOF

Airflow UI:  http://127.0.0.1:$PORT  (user admin, password in $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated)
Sandboxes:   salesforce $SANDBOX_SALESFORCE_URL, hubspot $SANDBOX_HUBSPOT_URL (admin API under /__admin/)
State:       $STATE_NOTE
Logs:        $LOG_DIR/<component>.log; a component that exits is restarted and said here.
Stop:        Ctrl-C (saves the sandboxes' CRM data for the next start)

EOF
wait
