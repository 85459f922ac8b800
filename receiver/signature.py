"""Webhook signatures: HMAC-SHA256 over the raw body bytes, sent base64- or hex-encoded.

ServiceTitan does not document the header or the encoding (reference §5.1), so both are settings
of the connection; the comparison is always constant-time on the decoded digest bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

ENCODINGS = ("base64", "hex")
DEFAULT_HEADER = "X-ServiceTitan-Signature"
DEFAULT_ENCODING = "base64"


def sign(secret: str, body: bytes, encoding: str = DEFAULT_ENCODING) -> str:
    """The signature a sender puts in the header for ``body`` (also used by tests and the bench)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    if encoding == "hex":
        return digest.hex()
    if encoding == "base64":
        return base64.b64encode(digest).decode()
    raise ValueError(f"unknown signature encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")


def _decode(signature: str, encoding: str) -> bytes | None:
    text = signature.strip()
    try:
        if encoding == "hex":
            return bytes.fromhex(text)
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return None


def is_valid(secret: str, body: bytes, signature: str, encoding: str = DEFAULT_ENCODING) -> bool:
    """True when ``signature`` is the HMAC-SHA256 of ``body`` under ``secret``."""
    provided = _decode(signature, encoding)
    if provided is None:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(expected, provided)
