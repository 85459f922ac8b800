"""The embedded PostgreSQL lets in only its owner, and only with its password (issue 22, break 9):
before, any local account connected as superuser over loopback TCP (pg_hba.conf ``trust``), read
the secrets table and could run ``COPY … TO PROGRAM``. Now no TCP port is open, the unix socket's
folder is the owner's alone, and every connection needs the password. Real servers, real
connections."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from resources.database import (
    DatabaseStartError,
    EmbeddedServer,
    _bin,
    _is_ready,
    _prepare_ownership,
    _run_as_owner,
    password_file,
    read_password,
    socket_dir,
    start_embedded,
    stop_embedded,
)


@pytest.fixture
def outside_pytest_tmp() -> Path:
    """A folder for a data folder the server user must traverse: pytest resets its own
    /tmp/pytest-of-<user> to 0700 whenever any pytest session starts (like tests/conftest.py)."""
    folder = Path(tempfile.mkdtemp(prefix="fl-auth-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _without_password(host: str, port: int, absent: Path, password: str = "") -> None:
    """Connect as a local account that does not hold the password would."""
    env_password = os.environ.pop("PGPASSWORD", None)
    try:
        psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", password=password,
                        passfile=str(absent), connect_timeout=5).close()
    finally:
        if env_password is not None:
            os.environ["PGPASSWORD"] = env_password


def _assert_refused(server: EmbeddedServer, tmp_path: Path) -> None:
    """On its socket: refused without the password; on loopback TCP: nothing listens."""
    socket_dir = str(server.socket_dir)
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        _without_password(socket_dir, server.port, tmp_path / "absent.pgpass")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _without_password(socket_dir, server.port, tmp_path / "absent.pgpass", password="guessed-password")
    with pytest.raises(psycopg.OperationalError, match="Connection refused"):
        _without_password("127.0.0.1", server.port, tmp_path / "absent.pgpass")


def _assert_admitted(server: EmbeddedServer) -> None:
    with psycopg.connect(server.url("postgres")) as conn:
        assert conn.pgconn.used_password
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)


def test_a_client_without_the_password_is_refused(pg_server, tmp_path):
    _assert_refused(pg_server, tmp_path)
    _assert_admitted(pg_server)
    password = read_password(pg_server.passfile)
    assert password not in pg_server.url("fieldledger")
    assert oct(pg_server.passfile.stat().st_mode & 0o777) == "0o600"
    assert oct(pg_server.socket_dir.stat().st_mode & 0o777) == "0o700"
    with psycopg.connect(pg_server.url("postgres")) as conn:
        rules = conn.execute("SELECT type, auth_method, address FROM pg_hba_file_rules").fetchall()
        assert {r[1] for r in rules} == {"scram-sha-256"}, rules
        assert {r[0] for r in rules} == {"local"}, rules
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        assert conn.execute("SHOW unix_socket_directories").fetchone() == (str(pg_server.socket_dir),)
        assert conn.execute("SHOW unix_socket_permissions").fetchone() == ("0700",)
        assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
        verifier = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'").fetchone()[0]
        assert verifier.startswith("SCRAM-SHA-256$")


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() != 0, reason="switching to another OS user needs root")
def test_another_os_user_cannot_connect_nor_read_the_password(pg_server):
    """As ``nobody``: the socket cannot be reached, nothing listens on TCP, the passfile cannot be read."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PSQL_HISTORY": "/dev/null"}
    for host in (str(pg_server.socket_dir), "127.0.0.1"):
        psql = subprocess.run([_bin("psql"), "-w", "-h", host, "-p", str(pg_server.port), "-U", "postgres",
                               "-d", "fieldledger", "-c", "SELECT count(*) FROM secrets"],
                              user="nobody", env=env, capture_output=True, text=True, timeout=30)
        assert psql.returncode != 0, psql.stdout
        assert "Permission denied" in psql.stderr or "Connection refused" in psql.stderr, psql.stderr
    read = subprocess.run(["cat", str(pg_server.passfile)], user="nobody", env=env, capture_output=True,
                          text=True, timeout=30)
    assert read.returncode != 0 and "Permission denied" in read.stderr
    with_url = subprocess.run([_bin("psql"), "-w", pg_server.url("postgres"), "-c", "SELECT 1"],
                              user="nobody", env=env, capture_output=True, text=True, timeout=30)
    assert with_url.returncode != 0  # knowing the URL is not enough: it names a file nobody can read


