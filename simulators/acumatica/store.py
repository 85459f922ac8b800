"""The simulated tenant's records: lookup by id or key fields, list queries ($filter, $top, $skip),
and rendering to the wire ($select, $expand, value objects, system fields, _links). Business rules
for writes live in rules.py."""

from __future__ import annotations

import copy
import threading
import uuid
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from simulators.acumatica.odata import compile_filter
from simulators.acumatica.periods import seed_calendar
from simulators.acumatica.schema import ENTITIES, EntityDef, local_midnight, to_json
from simulators.acumatica.seed import seed_records

# Drop-down labels and the internal codes the API also accepts on input (reference §3).
DOC_TYPES = {
    "Invoice": {"Invoice": "INV", "Debit Memo": "DRM", "Credit Memo": "CRM"},
    "Payment": {"Payment": "PMT", "Prepayment": "PPM", "Refund": "REF"},
    "Bill": {"Bill": "INV", "Credit Adj.": "ACR", "Debit Adj.": "ADR", "Prepayment": "PPM"},
}
OPEN_STATUSES = {"On Hold", "Balanced"}  # a document in any other status is released


def normalize_type(entity: str, value: Any) -> str | None:
    """Label or internal code -> label; None when unknown."""
    if value is None:
        return None
    types = DOC_TYPES[entity]
    for label, code in types.items():
        if str(value).strip().lower() in (label.lower(), code.lower()):
            return label
    return None


class Tenant:
    def __init__(self, contractor, seed: int):
        self.lock = threading.RLock()
        self.contractor = contractor
        seeded = seed_records(contractor, seed)
        self.branches: list[dict] = seeded.pop("Branch")
        self.cash_accounts: list[dict] = seeded.pop("CashAccount")
        self.records: dict[str, dict[str, dict]] = {name: {} for name in ENTITIES}
        for name, rows in seeded.items():
            for r in rows:
                self.records[name][r["id"]] = r
        self.counters: dict[str, int] = {}

    def seed_calendar(self, now, zone, open_months: int) -> None:
        """The financial calendar around the simulator's start (periods.py), dates at the user's midnight."""
        setup, years = seed_calendar(now.astimezone(zone).date(), now, open_months)
        for record in (setup, *years):
            for row in (record, *record["Details"]):
                for name, value in list(row.items()):
                    if isinstance(value, date) and not isinstance(value, datetime):
                        row[name] = local_midnight(value, zone)
        self.records["FinancialYear"] = {setup["id"]: setup}
        self.records["FinancialPeriod"] = {y["id"]: y for y in years}

    # --- numbering ----------------------------------------------------------------------------
    def next_number(self, series: str, start: int, width: int = 6, prefix: str = "") -> str:
        with self.lock:
            n = self.counters.get(series, start) + 1
            self.counters[series] = n
            return f"{prefix}{n:0{width}d}"

    # --- lookups ------------------------------------------------------------------------------
    def by_id(self, entity: str, record_id: str) -> dict | None:
        return self.records[entity].get(record_id)

    def by_keys(self, entity: str, values: list[Any]) -> dict | None:
        edef = ENTITIES[entity]
        if len(values) != len(edef.keys) or not edef.keys:
            return None
        if entity in DOC_TYPES:
            label = normalize_type(entity, values[0])
            if label is None:
                return None
            values = [label, *values[1:]]
        wanted = [str(v).strip().casefold() for v in values]
        for rec in self.records[entity].values():
            if [str(rec.get(k) or "").strip().casefold() for k in edef.keys] == wanted:
                return rec
        return None

    def branch_exists(self, code: Any) -> bool:
        return code is not None and any(b["BranchID"].casefold() == str(code).casefold() for b in self.branches)

    def exists(self, entity: str, key: Any) -> bool:
        return key is not None and self.by_keys(entity, [key]) is not None

    def cash_account_exists(self, cd: Any) -> bool:
        return cd is not None and any(c["CashAccount"] == str(cd) for c in self.cash_accounts)

    # --- queries ------------------------------------------------------------------------------
    def query(self, entity: str, filter_text: str | None, top: int | None, skip: int | None) -> list[dict]:
        edef = ENTITIES[entity]
        with self.lock:
            rows = list(self.records[entity].values())
        if edef.keys and entity not in DOC_TYPES:
            rows.sort(key=lambda r: tuple(str(r.get(k) or "") for k in edef.keys))
        if filter_text:
            pred = compile_filter(filter_text, _getter, lambda path: _known(edef, path))
            rows = [r for r in rows if pred(r)]
        if skip:
            rows = rows[skip:]
        if top is not None:
            rows = rows[:top]
        return rows

    def snapshot(self, record: dict) -> dict:
        return copy.deepcopy(record)


