"""The Dagster resource: config holds no secrets; the four credentials come from the vault (real
embedded PostgreSQL) and the opened client signs in to the simulator."""

from __future__ import annotations

from cryptography.fernet import Fernet

import resources.vault as vault_module
from resources.vantagepoint import VantagepointResource
from resources.vault import Vault


def test_resource_reads_secrets_from_the_vault(vp, store, monkeypatch):
    vault = Vault(store, keys=[Fernet.generate_key()])
    for name in ("client_id", "client_secret", "username", "password"):
        vault.set("summit-mechanical", f"vp_{name}", vp.info[name])
    monkeypatch.setattr(vault_module, "open_vault", lambda store=None: vault)

    resource = VantagepointResource(connection="summit-mechanical", base_url=vp.info["base_url"],
                                    database=vp.info["database"], rate_per_second=50)
    config = resource.model_dump()
    assert set(config) == {"connection", "base_url", "database", "rate_per_second", "timeout_seconds",
                           "ledger_paging", "file_grouping"}
    assert not any(vp.info[k] in str(config) for k in ("client_secret", "password"))
    with resource.session() as client:
        assert len(client.list_organizations()) == 3
    assert vp.stats()["tokens"]["password_grants"] == 1
