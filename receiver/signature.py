"""Webhook authentication: HMAC-SHA256 over the raw body bytes (base64 or hex), or a secret token
in the callback URL's path. Every comparison is constant-time.

ServiceTitan does not document the signature header or its encoding (docs/servicetitan-webhooks.md),
so both are settings of the connection; the default encoding ``any`` accepts either form (they
cannot be confused: a SHA-256 digest is 64 hex digits or 44 base64 characters). During a key
rotation two keys are valid, so ``verify`` takes every key that is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets

ENCODINGS = ("any", "base64", "hex")
DEFAULT_HEADER = "X-ServiceTitan-Signature"
DEFAULT_ENCODING = "any"
TOKEN_MIN_BITS = 128
TOKEN_ALPHABET = re.compile(r"^[A-Za-z0-9_-]+$")  # url-safe base64: 6 bits a character
_HEX_DIGEST = re.compile(r"^[0-9A-Fa-f]{64}$")


def sign(secret: str, body: bytes, encoding: str = "base64") -> str:
    """The signature a sender puts in the header for ``body`` (also used by tests and the bench)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    if encoding == "hex":
        return digest.hex()
    if encoding == "base64":
        return base64.b64encode(digest).decode()
    raise ValueError(f"unknown signature encoding {encoding!r}; sign with base64 or hex")


def _decode(signature: str, encoding: str) -> bytes | None:
    text = signature.strip()
    if encoding == "any":
        encoding = "hex" if _HEX_DIGEST.match(text) else "base64"
    try:
        if encoding == "hex":
            return bytes.fromhex(text)
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None


def is_valid(secret: str, body: bytes, signature: str, encoding: str = DEFAULT_ENCODING) -> bool:
    """True when ``signature`` is the HMAC-SHA256 of ``body`` under ``secret``."""
    return verify((secret,), body, signature, encoding)


def verify(keys: tuple[str, ...] | list[str], body: bytes, signature: str, encoding: str = DEFAULT_ENCODING) -> bool:
    """True when ``signature`` is the HMAC-SHA256 of ``body`` under any of ``keys``."""
    provided = _decode(signature, encoding)
    if provided is None:
        return False
    matched = False
    for key in keys:  # no early exit: the time taken does not tell which key matched
        expected = hmac.new(key.encode(), body, hashlib.sha256).digest()
        matched |= hmac.compare_digest(expected, provided)
    return matched


def token_matches(tokens: tuple[str, ...] | list[str], given: str) -> bool:
    """True when ``given`` equals one of the connection's path tokens (constant-time)."""
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(token.encode(), given.encode())
    return matched


def token_bits(token: str) -> int:
    """Entropy a url-safe token can carry (6 bits a character); 0 when it is not url-safe."""
    return 6 * len(token) if TOKEN_ALPHABET.match(token) else 0


def new_token() -> str:
    """A fresh path token: 256 random bits, url-safe (43 characters)."""
    return secrets.token_urlsafe(32)
