"""A whole fieldledger stack for pipeline tests: the three simulators on loopback ports, a fresh
sync-store database and Dagster database on the session's real PostgreSQL, the demo connections
set up from the simulators' info file (files, vault secrets, webhook registration)."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet

_n = itertools.count()


@dataclass
class Stack:
    info: dict
    home: Path
    store: object
    running: object

    def sim(self, name: str):
        return self.running.served[name]


def _fresh_db(pg_server, template: str | None) -> str:
    name = f"p_{os.getpid()}_{next(_n)}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return pg_server.url(name)


@pytest.fixture(scope="module")
def stack(pg_server, template_db, tmp_path_factory) -> Iterator[Stack]:
    from fieldledger import settings
    from fieldledger.demo_setup import init_demo
    from resources.store import SyncStore
    from resources.vault import Vault
    from simulators.launcher import start_all
    from simulators.runtime import SimOptions

    home = tmp_path_factory.mktemp("stack-home")
    saved = dict(os.environ)
    os.environ.update({
        "FIELDLEDGER_HOME": str(home),
        "FIELDLEDGER_DATABASE_URL": _fresh_db(pg_server, template_db),
        "FIELDLEDGER_DAGSTER_DATABASE_URL": _fresh_db(pg_server, None),
        "FIELDLEDGER_MASTER_KEY": Fernet.generate_key().decode(),
        "DAGSTER_HOME": str(home / "dagster"),
    })
    options = SimOptions(seed=7, options={"tier": "trial", "release_seconds": 0.05})
    running = start_all(options, port_base=0, info_file=settings.sim_info_path())
    store = SyncStore.open(os.environ["FIELDLEDGER_DATABASE_URL"])
    init_demo(settings.sim_info_path(), Vault(store), receiver_url="http://127.0.0.1:9")
    try:
        yield Stack(json.loads(settings.sim_info_path().read_text()), home, store, running)
    finally:
        from pipelines.resources import _clients, _stores

        _clients.close_idle()  # sign out of the ERPs while they are still up
        store.close()
        running.stop()

        for s in _stores.values():
            s.close()
        _stores.clear()
        os.environ.clear()
        os.environ.update(saved)
