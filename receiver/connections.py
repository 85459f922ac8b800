"""Per-connection webhook settings for the receiver: how a delivery proves it is authentic (the
connection file), the keys or tokens that are valid now (the vault), and whether the connection is
paused (sync store). Looked up behind short caches so changes apply within seconds.

Every connection uses exactly one of two modes, never neither:

- ``hmac`` (the default): HMAC-SHA256 over the raw body in a header. Valid keys: the vault secret
  ``servicetitan.secrets.webhook_secret`` names (``st_webhook_secret``) and, during a rotation, the
  same name with ``_previous``.
- ``path_token``: for a ServiceTitan app without an HMAC key. The callback URL ends in a secret
  token of at least 128 bits (``/webhooks/servicetitan/<connection>/<token>``), kept in the vault as
  ``servicetitan.secrets.webhook_token`` (``st_webhook_token``; ``..._previous`` during a rotation);
  ``fieldledger secrets rotate-webhook <connection>`` makes one.

Only these keys are read from ``<FIELDLEDGER_HOME>/connections/<connection>.yaml``, leniently, so
that a mapping mistake elsewhere in the file never stops webhooks from being stored::

    servicetitan:
      secrets:
        webhook_secret: st_webhook_secret            # default vault names
        webhook_token: st_webhook_token
      webhook:
        auth: hmac                                   # or path_token
        signature_header: X-ServiceTitan-Signature   # default; or a list of header names to try
        signature_encoding: any                      # base64, hex, or any (either; the default)

A connection is unknown when it has neither a webhook key or token in the vault nor a connection
file. Secrets are never logged; the vault registers each one it returns for redaction.
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
from receiver.signature import DEFAULT_ENCODING, DEFAULT_HEADER, ENCODINGS, TOKEN_MIN_BITS, token_bits
from resources.store import SyncStore
from resources.vault import PREVIOUS_SUFFIX, MissingSecretError, Vault

SECRET_NAME = "st_webhook_secret"
TOKEN_NAME = "st_webhook_token"
MODES = ("hmac", "path_token")
DEFAULT_TTL_SECONDS = 3.0
# A refresh the store cannot answer in time falls back on the last answer this much past its TTL
# (a key revoked in the vault can be accepted that much longer, only while the store is that slow).
STALE_GRACE_SECONDS = 60.0
CONNECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_HEADER_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
MISS = object()  # cache sentinel: nothing fresh cached


class ConnectionFileError(ValueError):
    """A connection file the receiver cannot use; the message names the file and the fix."""


@dataclass(frozen=True)
class WebhookSettings:
    """How one connection's deliveries are authenticated. ``keys`` are the valid HMAC keys (mode
    ``hmac``) or path tokens (mode ``path_token``), current first; empty: none stored yet."""

    mode: str = "hmac"
    keys: tuple[str, ...] = ()
    headers: tuple[str, ...] = (DEFAULT_HEADER,)
    encoding: str = DEFAULT_ENCODING
    secret_name: str = SECRET_NAME  # the vault name of the current key or token, for messages

    @property
    def header(self) -> str:
        return self.headers[0]

    @property
    def weak_token(self) -> bool:
        """A path token someone stored by hand that carries less than 128 bits."""
        return self.mode == "path_token" and any(token_bits(t) < TOKEN_MIN_BITS for t in self.keys)

    def __repr__(self) -> str:  # never show a key
        return (f"WebhookSettings(mode={self.mode!r}, keys={len(self.keys)} stored, headers={self.headers!r}, "
                f"encoding={self.encoding!r}, secret_name={self.secret_name!r})")


def connection_file(connection: str) -> Path:
    return connections_dir() / f"{connection}.yaml"


def _section(parent: Any, name: str) -> dict:
    value = parent.get(name) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def _options(path: Path) -> dict[str, Any]:
    """The webhook options of a connection file (defaults for what it leaves out)."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConnectionFileError(f"cannot read connection file {path}: {exc.__class__.__name__}; fix its YAML") from None
    servicetitan = _section(document, "servicetitan")
    secrets, webhook = _section(servicetitan, "secrets"), _section(servicetitan, "webhook")
    mode = str(webhook.get("auth") or "hmac").lower()
    if mode not in MODES:
        raise ConnectionFileError(f"{path}: servicetitan.webhook.auth must be hmac or path_token, not {mode!r}")
    raw_headers = webhook.get("signature_header") or DEFAULT_HEADER
    headers = tuple(str(h) for h in (raw_headers if isinstance(raw_headers, list) else [raw_headers]))
    for header in headers:
        if not _HEADER_TOKEN.match(header):
            raise ConnectionFileError(
                f"{path}: servicetitan.webhook.signature_header {header!r} is not a valid header name")
    encoding = str(webhook.get("signature_encoding") or DEFAULT_ENCODING).lower()
    if encoding not in ENCODINGS:
        raise ConnectionFileError(
            f"{path}: servicetitan.webhook.signature_encoding must be one of {', '.join(ENCODINGS)}, not {encoding!r}"
        )
    secret_name = str(secrets.get("webhook_token") or TOKEN_NAME) if mode == "path_token" else \
        str(secrets.get("webhook_secret") or SECRET_NAME)
    return {"mode": mode, "headers": headers, "encoding": encoding, "secret_name": secret_name}


def _valid_keys(vault: Vault, connection: str, name: str) -> tuple[str, ...]:
    """The current and (during a rotation) the previous value of a vault secret."""
    keys = []
    for candidate in (name, name + PREVIOUS_SUFFIX):
        try:
            keys.append(vault.get(connection, candidate))
        except MissingSecretError:
            continue
    return tuple(keys)


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
    options = _options(path) if path.is_file() else {}
    keys = _valid_keys(vault, connection, options.get("secret_name", SECRET_NAME))
    settings = WebhookSettings(**options, keys=keys)
    if not settings.keys and not options:
        return None
    return settings


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

    def stale(self, key: str, grace: float) -> Any:
        """The last value loaded, if it expired less than ``grace`` seconds ago, else MISS: what
        to use while the store is too slow to answer a refresh (a burst on a loaded machine)."""
        entry = self._values.get(key)
        if entry is not None and entry[0] + grace > self._clock():
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

    def stale_settings(self, connection: str, grace: float = STALE_GRACE_SECONDS) -> Any:
        return self._settings.stale(connection, grace)

    def stale_paused(self, grace: float = STALE_GRACE_SECONDS) -> Any:
        return self._paused.stale("", grace)

    def webhook_settings(self, connection: str) -> WebhookSettings | None:
        return self._settings.get(connection)

    def peek_paused(self) -> Any:
        return self._paused.peek("")

    def paused(self) -> dict[str, str | None]:
        """All paused connections with their reasons."""
        return self._paused.get("")
