"""The one Dagster resource the assets use: it opens the sync store, loads a connection's file,
and builds that connection's ServiceTitan client and ERP adapter with secrets from the vault.

Its configuration holds no secrets (Dagster shows resource config in the UI); credentials are
read from the vault at run time and registered for redaction.
"""

from __future__ import annotations

import atexit
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from mappings.connection import Connection, load_connection
from posting.adapter import ErpAdapter
from resources.redaction import install_log_redaction
from resources.store import SyncStore
from resources.vault import Vault

_stores: dict[str, SyncStore] = {}
# Clients live as long as the process: a ServiceTitan token (the token endpoint is throttled) and an
# Acumatica session (an API-user seat) are reused by every asset of every run in this process and
# released when it exits.
_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


def _close_clients() -> None:
    with _clients_lock:
        for client in _clients.values():
            try:
                client.close()
            except Exception:  # noqa: BLE001, S110 - best effort at exit
                pass
        _clients.clear()


atexit.register(_close_clients)


def _fingerprint(*values: str) -> str:
    return hashlib.sha256("\x00".join(values).encode()).hexdigest()


def shared_store(url: str | None = None) -> SyncStore:
    """One pool per process and database URL (run workers, sensors and the CLI reuse it)."""
    from resources.database import database_url

    url = url or database_url("fieldledger")
    if url not in _stores:
        _stores[url] = SyncStore.open(url, max_size=8)
    return _stores[url]


class FieldledgerResource(dg.ConfigurableResource):
    """Store, connections, clients. ``database_url`` overrides FIELDLEDGER_DATABASE_URL / embedded."""

    database_url: str | None = None

    def setup_for_execution(self, context) -> None:
        from pipelines.run_health import mark_worker

        install_log_redaction()
        mark_worker(context.instance, context.run_id)  # a dead worker's run is found and failed by its pid

    def teardown_after_execution(self, context) -> None:
        """End of a run: sign out of the ERPs (an Acumatica session holds a licensed API seat)."""
        _close_clients()

    @property
    def store(self) -> SyncStore:
        return shared_store(self.database_url)

    def vault(self) -> Vault:
        return Vault(self.store)

    def connection(self, name: str) -> Connection:
        return load_connection(name)

    @contextmanager
    def servicetitan(self, conn: Connection) -> Iterator:
        from resources.servicetitan import ServiceTitanClient

        vault = self.vault()
        names = conn.servicetitan.secrets
        creds = {k: vault.get(conn.name, names[k]) for k in ("client_id", "client_secret", "app_key")}
        key = ("servicetitan", conn.name, conn.servicetitan.base_url, _fingerprint(*creds.values()))
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = ServiceTitanClient(
                    base_url=conn.servicetitan.base_url, auth_url=conn.servicetitan.auth_url,
                    tenant=conn.servicetitan.tenant, rate_per_second=conn.servicetitan.rate_per_second, **creds)
                _clients[key] = client
        yield client

    @contextmanager
    def erp(self, conn: Connection, keep: bool = True) -> Iterator[ErpAdapter]:
        """The connection's ERP adapter, shared by the assets of a run. ``keep=False`` (sensors,
        which live in the long-running code server) signs out again right after use."""
        from posting.registry import open_adapter

        vault = self.vault()
        if not keep:
            adapter = open_adapter(conn, vault)
            try:
                yield adapter
            finally:
                adapter.close()
            return
        secrets = [vault.get(conn.name, name) for name in sorted(conn.erp.secrets.values())]
        key = ("erp", conn.name, conn.erp.base_url, _fingerprint(*secrets))
        with _clients_lock:
            adapter = _clients.get(key)
            if adapter is None:
                adapter = open_adapter(conn, vault)
                _clients[key] = adapter
        yield adapter
