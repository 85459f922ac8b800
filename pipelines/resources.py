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


class _Clients:
    """The process's clients, reused: a ServiceTitan token (the token endpoint is throttled) and an
    Acumatica session (an API-user seat) serve every asset of every run, sensor and schedule in this
    process. Each use is counted, and only a client nobody is using is ever closed: the code
    server evaluates sensors and schedules on several threads, and a run's teardown used to close a
    client another thread was in the middle of using ("the client has been closed")."""

    def __init__(self):
        self._lock = threading.Lock()
        self._clients: dict[tuple, object] = {}
        self._users: dict[tuple, int] = {}

    @contextmanager
    def use(self, key: tuple, make) -> Iterator:
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = make()
            self._users[key] = self._users.get(key, 0) + 1
        try:
            yield client
        finally:
            with self._lock:
                self._users[key] -= 1

    def close_idle(self) -> None:
        """Sign out of every client no thread is using (they are made again when next needed)."""
        with self._lock:
            idle = [k for k in self._clients if not self._users.get(k)]
            closing = [self._clients.pop(k) for k in idle]
            for k in idle:
                self._users.pop(k, None)
        for client in closing:
            try:
                client.close()
            except Exception:  # noqa: BLE001, S110 - best effort: signing out
                pass


_clients = _Clients()
atexit.register(_clients.close_idle)


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
        """End of a run: sign out of the ERPs (an Acumatica session holds a licensed API seat), except
        what another thread of this process is using right now."""
        _clients.close_idle()

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
        with _clients.use(key, lambda: ServiceTitanClient(
                base_url=conn.servicetitan.base_url, auth_url=conn.servicetitan.auth_url,
                tenant=conn.servicetitan.tenant, rate_per_second=conn.servicetitan.rate_per_second, **creds)) as client:
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
        with _clients.use(key, lambda: open_adapter(conn, vault)) as adapter:
            yield adapter
