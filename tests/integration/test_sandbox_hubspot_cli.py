"""`python -m sandbox serve`: connection lines, env.sh, seeding both sides, one shared clock, TLS."""

from __future__ import annotations

import json
import shlex
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
import requests

from sandbox.testing import start_sandbox

pytestmark = pytest.mark.integration

NOW = datetime(2026, 4, 2, 8, 0, tzinfo=UTC)


def test_serve_both_seeds_both_sides_and_writes_env_sh(tmp_path):
    with start_sandbox(tmp_path, contacts=40, seed=9, window_minutes=15, clock=NOW.isoformat()) as sb:
        assert sb.salesforce_url.startswith("https://127.0.0.1:")
        assert sb.hubspot_url.startswith("http://127.0.0.1:")
        salesforce_conn = json.loads(sb.env["AIRFLOW_CONN_SALESFORCE_DEFAULT"])
        assert salesforce_conn["extra"]["login_url"] == sb.salesforce_url
        hubspot_conn = json.loads(sb.env["AIRFLOW_CONN_HUBSPOT_DEFAULT"])
        assert (hubspot_conn["host"], hubspot_conn["password"]) == (sb.hubspot_url, sb.hubspot_token)

        sourced = subprocess.run(
            ["bash", "-c", f"source {shlex.quote(str(tmp_path / 'env.sh'))} && echo $SANDBOX_HUBSPOT_URL"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert sourced.stdout.strip() == sb.hubspot_url

        contacts = sb.admin("hubspot", "GET", "records").json()["contacts"]
        assert len(contacts) == 40
        stamps = [datetime.fromisoformat(c["updatedAt"].replace("Z", "+00:00")) for c in contacts]
        assert all(NOW - timedelta(minutes=15, seconds=5) <= s <= NOW + timedelta(seconds=5) for s in stamps)
        assert sb.admin("salesforce", "GET", "records").json()  # served over TLS, verified with the bundle

        sb.admin("hubspot", "POST", "clock", {"set": "2030-01-01T00:00:00Z"})
        salesforce_now = sb.admin("salesforce", "GET", "clock").json()["now"]
        assert salesforce_now.startswith("2030-01-01T00:00")
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{sb.salesforce_url}/__admin/clock", verify=requests.certs.where(), timeout=5)


def test_hubspot_only_serves_and_stops_on_sigterm(tmp_path):
    sb = start_sandbox(tmp_path, no_salesforce=True, hubspot_requests_per_10s=7)
    try:
        assert sb.salesforce_url is None
        assert "AIRFLOW_CONN_SALESFORCE_DEFAULT" not in sb.env
        assert json.loads(sb.env["AIRFLOW_CONN_HUBSPOT_DEFAULT"])["extra"]["requests_per_10s"] == 7
        assert sb.admin("hubspot", "GET", "limits").json()["requests_per_10s"] == 7
    finally:
        sb.stop()
    assert sb.proc.returncode == 0
