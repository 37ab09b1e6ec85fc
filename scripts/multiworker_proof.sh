#!/usr/bin/env bash
# The multi-worker proof without Docker (tests/multiworker/proof.py): PostgreSQL, Redis, moto's S3, the
# CRM sandboxes, and Airflow's api-server, scheduler, dag-processor, triggerer and two Celery workers;
# a backfill and a scheduled run at once, with HubSpot at 10 requests per 10 s so the shared pool must wait.
# Prints a summary (runs, retried task instances, the sandbox's peak rolling counts against its limits, the
# pool's waits); exits 1 if a check failed.
set -euo pipefail
source "$(dirname "$0")/airflow_env.sh"
cd "$ROOT"
python -m tests.multiworker.proof
