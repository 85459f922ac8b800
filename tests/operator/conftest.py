"""Operator-command tests run against the pipeline tests' whole stack (real simulators over
sockets, real PostgreSQL); helpers to run the CLI in process and to make variants of a demo
connection file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.pipeline.conftest import stack  # noqa: F401 - the shared module-scoped fixture


def run_cli(*args: str, env: dict | None = None):
    """The CLI in this process (the stack's environment); stdout and stderr apart."""
    from fieldledger.cli import app

    return CliRunner().invoke(app, list(args), env=env)


@contextmanager
def connection_variant(base: str, name: str, edit=lambda text: text, secrets: bool = True,
                       skip_secrets: tuple[str, ...] = ()) -> Iterator[Path]:
    """A copy of connection ``base`` named ``name`` (file edited by ``edit``), with ``base``'s vault
    secrets copied except ``skip_secrets``; removed afterwards."""
    from fieldledger.settings import connections_dir
    from resources.store import SyncStore
    from resources.vault import Vault

    source = connections_dir() / f"{base}.yaml"
    path = connections_dir() / f"{name}.yaml"
    path.write_text(edit(source.read_text().replace(f"name: {base}", f"name: {name}", 1)))
    store = SyncStore.open()
    vault = Vault(store)
    if secrets:
        for info in vault.list(base):
            if info.name not in skip_secrets:
                vault.set(name, info.name, vault.get(base, info.name))
    try:
        yield path
    finally:
        path.unlink()
        store.close()


def verdicts(output: str) -> dict[str, str]:
    """Check name -> the whole table line, from `fieldledger ping` output (verdict first)."""
    from fieldledger.ping import ERP_CHECKS

    names = ("connection file", "vault secrets", "ServiceTitan reachable", "ServiceTitan credentials",
             "ServiceTitan tenant", "ServiceTitan business units", "ServiceTitan webhook", "ERP reachable",
             *ERP_CHECKS)
    found = {}
    for line in output.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0] in ("PASS", "FAIL", "WARN", "SKIP"):
            name = next((n for n in names if parts[1].startswith(n + "  ") or parts[1] == n), None)
            if name:
                found[name] = line
    return found


@pytest.fixture
def sim_url(stack):  # noqa: F811
    return lambda system: stack.info[system]["base_url"]
