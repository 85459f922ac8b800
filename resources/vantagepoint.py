"""Deltek Vantagepoint client over the shared HTTP layer: password-grant auth with refresh, hub
reads and writes (firms, projects, organizations, accounts, periods), transaction files (IN / CR /
AP / JE) built, checked and posted exactly once, and ledger reads; plus the Dagster resource.

Vantagepoint has no idempotency key, so ``submit`` looks for the deterministic batch id and the
document number in the ledger (and the unposted DataEntry file) before creating or posting
anything; a create or post whose answer was lost is recognised on the next look-up. Filters go out
as filterHash parameters, one URL-encoded value each, so data can never change a query's shape.
Not here: mapping ServiceTitan records to files (mappings/) or the sync store bookkeeping.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, field_validator

from resources.client_resource import VaultClientResource
from resources.http import (
    AuthError,
    ConflictError,
    HttpClient,
    NotFoundError,
    RateLimiter,
    RemoteError,
    RetryPolicy,
    TransientError,
    ValidationError,
    classify_status,
    register_secret,
)

SYSTEM = "vantagepoint"
TransType = Literal["IN", "CR", "AP", "JE"]
# How PSALedger / DataEntry lists are read. The reference documents limit / pageSize + page, one
# public client says those endpoints 500 on `limit` and honour only q.maxrows: "auto" pages with
# pageSize and falls back to one unpaged read (every row, as the API answers without a size) when
# the server refuses pageSize or ignores it; "page_size" and "unpaged" fix the choice.
LedgerPaging = Literal["auto", "page_size", "unpaged"]
# The tenant setting "Use Files to Group Transactions": "grouped" creates a file with POST
# {xx}Control, "ungrouped" with one POST {xx}Master/{Batch}|{Key} per document; "auto" tries the
# grouped form first and switches when the tenant refuses it for that setting.
FileGrouping = Literal["auto", "grouped", "ungrouped"]
_LEDGER_PATHS = ("psaledger/", "dataentry/")
PASSWORD_GRANT_HELP = (
    "Vantagepoint refused the password grant for this API client (unauthorized_client). In Vantagepoint "
    "open Integrations > API Authorization, select the application whose Client ID fieldledger uses, tick "
    "'Allow Password Grant Type' and save; then retry. (Before 5.0 the setting lives under Utilities > "
    "Integrations > API Authorization.)"
)
_OK_OR_CLIENT_ERROR = frozenset(range(200, 300)) | {400, 404, 405, 409, 412, 422}
# How a tenant with "Use Files to Group Transactions" off refuses a grouped create (the wording is
# not documented; this matches the setting's name and the simulator's message).
_GROUPING_OFF = re.compile(r"group\s*transactions", re.IGNORECASE)
_CENT = Decimal("0.01")
MASTER_KEYS = {"IN": "Invoice", "CR": "RefNo", "AP": "MasterPKey", "JE": "RefNo"}


# --- error bodies -------------------------------------------------------------------------------


def error_text(body: str) -> str:
    """The human message in a Vantagepoint error body, whatever its shape: REST
    ``{"message","detail"}``, ASP.NET ``{"Message","ExceptionMessage"}``, OAuth
    ``{"error","error_description"}``, a JSON string, or a proxy's HTML page."""
    text = (body or "").strip()
    if not text:
        return "(empty response)"
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, str):
        return data.replace("<BR/>", "; ")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if isinstance(data, dict):
        lowered = {str(k).lower(): v for k, v in data.items()}
        parts: list[str] = []
        for key in ("message", "exceptionmessage", "detail", "error_description", "error"):
            value = lowered.get(key)
            if value and str(value) not in parts:
                parts.append(str(value))
        if parts:
            first = parts[0]
            extra = [p for p in parts[1:] if p not in first]
            return "; ".join([first, *extra]).replace("<BR/>", "; ")
        return text[:300]
    if text.startswith("<"):
        title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        stripped = title.group(1) if title else re.sub(r"<[^>]+>", " ", text)
        return html.unescape(" ".join(stripped.split()))[:300]
    return text[:300]


def classify_vantagepoint(response: httpx.Response) -> type[RemoteError] | None:
    """Vantagepoint's quirks on top of the status mapping: every business rule is a 400, so a
    duplicate key or an edit of a posted file (400) is a conflict, not bad content."""
    if response.status_code == 400:
        message = error_text(response.text).lower()
        if "already exists" in message or "posted transaction files cannot be modified" in message:
            return ConflictError
    return None


# --- models -------------------------------------------------------------------------------------


def _parse_vp_datetime(value: Any) -> datetime | None:
    """Vantagepoint dates carry no zone ('2026-06-01T14:37:27.083'); they are read as UTC."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def vp_datetime(value: datetime | date) -> str:
    """The wire form Vantagepoint expects: '2026-06-01T00:00:00.000', UTC, no zone."""
    if isinstance(value, datetime):
        value = value.astimezone(UTC) if value.tzinfo else value
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    return f"{value.isoformat()}T00:00:00.000"


class _VPModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @field_validator("ModDate", "PostDate", "TransDate", "CreateDate", mode="before", check_fields=False)
    @classmethod
    def _dates(cls, value: Any) -> datetime | None:
        return _parse_vp_datetime(value)


class Firm(_VPModel):
    ClientID: str
    Client: str = ""
    Vendor: str = ""
    Name: str = ""
    ClientInd: str = "N"
    VendorInd: str = "N"
    Status: str = "A"
    Category: str = ""
    ModDate: datetime | None = None

    @property
    def is_client(self) -> bool:
        return self.ClientInd == "Y"

    @property
    def is_vendor(self) -> bool:
        return self.VendorInd == "Y"


class Project(_VPModel):
    WBS1: str
    WBS2: str = " "
    WBS3: str = " "
    Name: str = ""
    Org: str = ""
    ClientID: str = ""
    ChargeType: str = ""
    SubLevel: str = "N"
    Status: str = "A"
    ModDate: datetime | None = None


class Organization(_VPModel):
    Org: str
    Name: str = ""
    Status: str = "A"


class Account(_VPModel):
    Account: str
    Name: str = ""
    Type: int = 0
    Status: str = "A"


class Bank(_VPModel):
    Code: str
    Description: str = ""
    Account: str = ""


class Period(_VPModel):
    Period: int
    AccountPdStart: datetime | None = None
    AccountPdEnd: datetime | None = None
    ActiveCompanyClosed: str = "N"

    @field_validator("AccountPdStart", "AccountPdEnd", mode="before")
    @classmethod
    def _bounds(cls, value: Any) -> datetime | None:
        return _parse_vp_datetime(value)

    @property
    def closed(self) -> bool:
        return self.ActiveCompanyClosed == "Y"


class LedgerRow(_VPModel):
    TransType: str
    Batch: str = ""
    Period: int = 0
    PostSeq: int = 0
    PKey: str = ""
    SubType: str = ""
    WBS1: str = ""
    WBS2: str = " "
    WBS3: str = " "
    Account: str = ""
    Org: str = ""
    RefNo: str = ""
    Invoice: str = ""
    Vendor: str = ""
    Voucher: str = ""
    BankCode: str = ""
    Amount: Decimal = Decimal("0")
    TransDate: datetime | None = None
    PostDate: datetime | None = None

    @field_validator("Amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Decimal:
        return Decimal(str(value)) if value not in (None, "") else Decimal("0")


class BatchStatus(BaseModel):
    """What Vantagepoint holds under a batch id: an unposted file, a posted one, or ledger rows."""

    trans_type: str
    batch: str
    posted: bool
    post_seq: int | None = None
    period: int | None = None
    total: Decimal | None = None
    master_keys: list[str] = []


class PostResult(BaseModel):
    trans_type: str
    batch: str
    posted: bool
    period: int | None = None
    post_seq: int | None = None
    message: str = ""


class SubmitResult(BaseModel):
    """``posted``: posted now. ``already_posted``: our batch id was already in the ledger (a
    replay, or a post whose answer was lost). ``found_existing``: the document number is already
    posted under another batch; nothing was created."""

    trans_type: str
    batch: str
    outcome: Literal["posted", "already_posted", "found_existing"]
    post_seq: int | None = None
    period: int | None = None
    message: str = ""


class FirmUpsert(BaseModel):
    firm: Firm
    action: Literal["created", "updated", "unchanged"]


# --- transaction files ----------------------------------------------------------------------------


def batch_id(trans_type: str, source_id: str, scope: str = "") -> str:
    """Deterministic batch id (<= 32 characters): 'FL' + type + 28 hex of a hash of scope, type and
    the source record's id. The same source record always maps to the same batch."""
    digest = hashlib.sha256(f"{scope}|{trans_type.upper()}|{source_id}".encode()).hexdigest().upper()
    return f"FL{trans_type.upper()}{digest[:28]}"


