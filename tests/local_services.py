"""Real services as processes on loopback, for tests and the multi-worker proof (no pytest in here)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa


def free_port() -> int:
    """Ask the kernel for an unused loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {seconds} s")


def postgres_bindir() -> Path:
    """The newest installed PostgreSQL's binaries (Debian keeps them off PATH, under /usr/lib/postgresql)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: int(Path(path).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError(
            "PostgreSQL is not installed: run `make test` (it installs it) or apt-get install postgresql"
        )
    return Path(initdb).parent


def _pg_runner(workdir: Path) -> tuple[Path, list[str]]:
    """The binaries and the prefix that runs them: initdb refuses root, so as root the cluster belongs to
    Debian's `postgres` user (runuser) and so does its directory."""
    if os.geteuid() != 0:
        return postgres_bindir(), []
    shutil.chown(workdir, user="postgres")
    return postgres_bindir(), ["runuser", "-u", "postgres", "--"]


def start_postgres(workdir: Path, port: int, max_connections: int = 50) -> str:
    """Start the PostgreSQL cluster kept in `workdir` (initdb on first use; loopback, trust auth, fsync off, socket
    in `workdir`) on `port`; returns a psycopg 3 URL. A server still running there from before is stopped first."""
    workdir.mkdir(parents=True, exist_ok=True)
    bindir, run_as = _pg_runner(workdir)
    data = workdir / "data"

    def pg(tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*run_as, str(bindir / tool), *args], check=check, capture_output=True, timeout=60)

    try:
        if not (data / "PG_VERSION").exists():
            pg("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        elif pg("pg_ctl", "-D", str(data), "status", check=False).returncode == 0:
            pg("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        options = (
            f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections={max_connections}"
        )
        pg("pg_ctl", "-D", str(data), "-l", str(workdir / "server.log"), "-w", "-t", "30", "-o", options, "start")
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"could not start PostgreSQL from {bindir}: {exc.stderr.decode(errors='replace')}") from exc
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"


def stop_postgres(workdir: Path) -> None:
    """Stop the cluster kept in `workdir` (fast shutdown: open sessions are ended)."""
    bindir, run_as = _pg_runner(workdir)
    subprocess.run(
        [*run_as, str(bindir / "pg_ctl"), "-D", str(workdir / "data"), "-m", "fast", "-w", "stop"],
        check=True,
        capture_output=True,
        timeout=60,
    )


@contextmanager
def postgres_cluster(max_connections: int = 50) -> Iterator[str]:
    """A private, throwaway PostgreSQL cluster in a temp dir (see start_postgres); yields a psycopg 3 URL.

    The cluster is stopped and removed on exit.
    """
    workdir = Path(tempfile.mkdtemp(prefix="crm-sync-pg-"))
    try:
        url = start_postgres(workdir, free_port(), max_connections)
    except RuntimeError:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    try:
        yield url
    finally:
        stop_postgres(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


def create_database(url: str, name: str, keep_existing: bool = False, template: str | None = None) -> str:
    """Create the empty database `name` on the PostgreSQL server at `url` (a SQLAlchemy URL); returns its URL.
    With `keep_existing`, a database of that name is kept as it is; with `template`, it starts as a copy of that
    database (which nobody may be connected to)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).first()
        if not (exists and keep_existing):
            conn.execute(sa.text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    engine.dispose()
    return sa.make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, name: str) -> None:
    """Drop the database `name` (if it exists) from the PostgreSQL server at `url`, ending its sessions."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def postgres_conn_uri(database_url: str) -> str:
    """The Airflow connection URI (`postgres://...`) of a PostgreSQL database given as a SQLAlchemy URL."""
    url = sa.make_url(database_url)
    return f"postgres://{url.username}@{url.host}:{url.port}/{url.database}"


def metadata_db_env(database_url: str) -> dict[str, str]:
    """Airflow's metadata DB settings for a SQLAlchemy URL. For psycopg 3 the async engine's URL is set too:
    Airflow would derive an asyncpg one, and psycopg 3 has its own async dialect."""
    env = {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url}
    if database_url.startswith("postgresql+psycopg://"):
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = database_url.replace("+psycopg://", "+psycopg_async://", 1)
    return env


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A private redis-server on a free loopback port, no persistence; yields its URL (db 0)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: `make test` installs it (or apt-get install redis-server)")
    port = free_port()
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)]
    proc = subprocess.Popen([binary, *options], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 10, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def moto_s3_server(log_path: Path) -> Iterator[str]:
    """moto's S3-compatible server (`moto_server`, from PyPI) on a free loopback port; yields its endpoint URL."""
    port = free_port()
    binary = Path(sys.executable).with_name("moto_server")
    with log_path.open("wb") as log:
        proc = subprocess.Popen([str(binary), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    try:
        wait_for_port(port, 30, "moto_server")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def aws_connection(endpoint_url: str) -> str:
    """An Airflow `aws` connection (JSON, for AIRFLOW_CONN_...) whose S3 calls go to `endpoint_url`."""
    extra = {"endpoint_url": endpoint_url, "region_name": "us-east-1"}
    return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra})


def main(argv: list[str] | None = None) -> None:
    """The PostgreSQL helpers for shell scripts (`make airflow`): `python -m tests.local_services --help`."""
    import argparse
    import shlex

    parser = argparse.ArgumentParser(prog="python -m tests.local_services")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("postgres-start", help="start (initdb on first use) the cluster kept in DIR; prints its URL")
    start.add_argument("dir", type=Path)
    start.add_argument("--port", type=int, default=0, help="0 picks a free port")
    stop = sub.add_parser("postgres-stop", help="stop the cluster kept in DIR")
    stop.add_argument("dir", type=Path)
    database = sub.add_parser("database", help="create database NAME if missing on the server at URL")
    database.add_argument("url")
    database.add_argument("name")
    database.add_argument("--fresh", action="store_true", help="drop it first")
    database.add_argument(
        "--print",
        choices=["metadata-env", "connection"],
        required=True,
        help="Airflow's metadata-DB settings as export lines, or an Airflow connection URI",
    )
    args = parser.parse_args(argv)
    if args.command == "postgres-start":
        print(start_postgres(args.dir.resolve(), args.port or free_port()))
    elif args.command == "postgres-stop":
        stop_postgres(args.dir.resolve())
    else:
        if args.fresh:
            drop_database(args.url, args.name)
        url = create_database(args.url, args.name, keep_existing=True)
        if args.print == "connection":
            print(postgres_conn_uri(url))
        else:
            print("\n".join(f"export {key}={shlex.quote(value)}" for key, value in metadata_db_env(url).items()))


if __name__ == "__main__":
    main()
