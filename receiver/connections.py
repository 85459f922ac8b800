"""Per-connection webhook settings for the receiver: the signing secret (the vault secret the
connection file names, ``st_webhook_secret`` by default), the signature header and encoding (the
connection file), and whether the connection is paused (sync store). Looked up behind short caches
so changes apply within seconds.

Only these keys are read from ``<FIELDLEDGER_HOME>/connections/<connection>.yaml``, leniently, so
that a mapping mistake elsewhere in the file never stops webhooks from being stored::

    servicetitan:
      secrets:
        webhook_secret: st_webhook_secret             # default vault name
      webhook:
        signature_header: X-ServiceTitan-Signature   # default
        signature_encoding: base64                    # or hex

A connection is unknown when it has neither a webhook secret in the vault nor a connection file.
Secrets are never logged; the vault registers each one it returns for redaction.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fieldledger.settings import connections_dir
from receiver.signature import DEFAULT_ENCODING, DEFAULT_HEADER, ENCODINGS
from resources.store import SyncStore
from resources.vault import MissingSecretError, Vault

SECRET_NAME = "st_webhook_secret"
DEFAULT_TTL_SECONDS = 3.0
CONNECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_HEADER_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
MISS = object()  # cache sentinel: nothing fresh cached


class ConnectionFileError(ValueError):
    """A connection file the receiver cannot use; the message names the file and the fix."""


@dataclass(frozen=True)
class WebhookSettings:
    secret: str | None  # None: the connection exists but has no webhook secret stored yet
    header: str = DEFAULT_HEADER
    encoding: str = DEFAULT_ENCODING
    secret_name: str = SECRET_NAME  # the vault name, for messages

    def __repr__(self) -> str:  # never show the secret
        return (f"WebhookSettings(secret={'set' if self.secret else None}, header={self.header!r}, "
                f"encoding={self.encoding!r}, secret_name={self.secret_name!r})")


def connection_file(connection: str) -> Path:
    return connections_dir() / f"{connection}.yaml"


def _signature_options(path: Path) -> dict[str, str]:
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConnectionFileError(f"cannot read connection file {path}: {exc.__class__.__name__}; fix its YAML") from None
    servicetitan: Any = ((document.get("servicetitan") or {}) if isinstance(document, dict) else {})
    servicetitan = servicetitan if isinstance(servicetitan, dict) else {}
    secrets = servicetitan.get("secrets") if isinstance(servicetitan.get("secrets"), dict) else {}
    secret_name = str(secrets.get("webhook_secret") or SECRET_NAME)
    webhook = servicetitan.get("webhook")
    webhook = webhook if isinstance(webhook, dict) else {}
    header = str(webhook.get("signature_header") or DEFAULT_HEADER)
    encoding = str(webhook.get("signature_encoding") or DEFAULT_ENCODING).lower()
    if not _HEADER_TOKEN.match(header):
        raise ConnectionFileError(f"{path}: servicetitan.webhook.signature_header {header!r} is not a valid header name")
    if encoding not in ENCODINGS:
        raise ConnectionFileError(
            f"{path}: servicetitan.webhook.signature_encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}"
        )
    return {"header": header, "encoding": encoding, "secret_name": secret_name}


_default_vault: Vault | None = None
_default_vault_lock = threading.Lock()


def _vault() -> Vault:
    global _default_vault
    with _default_vault_lock:
        if _default_vault is None:
            from resources.vault import open_vault

            _default_vault = open_vault()
        return _default_vault


def webhook_settings(connection: str, vault: Vault | None = None) -> WebhookSettings | None:
    """The connection's webhook settings, read now (uncached); None for an unknown connection.
    Without ``vault``, the configured sync store's vault is opened once and reused."""
    if not CONNECTION_NAME.match(connection):
        return None
    vault = vault or _vault()
    path = connection_file(connection)
    options = _signature_options(path) if path.is_file() else {}
    try:
        secret: str | None = vault.get(connection, options.get("secret_name", SECRET_NAME))
    except MissingSecretError:
        secret = None
    if secret is None and not options:
        return None
    return WebhookSettings(secret=secret, **options)


class _TtlCache:
    """A small thread-safe TTL cache whose loader runs at most once at a time per key."""

    def __init__(self, load: Callable[[str], Any], ttl: float, clock: Callable[[], float] = time.monotonic):
        self._load, self._ttl, self._clock = load, ttl, clock
        self._values: dict[str, tuple[float, Any]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def peek(self, key: str) -> Any:
        entry = self._values.get(key)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        return MISS

    def get(self, key: str) -> Any:
        value = self.peek(key)
        if value is not MISS:
            return value
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            value = self.peek(key)  # another thread may have loaded it meanwhile
            if value is MISS:
                value = self._load(key)
                self._values[key] = (self._clock() + self._ttl, value)
            return value


class ConnectionLookup:
    """Cached answers to the two questions the receiver asks per delivery: how do I verify this
    connection's webhooks, and is the connection paused? ``peek_*`` never does I/O (call it on the
    event loop); ``*_settings``/``paused_reason`` may query the store (call them from a thread)."""

    def __init__(self, store: SyncStore, vault: Vault | None = None, ttl: float = DEFAULT_TTL_SECONDS):
        self.store = store
        self.vault = vault or Vault(store)
        self._settings = _TtlCache(lambda c: webhook_settings(c, self.vault), ttl)
        self._paused = _TtlCache(lambda _: store.paused_connections(), ttl)

    def peek_settings(self, connection: str) -> Any:
        return self._settings.peek(connection)

    def webhook_settings(self, connection: str) -> WebhookSettings | None:
        return self._settings.get(connection)

    def peek_paused(self) -> Any:
        return self._paused.peek("")

    def paused(self) -> dict[str, str | None]:
        """All paused connections with their reasons."""
        return self._paused.get("")