def pad_document_number(number: str, width: int = 12) -> str:
    """Vantagepoint zero-pads invoice numbers to RefnoLength on save; search with the padded form."""
    text = str(number).strip()
    return text.rjust(width, "0") if len(text) < width else text


def line_key(batch: str, index: int) -> str:
    """A detail PKey unique in the tenant and stable across retries."""
    return hashlib.sha256(f"{batch}:{index}".encode()).hexdigest()[:32].upper()


def _money(value: Decimal | int | str) -> Decimal:
    amount = Decimal(str(value))
    if amount != amount.quantize(_CENT):
        raise ValueError(f"amount {value} has more than two decimals")
    return amount.quantize(_CENT)


@dataclass
class InvoiceLine:
    account: str  # a revenue account
    amount: Decimal
    wbs2: str = " "
    wbs3: str = " "
    section: str = "F"  # InvoiceSection: F fee, L labor, C consultant, E expense, U unit, A add-on, T tax, I interest
    description: str = ""
    tax_code: str = ""


@dataclass
class ReceiptLine:
    amount: Decimal
    account: str  # the AR account when applied to an invoice
    wbs1: str = ""
    invoice: str = ""
    wbs2: str = " "
    description: str = ""


@dataclass
class VoucherLine:
    account: str
    amount: Decimal
    wbs1: str = ""
    wbs2: str = " "
    description: str = ""


@dataclass
class JournalLine:
    account: str
    debit: Decimal = Decimal("0")
    credit: Decimal = Decimal("0")
    wbs1: str = ""
    wbs2: str = " "
    description: str = ""