def _old_trust_folder(pgdata: Path) -> int:
    """A data folder as fieldledger made it before: initdb --auth=trust, no password, no passfile."""
    import socket

    pgdata.mkdir(parents=True)
    _prepare_ownership(pgdata)
    _run_as_owner([_bin("initdb"), "-D", str(pgdata), "--auth=trust", "-U", "postgres", "--encoding=UTF8",
                   "--no-sync"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(pgdata / "postgresql.auto.conf", "a") as conf:
        conf.write(f"\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n")
    (pgdata.parent / f"{pgdata.name}.port").write_text(str(port))
    return port


def _pg_ctl(pgdata: Path, *args: str) -> None:
    _run_as_owner([_bin("pg_ctl"), "-D", str(pgdata), "-l", str(pgdata / "server.log"), "-w", *args], timeout=90)


@pytest.mark.parametrize("running", [True, False], ids=["server-running", "server-stopped"])
def test_a_trust_data_folder_is_upgraded_in_place(tmp_path, outside_pytest_tmp, running):
    pgdata = outside_pytest_tmp / "pg"
    port = _old_trust_folder(pgdata)
    _pg_ctl(pgdata, "start")
    try:
        _without_password("127.0.0.1", port, tmp_path / "absent.pgpass")  # the break: anyone gets in, over TCP
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE fieldledger")
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="fieldledger") as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('before the upgrade')")
        if not running:
            _pg_ctl(pgdata, "stop")
        assert not password_file(pgdata).exists()

        server = start_embedded(pgdata)

        assert server.port == port
        assert oct(password_file(pgdata).stat().st_mode & 0o777) == "0o600"
        _assert_refused(server, tmp_path)  # on its socket now, its TCP port closed
        _assert_admitted(server)
        with psycopg.connect(server.url("fieldledger")) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("before the upgrade",)]
        stop_embedded(pgdata)
        again = start_embedded(pgdata)  # after a restart the password holds from the files alone
        _assert_refused(again, tmp_path)
        _assert_admitted(again)
    finally:
        stop_embedded(pgdata, mode="immediate")


def test_a_lost_password_file_is_a_clear_error_without_any_password(pg_server, tmp_path):
    impostor = tmp_path / "pg-copy"
    password_file(impostor).write_text("*:*:*:postgres:not-the-real-password\n")
    password_file(impostor).chmod(0o600)
    socket_dir(impostor).symlink_to(pg_server.socket_dir)  # the real server, a wrong password file
    with pytest.raises(DatabaseStartError) as caught:
        _is_ready(EmbeddedServer(impostor, pg_server.port))
    message = str(caught.value)
    assert "refuses the password" in message and "pg_hba.conf" in message
    assert "not-the-real-password" not in message
    assert read_password(pg_server.passfile) not in message


def test_printed_urls_and_dagster_url_carry_no_password(tmp_path, outside_pytest_tmp, monkeypatch):
    """`fieldledger db start` prints a URL that works and holds no secret; Dagster's URL
    (psycopg2 under SQLAlchemy) connects through the same password file."""
    home = outside_pytest_tmp / "home"
    env = {**os.environ, "FIELDLEDGER_HOME": str(home)}
    env.pop("FIELDLEDGER_DATABASE_URL", None)
    env.pop("FIELDLEDGER_DAGSTER_DATABASE_URL", None)
    try:
        started = subprocess.run([sys.executable, "-m", "fieldledger.cli", "db", "start"], env=env,
                                 capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stderr[-2000:]
        passfile = home / "pg.pgpass"
        assert passfile.parent == home and (home / "pg").is_dir()  # kept in the state folder
        password = read_password(passfile)
        assert password not in started.stdout + started.stderr
        url = started.stdout.strip().splitlines()[-1]
        with psycopg.connect(url) as conn:
            assert conn.pgconn.used_password

        monkeypatch.setenv("FIELDLEDGER_HOME", str(home))
        monkeypatch.delenv("FIELDLEDGER_DATABASE_URL", raising=False)
        monkeypatch.delenv("FIELDLEDGER_DAGSTER_DATABASE_URL", raising=False)
        import sqlalchemy

        from fieldledger.instance import dagster_pg_url

        dagster_url = dagster_pg_url()
        assert dagster_url.startswith("postgresql+psycopg2://") and password not in dagster_url
        engine = sqlalchemy.create_engine(dagster_url, poolclass=sqlalchemy.pool.NullPool)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_database()").scalar() == "dagster"
        bare = sqlalchemy.create_engine(dagster_url.split("?")[0] + f"?passfile={tmp_path / 'absent'}",
                                        poolclass=sqlalchemy.pool.NullPool)
        with pytest.raises(sqlalchemy.exc.OperationalError), bare.connect():
            pass
    finally:
        stop_embedded(home / "pg", mode="immediate")


def test_redaction_masks_database_passwords(pg_server):
    from resources.redaction import redact

    password = read_password(pg_server.passfile)  # reading it registers it
    assert password not in redact(f"could not connect with {password}")
    managed = redact("FIELDLEDGER_DATABASE_URL=postgresql://app:s3cr3t-Value@db.example.com:5432/fl failed")
    assert "s3cr3t-Value" not in managed and "app:***@db.example.com" in managed
