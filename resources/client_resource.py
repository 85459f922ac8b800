"""The shape every per-system Dagster resource shares: a connection name in config (never a
secret), credentials read from the vault when a client is opened, and every client opened in a
run signed out at teardown. Each system's resource only says which secrets and how to build."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from dagster import ConfigurableResource
from pydantic import PrivateAttr

CREDENTIALS = ("client_id", "client_secret", "username", "password")


class VaultClientResource(ConfigurableResource):
    connection: str

    _clients: list = PrivateAttr(default_factory=list)

    secret_prefix: ClassVar[str] = ""  # e.g. "acu_": vault names are prefix + credential

    def build_client(self, secrets: dict[str, str]) -> Any:
        raise NotImplementedError

    def open_client(self) -> Any:
        from resources.store import SyncStore
        from resources.vault import open_vault

        store = SyncStore.open()
        try:
            vault = open_vault(store)
            secrets = {name: vault.get(self.connection, f"{self.secret_prefix}{name}") for name in CREDENTIALS}
        finally:
            store.close()
        client = self.build_client(secrets)
        self._clients.append(client)
        return client

    @contextmanager
    def session(self) -> Iterator[Any]:
        """One client (for Acumatica, one seat) for a block; signed out at the end."""
        client = self.open_client()
        try:
            yield client
        finally:
            client.close()

    def teardown_after_execution(self, context) -> None:
        while self._clients:
            self._clients.pop().close()