@dataclass
class TransactionFile:
    """A Vantagepoint transaction file (batch) built document by document, checked locally, then
    rendered as the grouped ``{xx}Control`` body. Build one with ``TransactionFile(type, batch,
    period)`` and ``add_invoice`` / ``add_receipt`` / ``add_voucher`` / ``add_journal_entry``."""

    trans_type: TransType
    batch: str
    period: int
    description: str = ""
    default_bank: str = ""
    refno_length: int = 12
    masters: list[dict] = field(default_factory=list)
    details: list[dict] = field(default_factory=list)

    def _expect(self, kind: str) -> None:
        if self.trans_type != kind:
            raise ValueError(f"a {self.trans_type} file cannot hold a {kind} document")

    def _detail(self, row: dict) -> None:
        row["PKey"] = line_key(self.batch, len(self.details))
        row["Seq"] = len(self.details) + 1
        self.details.append(row)

    def add_invoice(self, invoice: str, wbs1: str, trans_date: date, lines: list[InvoiceLine],
                    comment: str = "", due_date: date | None = None) -> str:
        self._expect("IN")
        number = pad_document_number(invoice, self.refno_length)
        self.masters.append({"Invoice": number, "WBS1": wbs1, "WBS2": " ", "WBS3": " ",
                             "TransDate": vp_datetime(trans_date), "TransComment": comment,
                             "DueDate": vp_datetime(due_date) if due_date else "", "Seq": len(self.masters) + 1})
        for line in lines:
            self._detail({"Invoice": number, "WBS1": wbs1, "WBS2": line.wbs2 or " ", "WBS3": line.wbs3 or " ",
                          "Account": line.account, "Amount": _money(line.amount), "InvoiceSection": line.section,
                          "Description": line.description, "TaxCode": line.tax_code})
        return number

    def add_receipt(self, ref_no: str, trans_date: date, lines: list[ReceiptLine], bank_code: str = "",
                    comment: str = "") -> str:
        self._expect("CR")
        self.masters.append({"RefNo": ref_no, "TransDate": vp_datetime(trans_date), "TransComment": comment,
                             "BankCode": bank_code or self.default_bank, "Seq": len(self.masters) + 1})
        for line in lines:
            self._detail({"RefNo": ref_no, "WBS1": line.wbs1, "WBS2": line.wbs2 or " ", "WBS3": " ",
                          "Account": line.account, "Amount": _money(line.amount),
                          "Invoice": pad_document_number(line.invoice, self.refno_length) if line.invoice else "",
                          "Description": line.description})
        return ref_no

    def add_voucher(self, vendor: str, invoice: str, trans_date: date, lines: list[VoucherLine],
                    invoice_date: date | None = None, liab_code: str = "General", comment: str = "") -> str:
        self._expect("AP")
        key = hashlib.sha256(f"{self.batch}:{vendor}:{invoice}".encode()).hexdigest()[:32].upper()
        self.masters.append({"MasterPKey": key, "Vendor": vendor, "Invoice": invoice,
                             "InvoiceDate": vp_datetime(invoice_date or trans_date),
                             "TransDate": vp_datetime(trans_date), "LiabCode": liab_code, "TransComment": comment,
                             "Seq": len(self.masters) + 1})
        for line in lines:
            self._detail({"MasterPKey": key, "WBS1": line.wbs1, "WBS2": line.wbs2 or " ", "WBS3": " ",
                          "Account": line.account, "Amount": _money(line.amount), "Description": line.description})
        return key

    def add_journal_entry(self, ref_no: str, trans_date: date, lines: list[JournalLine], description: str = "") -> str:
        self._expect("JE")
        self.masters.append({"RefNo": ref_no, "TransDate": vp_datetime(trans_date), "Description": description,
                             "Seq": len(self.masters) + 1})
        for line in lines:
            self._detail({"RefNo": ref_no, "WBS1": line.wbs1, "WBS2": line.wbs2 or " ", "WBS3": " ",
                          "Account": line.account, "DebitAmount": _money(line.debit),
                          "CreditAmount": _money(line.credit), "Description": line.description})
        return ref_no

    @property
    def total(self) -> Decimal:
        key = "DebitAmount" if self.trans_type == "JE" else "Amount"
        return sum((d[key] for d in self.details), Decimal("0"))

    @property
    def master_keys(self) -> list[str]:
        return [m[MASTER_KEYS[self.trans_type]] for m in self.masters]

    def problems(self) -> list[str]:
        """What Vantagepoint would refuse, found before any request: lengths, missing references,
        documents without lines, unbalanced journal entries."""
        out: list[str] = []
        if not self.batch or len(self.batch) > 32:
            out.append(f"batch id '{self.batch}' must be 1-32 characters")
        if not (190001 <= self.period <= 999912):
            out.append(f"period {self.period} is not YYYYPP")
        if len(self.description) > 40:
            out.append("description is longer than 40 characters")
        if not self.masters:
            out.append("the file holds no documents")
        key = MASTER_KEYS[self.trans_type]
        seen: set[str] = set()
        for m in self.masters:
            number = m[key]
            lines = [d for d in self.details if d[key] == number]
            if not number:
                out.append(f"a document has no {key}")
            if number.upper() in seen:
                out.append(f"{key} {number} appears twice")
            seen.add(number.upper())
            if not lines:
                out.append(f"{key} {number} has no lines")
            if key != "MasterPKey" and len(number) > self.refno_length:
                out.append(f"{key} {number} is longer than {self.refno_length} characters")
            if self.trans_type == "IN" and not m["WBS1"]:
                out.append(f"invoice {number} has no project (WBS1)")
            if self.trans_type == "CR" and not m["BankCode"]:
                out.append(f"receipt {number} has no bank code")
            if self.trans_type == "AP" and not m["Vendor"]:
                out.append(f"voucher {m['Invoice']} has no vendor")
            if self.trans_type == "JE":
                debit = sum((d["DebitAmount"] for d in lines), Decimal("0"))
                credit = sum((d["CreditAmount"] for d in lines), Decimal("0"))
                if debit != credit:
                    out.append(f"journal entry {number} is out of balance: debits {debit}, credits {credit}")
            for d in lines:
                if not d["Account"]:
                    out.append(f"{key} {number}: a line has no account")
                if len(d.get("Description") or "") > 40:
                    out.append(f"{key} {number}: line description longer than 40 characters")
                if self.trans_type == "CR" and d["Invoice"] and not d["WBS1"]:
                    out.append(f"receipt {number}: the line applied to invoice {d['Invoice']} has no project")
        return out

    def check(self) -> None:
        problems = self.problems()
        if problems:
            raise ValidationError(
                f"transaction file {self.trans_type} {self.batch} is not valid: " + "; ".join(problems),
                system=SYSTEM, method="CHECK", path=f"DataEntry/{self.trans_type.lower()}Control",
            )

    def body(self) -> dict:
        prefix = self.trans_type.lower()
        control: dict[str, Any] = {"Batch": self.batch, "Description": self.description, "Period": self.period,
                                   "Total": self.total}
        if self.trans_type == "JE":
            control["CreditsTotal"] = sum((d["CreditAmount"] for d in self.details), Decimal("0"))
        if self.trans_type == "IN":
            control["RetTotal"] = Decimal("0")
        if self.trans_type == "CR" and self.default_bank:
            control["DefaultBank"] = self.default_bank
        return {**control, f"{prefix}Master": [{"Batch": self.batch, **m} for m in self.masters],
                f"{prefix}Detail": [{"Batch": self.batch, **d} for d in self.details]}

    def document_bodies(self) -> list[tuple[str, dict]]:
        """(master key, body) per document for the ungrouped create: the master row with its
        lines nested as ``{xx}Detail``."""
        key, prefix = MASTER_KEYS[self.trans_type], self.trans_type.lower()
        return [(m[key], {"Batch": self.batch, **m,
                          f"{prefix}Detail": [{"Batch": self.batch, **d} for d in self.details if d[key] == m[key]]})
                for m in self.masters]


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value) if value == value.quantize(_CENT) else str(value)
    raise TypeError(type(value).__name__)


def _dumps(payload: Any) -> bytes:
    # Amounts are quantized to cents, so float() renders them exactly ("120.5", "19.99").
    return json.dumps(payload, default=_json_default, ensure_ascii=False).encode()


def parse_post_response(text: str) -> list[dict]:
    """PostTransFile answers with a JSON string holding JSON (Deltek's own example even lacks a
    comma). Returns one dict per file: type, batch, ret, period, postseq, msg."""
    data: Any = text
    for _ in range(2):
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                break
    if not isinstance(data, dict):
        data = dict(re.findall(r'"(\w+)"\s*:\s*"((?:[^"\\]|\\.)*)"', str(data)))
    lists = {k.lower(): str(v) for k, v in data.items()}
    columns = {name: lists.get(f"{name}list", "").split("|") for name in ("type", "batch", "ret", "period", "postseq")}
    messages = lists.get("msg", "").split("[CRLF]")
    count = max(len(v) for v in columns.values())
    out = []
    for i in range(count):
        out.append({name: (values[i] if i < len(values) else "") for name, values in columns.items()}
                   | {"msg": messages[i] if i < len(messages) else ""})
    return out


# --- auth -----------------------------------------------------------------------------------------


