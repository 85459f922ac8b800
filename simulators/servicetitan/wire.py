"""ServiceTitan wire conventions: timestamps with seven fractional digits and a Z, business dates
as midnight Z, accounting money as strings, RFC 7807 ProblemDetails bodies, filter-date parsing.

Internally the simulator keeps instants as integer ticks (100 ns since the Unix epoch, like .NET)
and money as integer cents, so rendering is cheap and arithmetic is exact.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from starlette.responses import Response

TICKS = 10_000_000  # ticks per second
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_TICKS = 86_400 * TICKS


def ticks_of(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1) * 10


def ticks_of_day(day: date) -> int:
    return (day.toordinal() - date(1970, 1, 1).toordinal()) * DAY_TICKS


def day_of_ticks(ticks: int) -> date:
    return date.fromordinal(date(1970, 1, 1).toordinal() + ticks // DAY_TICKS)


@lru_cache(maxsize=65_536)
def _second(seconds: int) -> str:
    return (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")


def ts(ticks: int | None) -> str | None:
    """'2021-07-19T20:35:38.2876004Z' (None stays None)."""
    if ticks is None:
        return None
    seconds, fraction = divmod(ticks, TICKS)
    return f"{_second(seconds)}.{fraction:07d}Z"


@lru_cache(maxsize=8_192)
def day_ts(ordinal: int | None) -> str | None:
    """A business date (date ordinal) as ServiceTitan sends it: midnight with a Z."""
    if ordinal is None:
        return None
    return date.fromordinal(ordinal).isoformat() + "T00:00:00Z"


def money(cents: int | None) -> str | None:
    """Accounting money: a string with two decimals, e.g. '-12.50'."""
    if cents is None:
        return None
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


def number(cents: int | None) -> float | None:
    """Inventory/CRM money: a JSON number (shortest repr of cents/100 is exact to the cent)."""
    return None if cents is None else cents / 100


def qty(hundredths: int) -> str:
    return money(hundredths)


_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_time(value: str) -> int:
    """Filter value -> ticks. Accepts dates, RFC 3339 with Z or an offset, and naive times (UTC)."""
    m = _TIME.match(value.strip())
    if not m:
        raise ValueError(value)
    y, mo, d, hh, mm, ss, frac, tz = m.groups()
    moment = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0), tzinfo=UTC)
    ticks = ticks_of(moment) + (int((frac or "0").ljust(7, "0")) if frac else 0)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        ticks -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60) * TICKS
    return ticks


def trace_id() -> str:
    return f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-00"


PROBLEM_TYPES = {
    400: "https://tools.ietf.org/html/rfc7231#section-6.5.1",
    401: "https://tools.ietf.org/html/rfc7235#section-3.1",
    403: "https://tools.ietf.org/html/rfc7231#section-6.5.3",
    404: "https://tools.ietf.org/html/rfc7231#section-6.5.4",
    409: "https://tools.ietf.org/html/rfc7231#section-6.5.8",
    429: "https://tools.ietf.org/html/rfc6585#section-4",
    500: "https://tools.ietf.org/html/rfc7231#section-6.6.1",
    503: "https://tools.ietf.org/html/rfc7231#section-6.6.4",
}


def problem_body(status: int, title: str, errors: dict[str, list[str]] | None = None) -> dict:
    """ApiErrorResponse: every field present, as the specs require."""
    return {
        "type": PROBLEM_TYPES.get(status, "https://tools.ietf.org/html/rfc7231"),
        "title": title,
        "status": status,
        "traceId": trace_id(),
        "errors": errors or {},
        "data": {},
    }


def dumps(payload) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(payload, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(payload), status_code=status, headers=headers, media_type="application/json")


def problem(status: int, title: str, errors: dict[str, list[str]] | None = None,
            headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(problem_body(status, title, errors)), status_code=status, headers=headers,
                    media_type="application/problem+json")
