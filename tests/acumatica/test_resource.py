"""The Dagster resource: non-secret config, secrets from the vault, one seat per session that is
released when the block ends."""

from __future__ import annotations

from cryptography.fernet import Fernet

from resources.acumatica import AcumaticaResource


def test_resource_reads_secrets_from_the_vault_and_signs_out(sim, store, database_url, monkeypatch):
    from resources.vault import Vault

    monkeypatch.setenv("FIELDLEDGER_DATABASE_URL", database_url)
    monkeypatch.setenv("FIELDLEDGER_MASTER_KEY", Fernet.generate_key().decode())
    vault = Vault(store)
    for name in ("client_id", "client_secret", "username", "password"):
        vault.set("cascade-hvac", f"acu_{name}", sim.info[name])
    resource = AcumaticaResource(connection="cascade-hvac", base_url=sim.base_url, tenant=sim.info["tenant"])
    config_text = repr(resource.model_dump())
    assert sim.info["password"] not in config_text and sim.info["client_secret"] not in config_text
    with resource.session() as client:
        assert [b.BranchID for b in client.list_branches()] == ["SEATTLE", "TACOMA", "BELLEVUE"]
        assert sim.seats()["in_use"] == 1
    assert sim.seats()["in_use"] == 0
