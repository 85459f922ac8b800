"""Vantagepoint's wire conventions in one place: dates without a timezone and with milliseconds,
periods as YYYYPP integers, amounts as JSON numbers, and the REST error body."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.responses import Response


class VPError(Exception):
    """A REST error answered as ``{"message": …, "detail": …}`` (several joined with <BR/>)."""

    def __init__(self, message: str | list[str], status: int = 400):
        self.messages = [message] if isinstance(message, str) else list(message)
        self.status = status
        super().__init__("<BR/>".join(self.messages))

    @property
    def text(self) -> str:
        return "<BR/>".join(self.messages)


def vp_datetime(dt: datetime) -> str:
    """'2026-06-01T14:37:27.083': naive, UTC in this simulator, milliseconds."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def vp_date(d: date) -> str:
    return f"{d.isoformat()}T00:00:00.000"


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_vp_datetime(value: Any) -> datetime | None:
    """Accept what clients send: 'YYYY-MM-DD', '…T…(.fff)', '…Z', offsets. Returns naive UTC."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if not _DATE_RE.match(text):
        raise ValueError(text)
    text = text.replace("Z", "+00:00").replace(" ", "T")
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def period_of(d: date | datetime) -> int:
    return d.year * 100 + d.month


def to_decimal(value: Any, field: str) -> Decimal:
    if value is None or value == "":
        return Decimal("0")
    if isinstance(value, bool):
        raise VPError(f"Error converting data type for column {field}: '{value}' is not a number.")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise VPError(f"Error converting data type for column {field}: '{value}' is not a number.") from None
    if not result.is_finite():
        raise VPError(f"Error converting data type for column {field}: '{value}' is not a number.")
    return result


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return float(obj)
    if isinstance(obj, datetime):
        return vp_datetime(obj)
    raise TypeError(type(obj).__name__)


def dumps(payload: Any) -> str:
    return json.dumps(payload, default=_default, ensure_ascii=False)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(payload), status_code=status, headers=headers, media_type="application/json")


def error_response(error: VPError) -> Response:
    return json_response({"message": error.text, "detail": error.text}, status=error.status)
