"""Where fieldledger keeps its state: one folder (FIELDLEDGER_HOME, default ./.fieldledger).

Only paths and environment lookups live here; nothing is created on import.
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


def sim_info_path() -> Path:
    return state_home() / "sim.json"


def connections_dir() -> Path:
    return state_home() / "connections"
