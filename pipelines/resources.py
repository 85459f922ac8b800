"""The one Dagster resource the assets use: it opens the sync store, loads a connection's file,
and builds that connection's ServiceTitan client and ERP adapter with secrets from the vault.

Its configuration holds no secrets (Dagster shows resource config in the UI); credentials are
read from the vault at run time and registered for redaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from mappings.connection import Connection, load_connection
from posting.adapter import ErpAdapter
from resources.redaction import install_log_redaction
from resources.store import SyncStore
from resources.vault import Vault

_stores: dict[str, SyncStore] = {}


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
        install_log_redaction()

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
        client = ServiceTitanClient(
            base_url=conn.servicetitan.base_url,
            auth_url=conn.servicetitan.auth_url,
            tenant=conn.servicetitan.tenant,
            client_id=vault.get(conn.name, names["client_id"]),
            client_secret=vault.get(conn.name, names["client_secret"]),
            app_key=vault.get(conn.name, names["app_key"]),
            rate_per_second=conn.servicetitan.rate_per_second,
        )
        try:
            yield client
        finally:
            client.close()

    @contextmanager
    def erp(self, conn: Connection) -> Iterator[ErpAdapter]:
        from posting.registry import open_adapter

        adapter = open_adapter(conn, self.vault())
        try:
            yield adapter
        finally:
            adapter.close()
