"""The credential vault: connection secrets encrypted at rest with Fernet (MultiFernet, so the
master key can be rotated), stored as ciphertext in the sync store.

The master key comes from FIELDLEDGER_MASTER_KEY (one key, or several separated by commas, newest
first) or from ``master.key`` in the state folder (mode 0600, one key per line, newest first).
Values never appear in logs, exceptions or listings: only names and change times do.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from fieldledger.settings import state_home
from resources.redaction import register_secret
from resources.store import SyncStore

KEY_ENV = "FIELDLEDGER_MASTER_KEY"
PREVIOUS_SUFFIX = "_previous"  # a rotated secret's former value, still valid until the rotation ends


class VaultError(RuntimeError):
    """A vault problem a person must fix; the message says what to do."""


class VaultKeyError(VaultError):
    pass


class MissingSecretError(VaultError):
    pass


@dataclass(frozen=True)
class SecretInfo:
    connection: str
    name: str
    updated_at: datetime


def key_file_path() -> Path:
    return state_home() / "master.key"


def create_key_file(path: Path | None = None) -> Path:
    """Create the master key file (0600) if it does not exist; returns its path."""
    path = path or key_file_path()
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(Fernet.generate_key().decode() + "\n")
    return path


def load_keys(path: Path | None = None) -> list[bytes]:
    """The master keys, newest first, from the environment or the key file."""
    env = os.environ.get(KEY_ENV, "").strip()
    if env:
        return [k.strip().encode() for k in env.split(",") if k.strip()]
    path = path or key_file_path()
    if not path.exists():
        raise VaultKeyError(
            f"No master key: {KEY_ENV} is not set and {path} does not exist. "
            "Run `fieldledger init` to create a key file, or set FIELDLEDGER_MASTER_KEY to the key "
            "this installation's secrets were encrypted with."
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise VaultKeyError(f"{path} is readable by other users (mode {oct(mode)}); run `chmod 600 {path}`.")
    return [line.strip().encode() for line in path.read_text().splitlines() if line.strip()]


def _fernet(keys: list[bytes]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except (ValueError, TypeError):
        raise VaultKeyError(
            "The master key is not a valid Fernet key (32 url-safe base64 bytes). "
            "Check FIELDLEDGER_MASTER_KEY or the key file; generate one with `fieldledger init`."
        ) from None


class Vault:
    def __init__(self, store: SyncStore, keys: list[bytes] | None = None, key_path: Path | None = None):
        self.store = store
        self._key_path = key_path
        self._keys = keys if keys is not None else load_keys(key_path)
        self._fernet = _fernet(self._keys)

    def set(self, connection: str, name: str, value: str) -> None:
        if not value:
            raise VaultError(f"refusing to store an empty value for secret {name!r} of connection {connection!r}")
        register_secret(value)
        self.store.put_secret(connection, name, self._fernet.encrypt(value.encode()))

    def get(self, connection: str, name: str) -> str:
        ciphertext = self.store.get_secret(connection, name)
        if ciphertext is None:
            raise MissingSecretError(
                f"Connection {connection!r} has no secret named {name!r}. "
                f"Store it with `fieldledger secrets set {connection} {name}` (the value is read from stdin)."
            )
        try:
            value = self._fernet.decrypt(ciphertext).decode()
        except InvalidToken:
            raise VaultKeyError(
                f"The master key cannot decrypt secret {name!r} of connection {connection!r}: it was encrypted "
                "with a different key. Set FIELDLEDGER_MASTER_KEY (or restore master.key) to the key used when "
                f"it was stored, or store the secret again with `fieldledger secrets set {connection} {name}`."
            ) from None
        register_secret(value)
        return value

    def rotate(self, connection: str, name: str, value: str) -> bool:
        """Make ``value`` the secret ``name`` while its former value stays readable as
        ``name_previous`` (both valid until ``finish_rotation``): a sender that still uses the old
        key or URL is not refused meanwhile. True when there was a former value to keep."""
        try:
            former = self.get(connection, name)
        except MissingSecretError:
            former = None
        if former is not None:
            self.set(connection, name + PREVIOUS_SUFFIX, former)
        self.set(connection, name, value)
        return former is not None

    def finish_rotation(self, connection: str, name: str) -> bool:
        """Forget ``name_previous``: only the current value is valid from now on."""
        return self.delete(connection, name + PREVIOUS_SUFFIX)

    def delete(self, connection: str, name: str) -> bool:
        with self.store.transaction() as conn:  # the one delete the vault needs; ciphertext never read
            return conn.execute("DELETE FROM secrets WHERE connection = %s AND name = %s",
                                (connection, name)).rowcount > 0

    def list(self, connection: str | None = None) -> list[SecretInfo]:
        return [SecretInfo(r["connection"], r["name"], r["updated_at"]) for r in self.store.secret_rows(connection)]

    def rotate_key(self) -> int:
        """Make a new master key the primary one and re-encrypt every secret with it.

        With a key file: the new key is written first (old ones kept) so a crash mid-way loses
        nothing; after re-encryption the old keys are dropped. With FIELDLEDGER_MASTER_KEY the
        environment cannot be rewritten: put the new key first in the variable (``new,old``),
        run this, then remove the old one."""
        from_env = bool(os.environ.get(KEY_ENV, "").strip())
        if from_env:
            keys = self._keys
            if len(keys) < 2:
                raise VaultKeyError(
                    f"To rotate with {KEY_ENV}, set it to 'NEWKEY,OLDKEY' (generate NEWKEY with "
                    "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`) "
                    "and run rotate-key again; afterwards keep only NEWKEY."
                )
        else:
            path = self._key_path or key_file_path()
            keys = [Fernet.generate_key(), *self._keys]
            _write_keys(path, keys)
        fernet = _fernet(keys)
        rows = self.store.secret_rows()
        try:
            rotated = [(r["connection"], r["name"], fernet.rotate(bytes(r["ciphertext"]))) for r in rows]
        except InvalidToken:
            raise VaultKeyError("Some secrets cannot be decrypted with the current keys; nothing was rotated.") from None
        count = self.store.replace_secrets(rotated)
        if not from_env:
            _write_keys(self._key_path or key_file_path(), keys[:1])
            keys = keys[:1]
        self._keys = keys
        self._fernet = _fernet(keys)
        return count


def _write_keys(path: Path, keys: list[bytes]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(k.decode() + "\n" for k in keys))
    os.replace(tmp, path)


def open_vault(store: SyncStore | None = None) -> Vault:
    return Vault(store or SyncStore.open())
