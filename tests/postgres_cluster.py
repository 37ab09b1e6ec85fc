"""A private, throwaway PostgreSQL cluster on loopback, for the tests (fixture `postgres_url`) and benchmarks."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

INSTALL_HINT = "PostgreSQL is not installed: run `make test` (it installs it) or apt-get install postgresql"


class PostgresUnavailable(RuntimeError):
    """The binaries are missing or the cluster did not start."""


def postgres_bindir() -> Path:
    """The newest installed PostgreSQL's binaries (Debian keeps them off PATH, under /usr/lib/postgresql)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(Path(path).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise PostgresUnavailable(INSTALL_HINT)
    return Path(initdb).parent


def free_port() -> int:
    """Ask the kernel for an unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def private_postgres() -> Iterator[str]:
    """Start a cluster (initdb into a temp dir, trust auth, socket in that dir); yield its SQLAlchemy URL.

    initdb refuses to run as root, so as root the cluster belongs to Debian's `postgres` user (runuser).
    The cluster is stopped and its directory removed on exit. fsync is off: throwaway data only.
    """
    bindir = postgres_bindir()
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    workdir = Path(tempfile.mkdtemp(prefix="crm-sync-pg-"))
    if run_as:
        shutil.chown(workdir, user="postgres")
    data, port = workdir / "data", free_port()

    def pg(tool: str, *args: str) -> None:
        subprocess.run([*run_as, str(bindir / tool), *args], check=True, capture_output=True, timeout=60)

    try:
        pg("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        options = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50"
        pg("pg_ctl", "-D", str(data), "-l", str(workdir / "server.log"), "-w", "-t", "30", "-o", options, "start")
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        detail = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else str(exc)
        raise PostgresUnavailable(f"could not start PostgreSQL from {bindir}: {detail}") from exc
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        pg("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(workdir, ignore_errors=True)
