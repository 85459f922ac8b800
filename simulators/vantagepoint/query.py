"""List-query support for every Vantagepoint list GET: limit / pageSize / q.maxrows / $top, page
(1-based), offset, fieldFilter, order=Col_D, filterHash conditions and a minimal OData $filter.

No total counts are ever returned; without a size every row comes back. Column names match
case-insensitively; an unknown column is a 400, as SQL Server would refuse it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from simulators.vantagepoint.wire import VPError, parse_vp_datetime

OPERATORS = {
    "=": "eq", "==": "eq", "eq": "eq", "!=": "ne", "<>": "ne", "ne": "ne", "<": "lt", "lt": "lt",
    "<=": "le", "le": "le", ">": "gt", "gt": "gt", ">=": "ge", "ge": "ge", "like": "like", "in": "in",
}
_FILTER_KEY = re.compile(r"^filterhash\[(\d+)\]\[(\w+)\]$", re.IGNORECASE)


@dataclass
class Condition:
    name: str
    value: str = ""
    opp: str = "eq"
    type: str = ""
    condition: str = "AND"
    seq: int = 0


@dataclass
class ListQuery:
    conditions: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (column, descending)
    size: int | None = None
    page: int | None = None
    offset: int | None = None
    fields: list[str] = field(default_factory=list)

    def equalities(self) -> dict[str, str]:
        """Column -> value for '=' conditions when every condition is AND-joined (index lookups)."""
        if any(c.condition.upper() == "OR" for c in self.conditions[1:]):
            return {}
        return {c.name.lower(): c.value for c in self.conditions if c.opp == "eq" and c.value != ""}


def _positive_int(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise VPError(f"The value '{value}' is not valid for {name}.") from None
    if number <= 0 and name != "offset":
        raise VPError(f"The value '{value}' is not valid for {name}.")
    return number


# Per paging mode (settings.LEDGER_PAGING): the size parameters answered with a 500, and whether
# page / offset / pageSize are honoured. One practitioner source says PSALedger and DataEntry
# "reject the limit parameter with a 500 error and only accept q.maxrows".
_REFUSED = {"documented": (), "pagesize": ("limit",), "maxrows": ("limit", "pagesize"), "unpaged": ("limit",)}
_PAGES = {"documented": True, "pagesize": True, "maxrows": False, "unpaged": False}


def parse_list_query(items: Iterable[tuple[str, str]], paging: str = "documented") -> ListQuery:
    query = ListQuery()
    hashes: dict[int, dict[str, str]] = {}
    refused, pages = _REFUSED[paging], _PAGES[paging]
    for key, value in items:
        lowered = key.lower()
        match = _FILTER_KEY.match(key)
        if match:
            hashes.setdefault(int(match.group(1)), {})[match.group(2).lower()] = value
        elif lowered in refused:
            raise VPError("Object reference not set to an instance of an object.", status=500)
        elif lowered in ("limit", "pagesize"):
            if pages:
                query.size = _positive_int(value, key)
        elif lowered in ("q.maxrows", "$top"):
            query.size = _positive_int(value, key)
        elif lowered == "page":
            if pages:
                query.page = _positive_int(value, key)
        elif lowered == "offset":
            if pages:
                query.offset = _positive_int(value, key)
        elif lowered == "fieldfilter":
            query.fields = [f.strip() for f in value.split(",") if f.strip()]
        elif lowered == "order":
            for part in (p.strip() for p in value.split(",") if p.strip()):
                if part.upper().endswith("_D"):
                    query.order.append((part[:-2], True))
                elif part.upper().endswith("_A"):
                    query.order.append((part[:-2], False))
                else:
                    query.order.append((part, False))
        elif lowered == "$filter":
            query.conditions.extend(parse_odata_filter(value))
    for index in sorted(hashes):
        raw = hashes[index]
        if not raw.get("name"):
            raise VPError(f"filterHash[{index}] has no name.")
        opp = OPERATORS.get((raw.get("opp") or raw.get("operator") or "=").strip().lower())
        if opp is None:
            raise VPError(f"The operator '{raw.get('opp')}' is not supported.")
        try:
            seq = int(raw.get("seq") or index)
        except ValueError:
            seq = index
        query.conditions.append(
            Condition(
                name=raw["name"], value=raw.get("value", ""), opp=opp, type=(raw.get("type") or "").lower(),
                condition=(raw.get("condition") or "AND").upper(), seq=seq,
            )
        )
    query.conditions.sort(key=lambda c: c.seq)
    return query


_ODATA_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][\w.]*))")


def parse_odata_filter(text: str) -> list[Condition]:
    """``Invoice eq '000123' and Period eq 202606``: eq/ne/gt/ge/lt/le joined by ``and`` only."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _ODATA_TOKEN.match(text, pos)
        if not match:
            raise VPError(f"The $filter expression is not valid near '{text[pos:pos + 20]}'.")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    conditions: list[Condition] = []
    i = 0
    while i < len(tokens):
        if len(tokens) - i < 3 or tokens[i][0] != "word" or tokens[i + 1][0] != "word":
            raise VPError("The $filter expression is not valid.")
        name, op, (kind, literal) = tokens[i][1], tokens[i + 1][1].lower(), tokens[i + 2]
        if op not in ("eq", "ne", "gt", "ge", "lt", "le") or kind not in ("str", "num"):
            raise VPError("The $filter expression is not valid.")
        value = literal[1:-1].replace("''", "'") if kind == "str" else literal
        conditions.append(Condition(name=name, value=value, opp=op, seq=len(conditions)))
        i += 3
        if i < len(tokens):
            if tokens[i][0] != "word" or tokens[i][1].lower() != "and":
                raise VPError("The $filter expression is not valid: only 'and' may join conditions.")
            i += 1
            if i >= len(tokens):
                raise VPError("The $filter expression is not valid.")
    return conditions