class VantagepointAuth:
    """Bearer tokens from ``POST /api/token``: password grant first, then the refresh_token grant
    ``refresh_margin`` seconds before expiry (falling back to the password grant if the refresh
    token was refused). Thread-safe; every token is registered for redaction."""

    def __init__(self, http: HttpClient, database: str, client_id: str, client_secret: str, username: str,
                 password: str, refresh_margin: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self._http = http
        self._database = database
        self._client_id = client_id
        self._client_secret = client_secret
        self._username = username
        self._password = password
        self._margin = refresh_margin
        self._clock = clock
        self._lock = threading.Lock()
        self._access: str | None = None
        self._refresh: str | None = None
        self._expires_at = 0.0
        self.grants = {"password": 0, "refresh_token": 0}

    def headers(self) -> dict[str, str]:
        with self._lock:
            if self._access is None:
                self._password_grant()
            elif self._clock() >= self._expires_at - self._margin:
                self._renew()
            return {"Authorization": f"Bearer {self._access}"}

    def refresh(self, failed_headers: dict[str, str]) -> None:
        failed = next((v for k, v in failed_headers.items() if k.lower() == "authorization"), "")
        with self._lock:
            if self._access is not None and failed != f"Bearer {self._access}":
                return  # another thread already replaced the token
            self._renew()

    def _renew(self) -> None:
        if self._refresh:
            try:
                self._grant({"grant_type": "refresh_token", "refresh_token": self._refresh})
                return
            except AuthError:
                self._refresh = None  # refused (revoked, expired, rotated): sign in again
        self._password_grant()

    def _password_grant(self) -> None:
        self._grant({"grant_type": "password", "username": self._username, "password": self._password,
                     "database": self._database, "integrated": "N"})

    def _grant(self, form: dict[str, str]) -> None:
        grant_type = form["grant_type"]
        form = {**form, "client_id": self._client_id, "client_secret": self._client_secret}
        response = self._http.request("POST", "token", data=form, use_auth=False, ok_statuses={200, 400, 401},
                                      idempotent=True)  # a repeated grant only issues another token
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            raise AuthError(self._explain(body if isinstance(body, dict) else {}, response), system=SYSTEM,
                            method="POST", path="token", status=response.status_code)
        self._access = str(body["access_token"])
        self._refresh = str(body.get("refresh_token") or "") or None
        register_secret(self._access)
        register_secret(self._refresh)
        expires_in = float(body.get("expires_in") or 1799)
        self._expires_at = self._clock() + expires_in
        self.grants[grant_type] += 1

    def _explain(self, body: dict, response: httpx.Response) -> str:
        error = str(body.get("error") or "")
        description = str(body.get("error_description") or "")
        if error == "unauthorized_client":
            return PASSWORD_GRANT_HELP
        if error == "invalid_client":
            return ("Vantagepoint rejected the API client (invalid_client): check the vault secrets vp_client_id "
                    "and vp_client_secret against Integrations > API Authorization (regenerating the secret "
                    "invalidates the old one).")
        if "disabled" in description.lower():
            return (f"Vantagepoint refused the sign-in: {description} Re-enable the API user in Vantagepoint "
                    "(Users) or store another user in vp_username / vp_password.")
        if error == "invalid_grant":
            return (f"Vantagepoint refused the sign-in (invalid_grant): {description or 'no detail'}. Check the "
                    "vault secrets vp_username / vp_password and the connection's database name.")
        return f"Vantagepoint token request failed: {error_text(response.text)}"


# --- the client -----------------------------------------------------------------------------------


class VantagepointClient:
    """One Vantagepoint database. ``base_url`` is the tenant's API root, e.g.
    ``https://acme.deltekfirst.com/ACME/api`` (``/api`` is appended when missing)."""

    def __init__(self, base_url: str, database: str, client_id: str, client_secret: str, username: str,
                 password: str, *, timeout: float = 30.0, retry: RetryPolicy | None = None,
                 rate_per_second: float | None = 10.0, refno_length: int | None = None, refresh_margin: float = 60.0,
                 ledger_paging: LedgerPaging = "auto", file_grouping: FileGrouping = "auto",
                 transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep):
        root = base_url.rstrip("/")
        if not root.lower().endswith("/api"):
            root += "/api"
        self.base_url = root
        self.database = database
        self._refno_length = refno_length  # None: read RefnoLength from KeyCvt/CFGFormat on first use
        self.ledger_paging: LedgerPaging = ledger_paging  # "auto" settles on the first ledger read
        self.file_grouping: FileGrouping = file_grouping  # "auto" settles on the first create
        self._settings_lock = threading.Lock()
        for secret in (client_id, client_secret, password):
            register_secret(secret)
        retry = retry or RetryPolicy()
        # a burst of a tenth of a second: a full second's burst let a 40 s run average 1.3% over the setting
        limiter = (RateLimiter.shared(f"{SYSTEM}:{root}:{username}", rate_per_second, max(1, int(rate_per_second // 10)))
                   if rate_per_second else None)
        common = dict(timeout=timeout, limiter=limiter, classify=classify_vantagepoint, transport=transport,
                      sleep=sleep, default_headers={"Accept": "application/json"})
        token_http = HttpClient(SYSTEM, root + "/", retry=retry, **common)
        self.auth = VantagepointAuth(token_http, database, client_id, client_secret, username, password,
                                     refresh_margin=refresh_margin)
        self._http = HttpClient(SYSTEM, root + "/", auth=self.auth, retry=retry, **common)
        # Creates that Vantagepoint would repeat (a firm has no unique natural key) are sent once per
        # attempt; after a transient failure we look before sending again.
        self._http_once = HttpClient(SYSTEM, root + "/", auth=self.auth, retry=RetryPolicy(max_attempts=1), **common)
        self._retry = retry
        self._sleep = sleep
        self._clients = (token_http, self._http, self._http_once)

    # --- plumbing -------------------------------------------------------------------------------
    def close(self) -> None:
        for client in self._clients:
            client.close()

    def __enter__(self) -> VantagepointClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def stats(self) -> dict[str, int]:
        requests = sum(c.stats["requests"] for c in self._clients)
        retries = sum(c.stats["retries"] for c in self._clients)
        return {"requests": requests, "retries": retries, **{f"{k}_grants": v for k, v in self.auth.grants.items()}}

    def _call(self, method: str, path: str, what: str, *, once: bool = False, probe: bool = False,
              **kw) -> httpx.Response:
        """``probe``: a 500 answer comes back at once as None instead of being retried and raised
        (the paging detection's question; other 5xx are retried as usual)."""
        http = self._http_once if once else self._http
        if "json" in kw:
            kw["content"] = _dumps(kw.pop("json"))
            kw["headers"] = {**(kw.get("headers") or {}), "Content-Type": "application/json"}
        ok = _OK_OR_CLIENT_ERROR | {500} if probe else _OK_OR_CLIENT_ERROR
        response = http.request(method, path, ok_statuses=ok, **kw)
        if probe and response.status_code == 500:
            return None  # type: ignore[return-value]
        if response.status_code < 400:
            return response
        cls = classify_vantagepoint(response) or classify_status(response.status_code)
        raise cls(f"Vantagepoint refused {what}: {error_text(response.text)}", system=SYSTEM, method=method,
                  path=path, status=response.status_code, body_excerpt=response.text)

    @staticmethod
    def _rows(response: httpx.Response) -> list[dict]:
        data = json.loads(response.text or "[]", parse_float=Decimal)
        if isinstance(data, dict):
            return [data]  # some hub POSTs answer with an object rather than an array
        return list(data or [])

    def _get_rows(self, path: str, what: str, params: dict | None = None) -> list[dict]:
        return self._rows(self._call("GET", path, what, params=params))

    def _paged(self, path: str, what: str, params: dict | None = None, page_size: int = 500) -> list[dict]:
        """Every row of a list GET: pageSize + page until a short page (no counts are returned).
        PSALedger and DataEntry lists follow ``ledger_paging`` (see LedgerPaging)."""
        ledger = path.lower().startswith(_LEDGER_PATHS)
        if ledger and self.ledger_paging == "unpaged":
            return self._get_rows(path, what, params)
        out: list[dict] = []
        previous: list[dict] | None = None
        page = 1
        while True:
            query = {**(params or {}), "pageSize": page_size, "page": page}
            if ledger and self.ledger_paging == "auto":
                response = self._call("GET", path, what, params=query, probe=True)
                if response is None:  # a 500 to pageSize: the tenant takes no page size here (a passing
                    return self._settle_unpaged(path, what, params)  # 500 only costs paging; unpaged is complete)
                rows = self._rows(response)
            else:
                rows = self._get_rows(path, what, query)
            if ledger and (len(rows) > page_size or (page > 1 and rows and rows == previous)):
                # pageSize or page was ignored: the server answered with every row (or page 1 again)
                return self._settle_unpaged(path, what, params)
            if ledger and self.ledger_paging == "auto":
                self.ledger_paging = "page_size"
            out += rows
            if len(rows) < page_size:
                return out
            previous, page = rows, page + 1

    def _settle_unpaged(self, path: str, what: str, params: dict | None) -> list[dict]:
        self.ledger_paging = "unpaged"
        return self._get_rows(path, what, params)

    @staticmethod
    def filters(*conditions: tuple[str, str, Any] | tuple[str, str, Any, str]) -> dict[str, str]:
        """filterHash parameters from (column, operator, value[, type]) with AND between them. Each
        value is its own query parameter (URL-encoded by httpx), so no value can add a condition,
        close a bracket or widen the query. Only comparison operators are allowed: ``like`` and
        ``in`` give meaning to characters inside the value."""
        params: dict[str, str] = {}
        for i, condition in enumerate(conditions):
            name, opp, value = condition[0], condition[1], condition[2]
            if opp not in ("=", "!=", "<", "<=", ">", ">="):
                raise ValueError(f"operator {opp!r} is not allowed for data values")
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
                raise ValueError(f"bad column name {name!r}")
            if isinstance(value, datetime):
                value = vp_datetime(value)
            params[f"filterHash[{i}][name]"] = name
            params[f"filterHash[{i}][value]"] = str(value)
            params[f"filterHash[{i}][opp]"] = opp
            params[f"filterHash[{i}][condition]"] = "AND"
            params[f"filterHash[{i}][seq]"] = str(i)
            if len(condition) > 3:
                params[f"filterHash[{i}][type]"] = str(condition[3])
        return params

    def authenticate(self) -> None:
        """Sign in now (otherwise the first request does): surfaces credential problems early."""
        self.auth.headers()

    # --- hubs -----------------------------------------------------------------------------------
    def _modified(self, path: str, what: str, since: datetime | None, until: datetime | None,
                  extra: dict | None = None) -> Iterator[dict]:
        conditions: list[tuple] = []
        if since is not None:
            conditions.append(("ModDate", ">=", since, "datetime"))
        if until is not None:
            conditions.append(("ModDate", "<", until, "datetime"))
        yield from self._paged(path, what, {**(extra or {}), **self.filters(*conditions)})

    def list_firms(self, modified_since: datetime | None = None, modified_before: datetime | None = None) -> list[Firm]:
        """Firms, optionally in a half-open ModDate window [since, before) for polling."""
        return [Firm.model_validate(r) for r in self._modified("firm", "the firm list", modified_since, modified_before)]

    def get_firm(self, client_id: str) -> Firm | None:
        try:
            rows = self._get_rows(f"firm/{client_id}", f"firm {client_id}")
        except NotFoundError:
            return None
        return Firm.model_validate(rows[0]) if rows else None

    def find_firms_by_name(self, name: str) -> list[Firm]:
        """Firms whose Name equals ``name`` exactly (the server compares case-insensitively; the
        exact-case match is checked here)."""
        rows = self._get_rows("firm", f"the firm search for {name!r}", self.filters(("Name", "=", name)))
        return [Firm.model_validate(r) for r in rows if str(r.get("Name", "")).strip() == name.strip()]

    def find_vendor(self, vendor_code: str) -> Firm | None:
        code = vendor_code.strip()
        rows = self._get_rows("firm", f"vendor {code}", self.filters(("Vendor", "=", code)))
        return Firm.model_validate(rows[0]) if rows else None

    def upsert_firm(self, name: str, *, client: bool = False, vendor: bool = False, category: str = "SUP",
                    fields: dict[str, Any] | None = None,
                    create_fields: dict[str, Any] | None = None) -> FirmUpsert:
        """Find a firm by exact name (lowest ClientID wins when names collide, as Deltek's own
        integrations do), make it a client and/or vendor with ``fields``; create it if missing.
        ``create_fields`` are sent only when creating (e.g. a chosen Vendor code, which an
        existing vendor's code must not be changed to)."""
        if not (client or vendor):
            raise ValueError("a firm must be a client, a vendor or both")
        wanted = dict(fields or {})
        existing = sorted(self.find_firms_by_name(name), key=lambda f: f.ClientID)
        if existing:
            firm = existing[0]
            changes = {k: v for k, v in wanted.items() if (firm.model_extra or {}).get(k, getattr(firm, k, None)) != v}
            if client and not firm.is_client:
                changes["ClientInd"] = "Y"
            if vendor and not firm.is_vendor:
                changes.update({"VendorInd": "Y", "Category": firm.Category or category})
            if not changes:
                return FirmUpsert(firm=firm, action="unchanged")
            rows = self._rows(self._call("PUT", f"firm/{firm.ClientID}", f"the update of firm {name!r}", json=changes))
            return FirmUpsert(firm=Firm.model_validate(rows[0]) if rows else firm, action="updated")
        body = {"Name": name, "Status": "A", "ClientInd": "Y" if client else "N", "VendorInd": "Y" if vendor else "N",
                **({"Category": category} if vendor else {}), **wanted, **(create_fields or {})}
        for attempt in range(1, self._retry.max_attempts + 1):
            try:
                rows = self._rows(self._call("POST", "firm", f"the creation of firm {name!r}", once=True, json=body))
                created = Firm.model_validate(rows[0])
                if vendor and not created.Vendor:  # autonumbered codes can be missing from the answer
                    created = self.get_firm(created.ClientID) or created
                return FirmUpsert(firm=created, action="created")
            except TransientError:
                if attempt == self._retry.max_attempts:
                    raise
                self._sleep(min(self._retry.max_delay, self._retry.base_delay * 2 ** attempt))
                found = sorted(self.find_firms_by_name(name), key=lambda f: f.ClientID)
                if found:  # the lost answer had created it
                    return FirmUpsert(firm=found[0], action="created")
        raise AssertionError("unreachable")

    def create_firm(self, name: str, *, client: bool = False, vendor: bool = False, category: str = "SUP",
                    fields: dict[str, Any] | None = None, create_fields: dict[str, Any] | None = None) -> Firm:
        """A new firm even when others carry the same name (namesakes are other people: never
        reused by name). Sent once per attempt; after a lost answer the one firm with this name
        that was not there before is the one created, and only when there is none is it sent again."""
        if not (client or vendor):
            raise ValueError("a firm must be a client, a vendor or both")
        before = {f.ClientID for f in self.find_firms_by_name(name)}
        body = {"Name": name, "Status": "A", "ClientInd": "Y" if client else "N", "VendorInd": "Y" if vendor else "N",
                **({"Category": category} if vendor else {}), **(fields or {}), **(create_fields or {})}
        for attempt in range(1, self._retry.max_attempts + 1):
            try:
                rows = self._rows(self._call("POST", "firm", f"the creation of firm {name!r}", once=True, json=body))
                created = Firm.model_validate(rows[0])
                return (self.get_firm(created.ClientID) or created) if vendor and not created.Vendor else created
            except TransientError:
                new = [f for f in self.find_firms_by_name(name) if f.ClientID not in before]
                if len(new) == 1:  # the lost answer had created it
                    return new[0]
                if new or attempt == self._retry.max_attempts:
                    raise
                self._sleep(min(self._retry.max_delay, self._retry.base_delay * 2 ** attempt))
        raise AssertionError("unreachable")

    def update_firm(self, client_id: str, fields: dict[str, Any]) -> Firm:
        """Change a firm's fields (e.g. its Name after a rename in ServiceTitan)."""
        rows = self._rows(self._call("PUT", f"firm/{client_id}", f"the update of firm {client_id}", json=fields))
        return Firm.model_validate(rows[0]) if rows else self.get_firm(client_id)

    def list_projects(self, modified_since: datetime | None = None, modified_before: datetime | None = None,
                      level: Literal["wbs1", "wbs2", "wbs3"] = "wbs1") -> list[Project]:
        rows = self._modified("project", "the project list", modified_since, modified_before, {"wbstype": level})
        return [Project.model_validate(r) for r in rows]

    def get_project(self, wbs1: str) -> Project | None:
        try:
            rows = self._get_rows(f"project/{wbs1}", f"project {wbs1}")
        except NotFoundError:
            return None
        return Project.model_validate(rows[0]) if rows else None

    def upsert_project(self, wbs1: str, name: str, org: str, client_id: str = "", charge_type: str = "R",
                       fields: dict[str, Any] | None = None) -> Project:
        """Create the project (WBS1) or bring Name / Org / ClientID / fields up to date."""
        wanted = {"Name": name, "Org": org, **({"ClientID": client_id} if client_id else {}), **(fields or {})}
        current = self.get_project(wbs1)
        if current is None:
            try:
                body = {"WBS1": wbs1, "WBS2": " ", "WBS3": " ", "ChargeType": charge_type, "Status": "A", **wanted}
                rows = self._rows(self._call("POST", "project", f"the creation of project {wbs1}", json=body))
                return Project.model_validate(rows[0])
            except ConflictError:  # created by an attempt whose answer was lost
                current = self.get_project(wbs1)
                if current is None:
                    raise
        data = current.model_dump()
        changes = {k: v for k, v in wanted.items() if data.get(k) != v}
        if not changes:
            return current
        rows = self._rows(self._call("PUT", f"project/{wbs1}", f"the update of project {wbs1}", json=changes))
        return Project.model_validate(rows[0])

    def list_organizations(self) -> list[Organization]:
        return [Organization.model_validate(r) for r in self._paged("organization", "the organization list")]

    def list_accounts(self) -> list[Account]:
        return [Account.model_validate(r) for r in self._paged("Accounts", "the chart of accounts")]

    def create_account(self, number: str, name: str, account_type: int) -> Account:
        body = {"Account": number, "Name": name, "Type": account_type, "Status": "A", "CashBasisAccount": "",
                "UnrealizedLossAccount": "", "UnrealizedGainAccount": "", "CashBasisRevaluation": ""}
        return Account.model_validate(self._rows(self._call("POST", "Accounts", f"account {number}", json=body))[0])

    def list_banks(self) -> list[Bank]:
        return [Bank.model_validate(r) for r in self._get_rows("BankCode/CFGBANKS", "the bank list")]

    def list_periods(self) -> list[Period]:
        return [Period.model_validate(r) for r in self._get_rows("Settings/Period", "the period list")]

    def key_formats(self) -> dict:
        rows = self._get_rows("KeyCvt/CFGFormat", "the key formats")
        return rows[0] if rows else {}

    @property
    def refno_length(self) -> int:
        """The tenant's RefnoLength (invoice and reference numbers), read once from CFGFormat
        unless given: fieldledger sends invoice numbers zero-padded to it, so whether the tenant
        pads on save or stores numbers as given, the stored number is the one we look up."""
        with self._settings_lock:
            if self._refno_length is None:
                self._refno_length = int(self.key_formats().get("RefnoLength") or 12)
            return self._refno_length

    def invoice_number(self, number: str) -> str:
        """An invoice number as fieldledger sends and looks it up: zero-padded to RefnoLength."""
        return pad_document_number(number, self.refno_length)

    def invoice_forms(self, number: str) -> list[str]:
        """The forms an invoice number can be stored in: padded (ours, or a padding tenant's) and
        as given, with or without its leading zeros (a tenant that keeps numbers as typed)."""
        text = str(number).strip()
        return [form for form in dict.fromkeys([self.invoice_number(text), text, text.lstrip("0")]) if form]

    def period_for(self, day: date, periods: list[Period] | None = None) -> int:
        """The open accounting period (YYYYPP) holding ``day``; a clear error if it is closed or
        not set up, so nothing is posted into the wrong period."""
        for period in periods if periods is not None else self.list_periods():
            start, end = period.AccountPdStart, period.AccountPdEnd
            if start and end and start.date() <= day <= end.date():
                if period.closed:
                    raise ValidationError(
                        f"accounting period {period.Period} (holding {day}) is closed in Vantagepoint: reopen it "
                        "there (Settings > Accounting Periods) or correct the document date in ServiceTitan, then "
                        "`fieldledger replay`; nothing was posted", system=SYSTEM, path="Settings/Period")
                return period.Period
        raise ValidationError(f"Vantagepoint has no accounting period for {day}: set up the period first",
                              system=SYSTEM, path="Settings/Period")

    # --- ledger ---------------------------------------------------------------------------------
    def ledger(self, trans_type: str, posted_from: datetime | None = None, posted_before: datetime | None = None,
               *more: tuple, date_column: Literal["PostDate", "ModDate"] = "PostDate",
               page_size: int = 1000) -> list[LedgerRow]:
        """Posted ledger rows of one transaction type in a half-open window [from, before) on
        PostDate (or ModDate), plus any extra (column, operator, value) conditions."""
        conditions: list[tuple] = []
        if posted_from is not None:
            conditions.append((date_column, ">=", posted_from, "datetime"))
        if posted_before is not None:
            conditions.append((date_column, "<", posted_before, "datetime"))
        conditions.extend(more)
        rows = self._paged(f"PSALedger/{trans_type.upper()}", f"the {trans_type} ledger", self.filters(*conditions),
                           page_size=page_size)
        return [LedgerRow.model_validate(r) for r in rows]

    def ledger_by_batch(self, trans_type: str, batch: str) -> list[LedgerRow]:
        return self.ledger(trans_type, None, None, ("Batch", "=", batch))

    def find_posted_invoice(self, invoice_number: str, wbs1: str | None = None) -> list[LedgerRow]:
        """Ledger rows of an AR invoice (any batch), by its number as Vantagepoint stores it."""
        rows = []
        for number in self.invoice_forms(invoice_number):
            conditions: list[tuple] = [("Invoice", "=", number)]
            if wbs1:
                conditions.append(("WBS1", "=", wbs1))
            rows += self.ledger("IN", None, None, *conditions)
        return rows

    def find_posted_voucher(self, vendor: str, invoice: str) -> list[LedgerRow]:
        return self.ledger("AP", None, None, ("Vendor", "=", vendor), ("Invoice", "=", invoice))

    def find_posted_receipt(self, ref_no: str) -> list[LedgerRow]:
        return self.ledger("CR", None, None, ("RefNo", "=", ref_no))

    # --- batched look-ups -----------------------------------------------------------------------
    @classmethod
    def filters_any(cls, column: str, values: list[str]) -> dict[str, str]:
        """filterHash parameters for rows whose ``column`` equals any of ``values``: equality
        conditions joined by OR, each value its own URL-encoded parameter (as in ``filters``)."""
        params = cls.filters(*[(column, "=", value) for value in values])
        for i in range(1, len(values)):
            params[f"filterHash[{i}][condition]"] = "OR"
        return params

    @staticmethod
    def value_chunks(values: Iterable[str], max_count: int = 10, max_chars: int = 1800) -> Iterator[list[str]]:
        """Distinct values in groups small enough for one query string (IIS refuses query strings
        over 2048 characters by default); values are counted URL-encoded (names can be long and
        non-ASCII) plus the ~150 characters of a condition's five filterHash keys."""
        chunk: list[str] = []
        size = 0
        for value in dict.fromkeys(values):
            cost = len(quote(value)) + 150
            if chunk and (len(chunk) == max_count or size + cost > max_chars):
                yield chunk
                chunk, size = [], 0
            chunk.append(value)
            size += cost
        if chunk:
            yield chunk

    def find_firms_where(self, column: str, values: Iterable[str]) -> list[Firm]:
        """Firms whose ``column`` (e.g. Name, Vendor) equals any of ``values``, in as few requests
        as fit; the server compares case-insensitively, callers compare exactly."""
        firms: list[Firm] = []
        for chunk in self.value_chunks(values):
            rows = self._paged("firm", f"the firm search on {column}", self.filters_any(column, chunk))
            firms += [Firm.model_validate(r) for r in rows]
        return firms

    def ledger_where(self, trans_type: str, column: str, values: Iterable[str]) -> list[LedgerRow]:
        """Posted ledger rows of one transaction type whose ``column`` equals any of ``values``."""
        rows: list[LedgerRow] = []
        for chunk in self.value_chunks(values):
            found = self._paged(f"PSALedger/{trans_type.upper()}", f"the {trans_type} ledger",
                                self.filters_any(column, chunk), page_size=1000)
            rows += [LedgerRow.model_validate(r) for r in found]
        return rows

    def unposted_files(self, trans_type: str) -> dict[str, Decimal]:
        """Batch (upper case) -> control total of every unposted file of one type (the
        ``{xx}Landing`` list): what an earlier attempt saved but never posted."""
        code = trans_type.upper()
        rows = self._paged(f"DataEntry/{code.lower()}Landing", f"the unposted {code} files",
                           self.filters(("Posted", "=", "N")))
        return {str(r.get("Batch", "")).upper(): Decimal(str(r.get("Total") or 0)) for r in rows
                if str(r.get("Posted", "N")).upper() != "Y"}

    # --- transaction files ----------------------------------------------------------------------
    def find_batch(self, trans_type: str, batch: str) -> BatchStatus | None:
        """What Vantagepoint holds under ``batch``: ledger rows (posted) or a DataEntry file
        (posted or not). None when neither exists."""
        code = trans_type.upper()
        rows = self.ledger_by_batch(code, batch)
        if rows:
            return BatchStatus(trans_type=code, batch=batch, posted=True, post_seq=rows[0].PostSeq,
                               period=rows[0].Period)
        return self._file_status(code, batch)

    def _file_status(self, code: str, batch: str) -> BatchStatus | None:
        prefix = code.lower()
        try:
            control = self._get_rows(f"DataEntry/{prefix}Control/{batch}", f"{code} file {batch}")
        except NotFoundError:
            return None
        if not control:
            return None
        row = control[0]
        masters = self._get_rows(f"DataEntry/{prefix}Master/{batch}", f"{code} file {batch}")
        return BatchStatus(trans_type=code, batch=batch, posted=row.get("Posted") == "Y",
                           post_seq=int(row.get("PostSeq") or 0) or None, period=int(row.get("Period") or 0) or None,
                           total=Decimal(str(row.get("Total") or 0)),
                           master_keys=[str(m.get(MASTER_KEYS[code], "")) for m in masters])

    def create_file(self, tf: TransactionFile) -> None:
        """Save the file unposted, in the shape the tenant's "Use Files to Group Transactions"
        setting takes (``file_grouping``): one ``POST {xx}Control`` with the documents as sibling
        arrays, or one ``POST {xx}Master/{Batch}|{Key}`` per document with its lines nested (the
        tenant then opens the batch itself)."""
        tf.check()
        if self.file_grouping != "ungrouped":
            try:
                self._call("POST", f"DataEntry/{tf.trans_type.lower()}Control", f"{tf.trans_type} file {tf.batch}",
                           json=tf.body())
                self.file_grouping = "grouped"
                return
            except ValidationError as exc:
                if self.file_grouping == "grouped" or not _GROUPING_OFF.search(str(exc)):
                    raise
                self.file_grouping = "ungrouped"
        self._create_documents(tf)

    def _create_documents(self, tf: TransactionFile) -> None:
        """The ungrouped create. A document an earlier attempt already saved answers "already
        exists"; it is kept (submit compares the whole file before posting)."""
        code, prefix = tf.trans_type, tf.trans_type.lower()
        for key, body in tf.document_bodies():
            try:
                self._call("POST", f"DataEntry/{prefix}Master/{tf.batch}|{key}", f"{code} document {key} of file "
                           f"{tf.batch}", json=body)
            except ConflictError:
                continue

    def delete_file(self, trans_type: str, batch: str) -> None:
        self._call("DELETE", f"DataEntry/{trans_type.lower()}Control/{batch}", f"the deletion of file {batch}")

    def post_files(self, files: list[tuple[str, str, int]], description: str = "") -> list[PostResult]:
        """``PUT /DataEntry/PostTransFile`` for (trans_type, batch, period) triples in one call.
        Never resent by the HTTP layer once it may have arrived: that a posted file is refused a
        second time is only inferred, so a lost answer (AnswerLost) goes back to the caller, who
        asks the ledger before posting again."""
        parms = [{"batch": b, "transtype": t.upper(), "period": str(p), "description": description or b}
                 for t, b, p in files]
        try:
            response = self._call("PUT", "DataEntry/PostTransFile",
                                  "the posting of " + ", ".join(b for _, b, _ in files), json={"parms": parms})
        except (ValidationError, ConflictError) as exc:
            # Whether a file that cannot post gets 200 + retList 0 or an HTTP 400 is not documented;
            # a 400 is the same answer for every file of the request (none was posted).
            message = error_text(exc.body_excerpt or "") if exc.body_excerpt else str(exc)
            return [PostResult(trans_type=t.upper(), batch=b, posted=False, period=p, message=message)
                    for t, b, p in files]
        results = []
        for entry in parse_post_response(response.text):
            ok = entry["ret"].strip() == "1"
            results.append(PostResult(
                trans_type=entry["type"], batch=entry["batch"], posted=ok,
                period=int(entry["period"]) if entry["period"].strip().isdigit() else None,
                post_seq=int(entry["postseq"]) if ok and entry["postseq"].strip().isdigit() else None,
                message=entry["msg"]))
        return results

    def submit(self, tf: TransactionFile) -> SubmitResult:
        """Post a transaction file exactly once. Looks before it writes: our batch id in the ledger
        (already posted), then each document number (AR invoice, AP vendor + invoice) posted under
        another batch (found, skipped), then a leftover unposted file (reused if identical, else
        replaced). A create or a post whose answer was lost is caught by the same look-ups."""
        tf.check()
        code = tf.trans_type
        rows = self._ledger_rows_for(tf)
        ours = [r for r in rows if r.Batch.upper() == tf.batch.upper()]
        if ours:
            return SubmitResult(trans_type=code, batch=tf.batch, outcome="already_posted", post_seq=ours[0].PostSeq,
                                period=ours[0].Period, message="batch already in the ledger")
        if rows:
            return SubmitResult(trans_type=code, batch=tf.batch, outcome="found_existing", post_seq=rows[0].PostSeq,
                                period=rows[0].Period, message=f"already posted in batch {rows[0].Batch}")
        status = self._file_status(code, tf.batch)
        if status is not None and status.posted:
            return SubmitResult(trans_type=code, batch=tf.batch, outcome="already_posted", post_seq=status.post_seq,
                                period=status.period, message="file already posted")
        if status is not None and not self._same_file(status, tf):
            self.delete_file(code, tf.batch)  # a different, unposted leftover: replace it
            status = None
        if status is None:
            status = self._create_once(tf)
            if status is not None and status.posted:
                return SubmitResult(trans_type=code, batch=tf.batch, outcome="already_posted",
                                    post_seq=status.post_seq, period=status.period, message="file already posted")
        try:
            result = self.post_files([(code, tf.batch, tf.period)], tf.description)[0]
        except TransientError:
            # The post may have happened although no answer came: ask the ledger, then post again
            # only if it is not there (never on the belief that a repeated post is refused).
            rows = self.ledger_by_batch(code, tf.batch)
            if rows:
                return SubmitResult(trans_type=code, batch=tf.batch, outcome="already_posted",
                                    post_seq=rows[0].PostSeq, period=rows[0].Period, message="posted; its answer was lost")
            result = self.post_files([(code, tf.batch, tf.period)], tf.description)[0]
        if result.posted:
            return SubmitResult(trans_type=code, batch=tf.batch, outcome="posted", post_seq=result.post_seq,
                                period=result.period, message=result.message)
        rows = self.ledger_by_batch(code, tf.batch)  # e.g. a retried post whose first answer was lost
        if rows:
            return SubmitResult(trans_type=code, batch=tf.batch, outcome="already_posted", post_seq=rows[0].PostSeq,
                                period=rows[0].Period, message="posted by an earlier attempt")
        raise ValidationError(f"Vantagepoint did not post {code} file {tf.batch}: {result.message}", system=SYSTEM,
                              method="PUT", path="DataEntry/PostTransFile", status=200)

    def _create_once(self, tf: TransactionFile) -> BatchStatus | None:
        """Create the file; when its answer is lost or it "already exists", read the file back
        instead of creating it again, and create once more only if Vantagepoint has no such file."""
        for attempt in range(2):
            try:
                self.create_file(tf)
                return None
            except (ConflictError, TransientError) as exc:
                status = self._file_status(tf.trans_type, tf.batch)
                if status is not None and self._same_file(status, tf):
                    return status
                if isinstance(exc, ConflictError) or status is not None or attempt:
                    raise
        return None

    def _ledger_rows_for(self, tf: TransactionFile) -> list[LedgerRow]:
        """Posted rows that stand for this file: for IN and AP the rows of each document number in
        any batch (one query finds both our own batch and a duplicate), else the rows of our batch."""
        if tf.trans_type == "IN":
            return [r for m in tf.masters for r in self.find_posted_invoice(m["Invoice"], m["WBS1"])]
        if tf.trans_type == "AP" and all(m.get("Invoice") for m in tf.masters):
            return [r for m in tf.masters for r in self.find_posted_voucher(m["Vendor"], m["Invoice"])]
        return self.ledger_by_batch(tf.trans_type, tf.batch)

    @staticmethod
    def _same_file(status: BatchStatus, tf: TransactionFile) -> bool:
        return status.total == tf.total and sorted(k.upper() for k in status.master_keys) == sorted(
            k.upper() for k in tf.master_keys)


# --- Dagster resource -----------------------------------------------------------------------------


class VantagepointResource(VaultClientResource):
    """Vantagepoint for one connection. Config holds no secrets: the client id, client secret,
    user name and password come from the vault (vp_client_id, vp_client_secret, vp_username,
    vp_password) when a client is opened; clients opened in a run are closed at teardown."""

    secret_prefix: ClassVar[str] = "vp_"
    base_url: str
    database: str
    rate_per_second: float = 10.0
    timeout_seconds: float = 30.0
    ledger_paging: str = "auto"  # LedgerPaging
    file_grouping: str = "auto"  # FileGrouping

    def build_client(self, secrets: dict[str, str]) -> VantagepointClient:
        return VantagepointClient(self.base_url, self.database, rate_per_second=self.rate_per_second,
                                  timeout=self.timeout_seconds, ledger_paging=self.ledger_paging,  # type: ignore[arg-type]
                                  file_grouping=self.file_grouping, **secrets)  # type: ignore[arg-type]
