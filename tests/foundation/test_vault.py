"""The credential vault: ciphertext only in the database, rotation, clear key errors."""

from __future__ import annotations

import stat

import pytest
from cryptography.fernet import Fernet

from resources.vault import MissingSecretError, Vault, VaultKeyError, create_key_file, load_keys

PLAINTEXT = "s3cr3t-Value-that-must-never-leak-9f1c"


@pytest.fixture
def key_file(tmp_path, monkeypatch):
    monkeypatch.delenv("FIELDLEDGER_MASTER_KEY", raising=False)
    return create_key_file(tmp_path / "master.key")


def test_key_file_is_private(key_file):
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(load_keys(key_file)) == 1


def test_database_never_holds_plaintext(store, key_file):
    vault = Vault(store, key_path=key_file)
    vault.set("acme", "st_client_secret", PLAINTEXT)
    assert vault.get("acme", "st_client_secret") == PLAINTEXT
    with store.transaction() as conn:
        conn.execute("CHECKPOINT")
        path = conn.execute("SELECT pg_relation_filepath('secrets') AS p").fetchone()["p"]
        raw_file = bytes(conn.execute("SELECT pg_read_binary_file(%s) AS b", (path,)).fetchone()["b"])
        column = b"".join(bytes(r["ciphertext"]) for r in conn.execute("SELECT ciphertext FROM secrets"))
        dump = conn.execute("SELECT string_agg(s::text, '|') AS t FROM secrets s").fetchone()["t"]
    assert raw_file, "the table file should have been read"
    for blob in (raw_file, column, dump.encode()):
        assert PLAINTEXT.encode() not in blob
    assert [(s.connection, s.name) for s in vault.list()] == [("acme", "st_client_secret")]
    assert PLAINTEXT not in repr(vault.list())


def test_rotation_keeps_old_secrets_readable(store, key_file):
    vault = Vault(store, key_path=key_file)
    vault.set("acme", "a", PLAINTEXT)
    vault.set("acme", "b", "another-secret-value")
    old_key = load_keys(key_file)[0]
    before = store.get_secret("acme", "a")
    assert vault.rotate_key() == 2
    new_keys = load_keys(key_file)
    assert new_keys != [old_key] and len(new_keys) == 1
    assert store.get_secret("acme", "a") != before
    reopened = Vault(store, key_path=key_file)
    assert reopened.get("acme", "a") == PLAINTEXT
    assert reopened.get("acme", "b") == "another-secret-value"
    with pytest.raises(VaultKeyError):
        Vault(store, keys=[old_key]).get("acme", "a")


def test_rotation_with_environment_keys(store, monkeypatch):
    old = Fernet.generate_key().decode()
    monkeypatch.setenv("FIELDLEDGER_MASTER_KEY", old)
    Vault(store).set("acme", "a", PLAINTEXT)
    with pytest.raises(VaultKeyError, match="NEWKEY,OLDKEY"):
        Vault(store).rotate_key()
    new = Fernet.generate_key().decode()
    monkeypatch.setenv("FIELDLEDGER_MASTER_KEY", f"{new},{old}")
    assert Vault(store).rotate_key() == 1
    monkeypatch.setenv("FIELDLEDGER_MASTER_KEY", new)
    assert Vault(store).get("acme", "a") == PLAINTEXT


def test_wrong_key_gives_a_clear_error(store, monkeypatch):
    monkeypatch.setenv("FIELDLEDGER_MASTER_KEY", Fernet.generate_key().decode())
    Vault(store).set("acme", "st_app_key", PLAINTEXT)
    monkeypatch.setenv("FIELDLEDGER_MASTER_KEY", Fernet.generate_key().decode())
    with pytest.raises(VaultKeyError) as err:
        Vault(store).get("acme", "st_app_key")
    message = str(err.value)
    assert "different key" in message and "fieldledger secrets set acme st_app_key" in message
    assert PLAINTEXT not in message


def test_missing_key_and_missing_secret(store, tmp_path, monkeypatch):
    monkeypatch.delenv("FIELDLEDGER_MASTER_KEY", raising=False)
    with pytest.raises(VaultKeyError, match="fieldledger init"):
        load_keys(tmp_path / "nope.key")
    monkeypatch.setenv("FIELDLEDGER_MASTER_KEY", "not-a-key")
    with pytest.raises(VaultKeyError, match="not a valid Fernet key"):
        Vault(store)
    monkeypatch.setenv("FIELDLEDGER_MASTER_KEY", Fernet.generate_key().decode())
    with pytest.raises(MissingSecretError, match="fieldledger secrets set acme vp_password"):
        Vault(store).get("acme", "vp_password")


def test_world_readable_key_file_is_refused(key_file):
    key_file.chmod(0o644)
    with pytest.raises(VaultKeyError, match="chmod 600"):
        load_keys(key_file)
