"""The Dagster instance fieldledger runs on: DAGSTER_HOME under the state folder, storage on the
same PostgreSQL server as the sync store (its `dagster` database), config from dagster.yaml."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from fieldledger.settings import ensure_state_home

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCATION_NAME = "fieldledger"  # workspace.yaml's code location


def dagster_pg_url() -> str:
    from resources.database import database_url

    url = os.environ.get("FIELDLEDGER_DAGSTER_DATABASE_URL") or database_url("dagster")
    # dagster-postgres needs the psycopg2 driver named explicitly (psycopg 3 is also installed).
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def prepare_environment() -> dict[str, str]:
    """Set (and return) the environment every Dagster process of fieldledger needs."""
    home = Path(os.environ.get("DAGSTER_HOME") or ensure_state_home() / "dagster")
    home.mkdir(parents=True, exist_ok=True)
    source = PROJECT_ROOT / "dagster.yaml"
    target = home / "dagster.yaml"
    if not target.exists() or target.read_text() != source.read_text():
        shutil.copyfile(source, target)
    env = {
        "DAGSTER_HOME": str(home),
        "FIELDLEDGER_DAGSTER_PG_URL": dagster_pg_url(),
        "FIELDLEDGER_HOME": str(ensure_state_home()),
    }
    os.environ.update(env)
    return env


def get_instance():
    import dagster as dg

    prepare_environment()
    return dg.DagsterInstance.get()


def ensure_pools(instance) -> list[str]:
    """Create every pool the assets name (at its default limit) once, before any run: two runs
    creating one pool at the same moment fail one of them on the pool's unique key."""
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    pools = set().union(*[graph.get(key).pools or set() for key in graph.get_all_asset_keys()])
    storage = instance.event_log_storage
    missing = sorted(pools - storage.get_concurrency_keys())
    for pool in missing:
        storage.initialize_concurrency_limit_to_default(pool)
    return missing
