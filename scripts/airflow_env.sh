# Sourced by the run scripts: the project root is the Airflow project (see CONTRACT.md).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__UNIT_TEST_MODE=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
export PYTHONPATH="$ROOT:$ROOT/plugins${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$ROOT/.venv/bin:$PATH"
mkdir -p "$AIRFLOW_HOME"

# An unused loopback port.
free_port() {
  python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Start a private redis-server on a free port; sets REDIS_PORT and AIRFLOW_CONN_REDIS_DEFAULT.
start_redis() {
  local dir="$1"
  mkdir -p "$dir"
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export REDIS_PORT
  export AIRFLOW_CONN_REDIS_DEFAULT="redis://127.0.0.1:$REDIS_PORT/0"
}

# Start both CRM sandboxes as one process; sources the connection lines it prints. It runs in a session of its
# own, so a Ctrl-C reaches only this shell, whose stop_services then stops it in turn.
start_sandbox() {
  local dir="$1"; shift
  mkdir -p "$dir"
  setsid python -m sandbox serve --state-dir "$dir" "$@" >"$dir/serve.out" 2>"$dir/serve.err" &
  SANDBOX_PID=$!
  for _ in $(seq 300); do grep -q SANDBOX_READY "$dir/serve.out" 2>/dev/null && break; sleep 0.1; done
  grep -q SANDBOX_READY "$dir/serve.out" || { echo "sandbox did not start:"; cat "$dir/serve.err"; return 1; }
  set -a; source "$dir/env.sh"; set +a
  export SANDBOX_PID
}

# Airflow pools that cap concurrent load tasks per CRM (the rate-limit pool caps the request rate).
ensure_pools() {
  airflow pools set crm_sync_hubspot "${HUBSPOT_POOL_SLOTS:-4}" "Concurrent HubSpot load tasks" >/dev/null
  airflow pools set crm_sync_salesforce "${SALESFORCE_POOL_SLOTS:-4}" "Concurrent Salesforce load tasks" >/dev/null
}

# Stop what start_redis/start_sandbox started under a run folder (waiting for the sandbox: it may be saving).
stop_services() {
  local dir="$1"
  if [ -n "${SANDBOX_PID:-}" ]; then
    kill "$SANDBOX_PID" 2>/dev/null || true
    wait "$SANDBOX_PID" 2>/dev/null || true
  fi
  [ -f "$dir/redis/redis.pid" ] && kill "$(cat "$dir/redis/redis.pid")" 2>/dev/null || true
}
