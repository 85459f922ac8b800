"""The simulated tenant's in-memory state (hubs, periods, transaction files, the posted ledger, open
AR) behind one re-entrant lock, plus the field-name and field-length rules every write shares."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from simulators.runtime import SimClock
from simulators.vantagepoint.seed import IdMaker, build_seed
from simulators.vantagepoint.settings import TenantSettings
from simulators.vantagepoint.wire import vp_datetime


def blank(value: object) -> str:
    """WBS2/WBS3 are a single space at the top level; '' and None mean the same."""
    text = "" if value is None else str(value)
    return " " if text.strip() == "" else text


def normalize_fields(body: dict, allowed: Sequence[str], errors: list[str]) -> dict:
    """Map incoming keys onto canonical field names, case-insensitively; unknown ones are errors."""
    lookup = {name.lower(): name for name in allowed}
    out = {}
    for key, value in body.items():
        canonical = lookup.get(key.lower())
        if canonical is None:
            errors.append(f"Field {key} does not exist.")
            continue
        out[canonical] = value
    return out


@dataclass
class TransFile:
    """One transaction file (batch): control row, masters, details, and its posting state."""

    trans_type: str
    control: dict
    masters: list[dict] = field(default_factory=list)
    details: list[dict] = field(default_factory=list)
    extras: dict[str, list[dict]] = field(default_factory=dict)
    posted: bool = False


class TenantState:
    def __init__(self, settings: TenantSettings, clock: SimClock, seed: int):
        self.lock = threading.RLock()
        self.settings = settings
        self.clock = clock
        self.ids = IdMaker(seed)
        data = build_seed(settings.contractor, seed, clock.now(), self.ids)
        self.company = data.company
        self.orgs = data.orgs
        self.accounts = data.accounts
        self.banks = data.banks
        self.tax_codes = data.tax_codes
        self.liability_codes = data.liability_codes
        self.periods = data.periods
        self.active_period = data.active_period
        self.firms = data.firms
        self.projects = {self.project_key(*k): v for k, v in data.projects.items()}
        self.auto_posting = data.auto_posting
        self.next_client_number = data.next_client_number
        self.next_vendor_number = data.next_vendor_number
        self.service_client_id = data.service_client_id
        self.files: dict[str, dict[str, TransFile]] = {t: {} for t in ("IN", "CR", "AP", "JE")}
        self.ledger: list[dict] = []
        self._ledger_index: dict[tuple[str, str], list[dict]] = defaultdict(list)
        self.ar: dict[tuple[str, str], dict] = {}
        self.post_seq = 100
        self.next_voucher = 1
        self.counts: Counter[str] = Counter()

    # --- helpers ------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def stamp(self) -> str:
        return vp_datetime(self.clock.now())

    @staticmethod
    def project_key(wbs1: str, wbs2: str = " ", wbs3: str = " ") -> tuple[str, str, str]:
        return (str(wbs1).strip().upper(), blank(wbs2).strip().upper(), blank(wbs3).strip().upper())

    def project(self, wbs1: str, wbs2: str = " ", wbs3: str = " ") -> dict | None:
        return self.projects.get(self.project_key(wbs1, wbs2, wbs3))

    def has_phases(self, wbs1: str) -> bool:
        top = self.project(wbs1)
        return bool(top and top.get("SubLevel") == "Y")

    def check_length(self, table: str, column: str, value: object, limit: int, errors: list[str]) -> None:
        text = "" if value is None else str(value)
        if len(text) > limit:
            errors.append(
                f"String or binary data would be truncated in table '{self.settings.database}.dbo.{table}', "
                f"column '{column}'. Truncated value: '{text[:limit]}'."
            )

    def period_status(self, period: int) -> str | None:
        row = self.periods.get(period)
        if row is None:
            return None
        return "closed" if row["ActiveCompanyClosed"] == "Y" else "open"

    def require_open_period(self, period: int, errors: list[str], what: str = "Period") -> None:
        status = self.period_status(period)
        if status is None:
            errors.append(f"{what} {period} does not exist.")
        elif status == "closed":
            errors.append(f"{what} {period} is closed. Transactions cannot be entered or posted in a closed period.")

    def firm_by_vendor(self, vendor: str) -> dict | None:
        for firm in self.firms.values():
            if firm.get("Vendor", "").upper() == vendor.upper():
                return firm
        return None

    def firm_by_number(self, client: str) -> dict | None:
        for firm in self.firms.values():
            if firm.get("Client", "").upper() == client.upper():
                return firm
        return None

    # --- ledger ---------------------------------------------------------------------------
    def add_ledger_row(self, row: dict) -> None:
        self.ledger.append(row)
        for column in ("TransType", "Batch", "Invoice", "RefNo", "Vendor"):
            value = row.get(column)
            if value:
                self._ledger_index[(column.lower(), str(value).casefold())].append(row)

    def ledger_rows(self, trans_type: str, equalities: dict[str, str]) -> list[dict]:
        """Candidate rows for a ledger query; uses the index when an '=' filter allows it."""
        for column in ("batch", "invoice", "refno", "vendor"):
            if column in equalities:
                rows = self._ledger_index.get((column, equalities[column].casefold()), [])
                return [r for r in rows if r["TransType"] == trans_type]
        return list(self._ledger_index.get(("transtype", trans_type.casefold()), []))
