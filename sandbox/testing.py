"""Start the sandbox CLI as a real subprocess for tests and benchmarks, and talk to its admin API."""

from __future__ import annotations

import json as jsonlib
import os
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]


class SandboxProcess:
    """A running `python -m sandbox serve`; use as a context manager or call `stop()`."""

    def __init__(self, proc: subprocess.Popen, env: dict[str, str], log_path: Path) -> None:
        self.proc = proc
        self.env = env
        self.log_path = log_path
        self.salesforce_url = env.get("SANDBOX_SALESFORCE_URL")
        self.salesforce_login_url = env.get("SANDBOX_SALESFORCE_LOGIN_URL")  # the generic login host, if served
        self.hubspot_url = env["SANDBOX_HUBSPOT_URL"]
        self.ca_bundle = env["REQUESTS_CA_BUNDLE"]

    @property
    def hubspot_token(self) -> str:
        return jsonlib.loads(self.env["AIRFLOW_CONN_HUBSPOT_DEFAULT"])["password"]

    def admin(self, system: str, method: str, path: str, json: Any = None) -> requests.Response:
        """Call `/__admin/<path>` on "hubspot" or "salesforce"; raises on HTTP errors."""
        base = {"hubspot": self.hubspot_url, "salesforce": self.salesforce_url}[system]
        if base is None:
            raise RuntimeError(f"the {system} sandbox is not running")
        with requests.Session() as session:
            session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment must not override verify
            resp = session.request(method, f"{base}/__admin/{path.lstrip('/')}", json=json, verify=self.ca_bundle)
        resp.raise_for_status()
        return resp

    def stop(self, timeout: float = 10) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _flags(opts: dict[str, Any]) -> list[str]:
    args: list[str] = []
    for name, value in opts.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value not in (None, False):
            args += [flag, str(value)]
    return args


def start_sandbox(tmp_dir: str | os.PathLike[str], timeout: float = 60, **opts: Any) -> SandboxProcess:
    """Start the CLI with `--state-dir tmp_dir` plus one flag per option (contacts=10 -> --contacts 10)."""
    state = Path(tmp_dir)
    state.mkdir(parents=True, exist_ok=True)
    log_path = state / "sandbox.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "sandbox", "serve", "--state-dir", str(state), *_flags(opts)]
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log_file, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=_read_until_ready, args=(proc, lines), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines or lines[-1] != "SANDBOX_READY":
        proc.kill()
        proc.wait()
        raise RuntimeError(f"sandbox did not start within {timeout}s; log: {log_path.read_text()[-2000:]}")
    parsed = {}
    for line in lines[:-1]:
        key, _, value = line.partition("=")
        parsed[key] = shlex.split(value)[0] if value else ""
    return SandboxProcess(proc, parsed, log_path)


def _read_until_ready(proc: subprocess.Popen, lines: list[str]) -> None:
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        if "=" in line or line == "SANDBOX_READY":
            lines.append(line)
        if line == "SANDBOX_READY":
            return
