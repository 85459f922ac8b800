"""Shared fixtures: one throwaway embedded PostgreSQL per test session (a real server), a migrated
template database, and a fresh database per test cloned from it."""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

import psycopg
import pytest

_counter = itertools.count()


@pytest.fixture(scope="session")
def state_home(tmp_path_factory) -> Path:
    home = Path(tempfile.mkdtemp(prefix="fl-home-"))
    os.environ["FIELDLEDGER_HOME"] = str(home)
    os.environ.pop("FIELDLEDGER_DATABASE_URL", None)
    os.environ.pop("FIELDLEDGER_MASTER_KEY", None)
    return home


@pytest.fixture(scope="session")
def pg_server(state_home):
    from resources.database import start_embedded, stop_embedded

    pgdata = state_home / "pg-test"
    server = start_embedded(pgdata)
    yield server
    stop_embedded(pgdata, mode="immediate")
    # A CLI command run with no database URL starts the state folder's own server (<home>/pg),
    # as it would for a user; it must not outlive the session either.
    stop_embedded(state_home / "pg", mode="immediate")


@pytest.fixture(scope="session")
def template_db(pg_server) -> str:
    """A database with the sync store schema, used as the template for each test's database."""
    from resources.store import SyncStore

    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "fl_template"')
        conn.execute('CREATE DATABASE "fl_template"')
    with SyncStore.open(pg_server.url("fl_template")):
        pass
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'fl_template'")
    return "fl_template"


@pytest.fixture
def database_url(pg_server, template_db) -> str:
    """URL of a fresh, migrated database for this test."""
    name = f"t_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    return pg_server.url(name)


@pytest.fixture
def empty_database_url(pg_server) -> str:
    """URL of a fresh database with no schema at all (for migration tests)."""
    name = f"e_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg_server.url(name)


@pytest.fixture
def store(database_url):
    from resources.store import SyncStore

    s = SyncStore.open(database_url)
    yield s
    s.close()


def pytest_collection_modifyitems(config, items):
    """Files holding slow end-to-end tests run first. Each xdist worker takes whole files, so a long
    file picked up last keeps one worker busy while the other idles; order within a file is kept."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
