"""Where fieldledger keeps its state: one folder (FIELDLEDGER_HOME, default ./.fieldledger).

Paths, environment lookups and the one way a private (0600) file is written; nothing is created
on import. The state folder holds the secrets of this installation side by side, each readable by
its owner only: ``master.key`` (the vault's key) and ``pg.pgpass`` (the embedded PostgreSQL's
password, see resources/database.py).
"""

from __future__ import annotations

import os
from pathlib import Path


def state_home() -> Path:
    """The state folder: embedded PostgreSQL data, master key file, connection files, info files."""
    return Path(os.environ.get("FIELDLEDGER_HOME", ".fieldledger")).resolve()


def ensure_state_home() -> Path:
    home = state_home()
    home.mkdir(parents=True, exist_ok=True)
    return home


def database_url_from_env() -> str | None:
    """A managed PostgreSQL for production; None means 'start the embedded server'."""
    return os.environ.get("FIELDLEDGER_DATABASE_URL") or None


def write_private_file(path: Path, text: str) -> None:
    """Write ``path`` atomically, readable by its owner only (0600) from the first byte: the new
    content goes to a fresh temporary file created 0600, then replaces the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # a leftover could carry wider permissions
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def sim_info_path() -> Path:
    return state_home() / "sim.json"


def connections_dir() -> Path:
    return state_home() / "connections"