def _getter(path: str, record: dict) -> Any:
    value: Any = record
    for part in path.split("/"):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _known(edef: EntityDef, path: str) -> bool:
    parts = path.split("/")
    current = edef
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if last and part in current.fields:
            return True
        if part in current.linked and not last:
            current = current.linked[part]
            continue
        return False
    return False


# --- rendering ------------------------------------------------------------------------------

def parse_list(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


class Renderer:
    """Turns records into wire JSON for one request (its endpoint URL, $expand, $select)."""

    def __init__(self, entity_url: str, files_url: str, expand: list[str], select: list[str] | None,
                 zone: tzinfo = UTC):
        self.entity_url = entity_url  # /entity/Default/24.200.001
        self.zone = zone  # the API user's time zone: date-times are answered with its offset
        self.files_url = files_url
        self.expand = {e.casefold() for e in expand}
        self.select = {s.casefold() for s in select} if select else None

    def top(self, edef: EntityDef, record: dict, row_number: int = 1, errors: dict | None = None) -> dict:
        out = self._object(edef, record, "", row_number, errors)
        rid = record.get("id") or str(uuid.UUID(int=0))
        out["_links"] = {
            "self": f"{self.entity_url}/{edef.name}/{rid}",
            "files:put": f"{self.files_url}/{edef.files_view}/{rid}/{{filename}}",
        }
        return out

    def _selected(self, path: str) -> bool:
        if self.select is None:
            return True
        p = path.casefold()
        return p in self.select or any(s.startswith(p + "/") for s in self.select)

    def _object(self, edef: EntityDef, record: dict, prefix: str, row_number: int, errors: dict | None) -> dict:
        errors = errors or {}
        out: dict[str, Any] = {}
        if "id" in record or not prefix:
            out["id"] = record.get("id") or str(uuid.UUID(int=0))
        out["rowNumber"] = row_number
        out["note"] = {"value": record.get("note") or ""}
        if errors.get("__entity__"):
            out["error"] = errors["__entity__"]
        for name in sorted(set(edef.fields) | set(edef.details) | set(edef.linked)):
            path = f"{prefix}{name}"
            if name in edef.fields:
                if not self._selected(path) and name not in errors:
                    continue
                value = to_json(edef.fields[name], record.get(name), self.zone)
                wrapped: dict[str, Any] = {} if value is None else {"value": value}
                if name in errors and isinstance(errors[name], str):
                    wrapped["error"] = errors[name]
                out[name] = wrapped
            elif name in edef.details:
                if path.casefold() not in self.expand and name not in errors:
                    continue
                rows = record.get(name) or []
                row_errors = errors.get(name) or {}
                out[name] = [
                    self._detail(edef.details[name], row, f"{path}/", i + 1, row_errors.get(i))
                    for i, row in enumerate(rows)
                ]
            else:
                if path.casefold() not in self.expand:
                    continue
                out[name] = self._object(edef.linked[name], record.get(name) or {}, f"{path}/", 1,
                                         errors.get(name) if isinstance(errors.get(name), dict) else None)
        out["custom"] = {}
        return out

    def _detail(self, edef: EntityDef, row: dict, prefix: str, row_number: int, errors: dict | None) -> dict:
        out = self._object(edef, row, prefix, row_number, errors)
        if edef.files_view:
            out["_links"] = {"files:put": f"{self.files_url}/{edef.files_view}/{row.get('id')}/{{filename}}"}
        return out