def _resolve(name: str, columns: dict[str, str]) -> str:
    canonical = columns.get(name.lower())
    if canonical is None:
        raise VPError(f"Invalid column name '{name}'.")
    return canonical


def _like(value: str, pattern: str) -> bool:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.search(f"^.*{regex}.*$", value, re.IGNORECASE | re.DOTALL) is not None


def _coerce(raw: Any, text: str, kind: str, column: str) -> tuple[Any, Any]:
    """(row value, filter value) as comparable Python values."""
    if kind == "datetime" or (not kind and column.lower().endswith("date")):
        try:
            left = parse_vp_datetime(raw) if not isinstance(raw, datetime) else raw
            right = parse_vp_datetime(text)
        except ValueError:
            raise VPError(f"Conversion failed when converting '{text}' to datetime.") from None
        return left, right
    if kind in ("int", "numeric") or isinstance(raw, (int, Decimal)) and not isinstance(raw, bool):
        try:
            return (Decimal(str(raw)) if raw not in (None, "") else None), Decimal(text)
        except InvalidOperation:
            raise VPError(f"Conversion failed when converting the value '{text}' to a number.") from None
    return ("" if raw is None else str(raw)).casefold(), text.casefold()


def _matches(row: dict, cond: Condition, column: str) -> bool:
    raw = row.get(column)
    if cond.opp in ("eq", "ne") and cond.value == "":
        blank = raw is None or str(raw).strip() == ""
        return blank if cond.opp == "eq" else not blank
    if cond.opp == "like":
        return _like("" if raw is None else str(raw), cond.value)
    if cond.opp == "in":
        options = [v.strip() for v in cond.value.split(",")]
        return any(_matches(row, Condition(cond.name, v, "eq", cond.type), column) for v in options)
    left, right = _coerce(raw, cond.value, cond.type, column)
    if left is None:
        return cond.opp == "ne"
    try:
        return {
            "eq": left == right, "ne": left != right, "lt": left < right, "le": left <= right,
            "gt": left > right, "ge": left >= right,
        }[cond.opp]
    except TypeError:
        return False


def _sort_key(value: Any) -> tuple:
    if value is None or value == "":
        return (0, "")
    if isinstance(value, (int, Decimal)):
        return (1, value)
    return (2, str(value).casefold())


def apply_query(rows: Sequence[dict], query: ListQuery, columns: Iterable[str]) -> list[dict]:
    """Filter, sort, page and project ``rows``; ``columns`` are the collection's column names."""
    by_lower = {c.lower(): c for c in columns}
    resolved = [(cond, _resolve(cond.name, by_lower)) for cond in query.conditions]
    groups: list[list[tuple[Condition, str]]] = []
    for cond, column in resolved:
        if not groups or cond.condition == "OR":
            groups.append([])
        groups[-1].append((cond, column))
    result = [
        row for row in rows
        if not groups or any(all(_matches(row, c, col) for c, col in group) for group in groups)
    ]
    for column, descending in reversed([(_resolve(c, by_lower), d) for c, d in query.order]):
        result.sort(key=lambda r, col=column: _sort_key(r.get(col)), reverse=descending)
    start = query.offset or 0
    if query.page and query.size:
        start = (query.page - 1) * query.size
    result = result[start:]
    if query.size:
        result = result[: query.size]
    if query.fields:
        keep = [_resolve(f, by_lower) for f in query.fields]
        result = [{k: r.get(k) for k in keep} for r in result]
    return result
