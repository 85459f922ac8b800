"""Keeps secrets out of every log line, exception message and metadata value.

Clients register each secret and token they hold; ``redact`` masks registered values and the
usual credential shapes (Authorization headers, passwords in form bodies). A logging filter
applies it to every record of the ``fieldledger`` loggers.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

SENSITIVE_HEADERS = frozenset(
    {"authorization", "st-app-key", "cookie", "set-cookie", "x-servicetitan-signature", "proxy-authorization"}
)
SENSITIVE_FIELDS = ("password", "client_secret", "refresh_token", "access_token", "secret", "app_key")

_SHAPES = re.compile(
    r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/=]+"
    r"|((?:" + "|".join(SENSITIVE_FIELDS) + r")[\"']?\s*[:=]\s*[\"']?)[^\"'&\s,}]+"
    r"|([a-z][a-z0-9+.\-]*://[^:/@\s]+:)[^@\s/]+(?=@)"  # the password of a URL (postgresql://user:pw@host)
)


def register_secret(value: str | None) -> None:
    """Mask this value wherever it appears from now on (values shorter than 4 are ignored)."""
    global _pattern
    if not value or len(value) < 4:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: object) -> str:
    out = str(text)
    pattern = _pattern
    if pattern is not None:
        out = pattern.sub(MASK, out)
    return _SHAPES.sub(lambda m: (m.group(1) or m.group(2) or m.group(3) or "") + MASK, out)


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: (MASK if k.lower() in SENSITIVE_HEADERS else redact(v)) for k, v in headers.items()}


class RedactingFilter(logging.Filter):
    """Formats the record's message once, redacted, so no argument can smuggle a secret out."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not break logging
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_log_redaction(logger_name: str = "fieldledger") -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
