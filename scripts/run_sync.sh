#!/usr/bin/env bash
# The main job: one real sync of one window with `airflow dags test`, against the local CRM
# sandboxes (seeded with messy, overlapping contacts modified inside that window), a private
# redis-server and a SQLite metadata DB under .airflow/. Prints the run's report.
set -euo pipefail
source "$(dirname "$0")/airflow_env.sh"
CONTACTS="${CONTACTS:-1000}"
RUN_DIR="$AIRFLOW_HOME/demo/$(date -u +%Y%m%dT%H%M%S)"
mkdir -p "$RUN_DIR"
trap 'stop_services "$RUN_DIR"' EXIT

# A manual run for logical date T syncs [T - 15 min, T). T is the last quarter hour; the sandboxes'
# clock starts 30 s before it and the seeded contacts were modified in the 14 minutes before that, so
# the run finds them all in its window, and what it writes lands after T (the next window).
read -r WINDOW_START LOGICAL_DATE SANDBOX_CLOCK < <(python - <<'PY'
from datetime import datetime, timedelta, timezone
now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
end = now.replace(minute=now.minute - now.minute % 15)
print((end - timedelta(minutes=15)).isoformat(), end.isoformat(), (end - timedelta(seconds=30)).isoformat())
PY
)
start_redis "$RUN_DIR/redis"
# The sandboxes start fresh each time, so the sync state does too (a SQLite file; PostgreSQL in deployment).
export AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT="${AIRFLOW_CONN_CRM_SYNC_STATE_DEFAULT:-sqlite:///$RUN_DIR/sync-state.db}"
start_sandbox "$RUN_DIR/sandbox" --contacts "$CONTACTS" --seed "${SEED:-7}" \
  --clock "$SANDBOX_CLOCK" --window-minutes 14
echo "sandboxes up: salesforce $SANDBOX_SALESFORCE_URL, hubspot $SANDBOX_HUBSPOT_URL; $CONTACTS contacts a side"

airflow db migrate >"$RUN_DIR/db-migrate.log" 2>&1
ensure_pools

echo "airflow dags test crm_contact_sync $LOGICAL_DATE  (window [$WINDOW_START, $LOGICAL_DATE))"
if ! airflow dags test crm_contact_sync "$LOGICAL_DATE" ${SYNC_CONF:+-c "$SYNC_CONF"} >"$RUN_DIR/dags-test.log" 2>&1; then
  tail -n 60 "$RUN_DIR/dags-test.log"
  echo "the run failed; full log: $RUN_DIR/dags-test.log" >&2
  exit 1
fi
python -m crm_sync.report_summary --latest
echo "full log: $RUN_DIR/dags-test.log"
