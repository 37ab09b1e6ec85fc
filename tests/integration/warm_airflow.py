"""`airflow dags test` forked from a warm process: Airflow's own CLI, DAG parse and in-process execution API, run
after Airflow's imports and the execution API's route generation were paid once (about 9 s of CPU a run).

`python -m tests.integration.warm_airflow` imports Airflow's CLI and the libraries the DAG's tasks use, builds the
in-process execution API (`in_process_api_server()` is cached per process), then reads one JSON request a line on
stdin and forks a child per request: the child takes the run's environment, writes its output to the request's
log file and runs `airflow <args>` through Airflow's `main()`; the server answers `{"pid": ...}` at the fork and
`{"returncode": ...}` when the child has ended. Airflow disposes its connection pool in a forked child itself.

The project's modules (`crm_sync`, `include`, the DAG files) are not imported before the fork, so what they read
at import (the `[crm_sync]` settings) comes from each run's environment. Airflow reads some of its own settings at
import, so `WarmAirflow.serves` sends a run that sets any `AIRFLOW__` key outside `[crm_sync]` to a plain process.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

PROJECT_PACKAGES = ("crm_sync", "include", "dags", "sandbox")
OWN_SETTINGS_PREFIX = "AIRFLOW__CRM_SYNC__"
READY = "ready"


class WarmAirflow:
    """A warm server for one Airflow project's environment; one run at a time."""

    def __init__(self, env: Mapping[str, str], cwd: Path, log: Path) -> None:
        self.base_env = dict(env)
        self._lock = threading.Lock()
        self._log = log.open("ab")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.warm_airflow"],
            env=self.base_env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self._expect(READY, timeout=300)

    def serves(self, env: Mapping[str, str]) -> bool:
        """Whether a run with `env` may fork from this server: Airflow's own settings as the server read them."""
        changed = {key for key in set(env) | set(self.base_env) if env.get(key) != self.base_env.get(key)}
        return not any(key.startswith("AIRFLOW__") and not key.startswith(OWN_SETTINGS_PREFIX) for key in changed)

    def run(self, args: list[str], env: Mapping[str, str], log: Path, timeout: float, on_start: Any) -> int:
        """`airflow <args>` in a forked child; `on_start(pid)` returns a context entered while it runs."""
        with self._lock:
            self._send({"args": args, "env": dict(env), "log": str(log)})
            pid = int(self._expect("pid", timeout=60))
            with on_start(pid):
                try:
                    return int(self._expect("returncode", timeout=timeout))
                except subprocess.TimeoutExpired:
                    os.kill(pid, signal.SIGKILL)
                    self._expect("returncode", timeout=60)
                    raise

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        self._log.close()

    def _send(self, request: dict[str, Any]) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()

    def _expect(self, key: str, timeout: float) -> Any:
        stdout: IO[str] | None = self._proc.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        if not ready:
            raise subprocess.TimeoutExpired(["warm_airflow", key], timeout)
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"the warm Airflow server ended (exit {self._proc.wait()}); see {self._log.name}")
        return json.loads(line)[key]


def _warm() -> None:
    """Import what every run imports, and build the in-process execution API once."""
    import hubspot  # noqa: F401
    import pandas  # noqa: F401
    import redis  # noqa: F401
    import simple_salesforce  # noqa: F401
    from airflow.__main__ import main  # noqa: F401
    from airflow.cli import cli_parser
    from airflow.cli.commands import dag_command  # noqa: F401
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    cli_parser.get_parser()
    app = in_process_api_server().app
    app._cadwyn_initialize()  # what the app's first request would do, in each run
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in PROJECT_PACKAGES)
    if loaded:
        raise RuntimeError(f"project modules imported before the fork: {loaded}")


def _child(request: dict[str, Any]) -> None:
    """Run one request in this forked child; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        os.environ.clear()
        os.environ.update(request["env"])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        out = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        sys.argv = ["airflow", *request["args"]]
        from airflow.__main__ import main

        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _reply(stdout: IO[str], message: dict[str, Any]) -> None:
    stdout.write(json.dumps(message) + "\n")
    stdout.flush()


def serve() -> None:
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # Airflow's import-time output goes to the server's log, never into the replies
    _warm()
    _reply(replies, {READY: True})
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            _child(json.loads(line))
        _reply(replies, {"pid": pid})
        _, status = os.waitpid(pid, 0)
        _reply(replies, {"returncode": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    serve()
