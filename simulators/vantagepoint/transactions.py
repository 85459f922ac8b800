"""Transaction entry (``/DataEntry``): the control -> master -> detail model for IN (AR invoices),
CR (cash receipts), AP (vouchers) and JE (journal entries), its validations, and posting
(``PUT /DataEntry/PostTransFile``) into the ledger and open AR.

Creates and updates succeed while a file is out of balance (the response shows DiffTotal); the
balance and period checks run again at post time. Posted files cannot be changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from simulators.vantagepoint.seed import PROJECT_ACCOUNT_TYPES
from simulators.vantagepoint.state import TenantState, TransFile, blank, normalize_fields
from simulators.vantagepoint.wire import VPError, parse_vp_datetime, period_of, to_decimal, vp_datetime

_CONTROL_COMMON = (
    "Batch", "Description", "Recurring", "EndDate", "Total", "Selected", "Posted", "Creator", "Period",
    "Company", "DefaultCurrencyCode",
)
_CURRENCY = ("CurrencyCode", "CurrencyExchangeOverrideMethod", "CurrencyExchangeOverrideDate",
             "CurrencyExchangeOverrideRate")
POSTED_MESSAGE = "Posted transaction files cannot be modified."
INVOICE_SECTIONS = frozenset("FLCEUATI")


@dataclass(frozen=True)
class TypeSpec:
    code: str
    name: str  # as in PostTransFile messages
    master_key: str
    control_fields: tuple[str, ...]
    master_fields: tuple[str, ...]
    detail_fields: tuple[str, ...]
    amount_fields: tuple[str, ...]
    extra_arrays: tuple[str, ...] = ()

    @property
    def prefix(self) -> str:
        return self.code.lower()


SPECS: dict[str, TypeSpec] = {
    "IN": TypeSpec(
        "IN", "Invoices", "Invoice",
        _CONTROL_COMMON + ("RetTotal", "DefaultTaxCode"),
        ("Batch", "Invoice", "WBS1", "WBS2", "WBS3", "TransDate", "DueDate", "TransComment", "Seq", "Status",
         "Diary", "DiaryNo") + _CURRENCY,
        ("Batch", "Invoice", "WBS1", "WBS2", "WBS3", "PKey", "Seq", "Description", "InvoiceSection", "TaxCode",
         "Account", "Amount", "RetAmount", "TaxBasis", "Retainer", "LinkWBS1", "LinkWBS2", "LinkWBS3",
         "CreditMemoRefNo"),
        ("Amount", "RetAmount", "TaxBasis"),
    ),
    "CR": TypeSpec(
        "CR", "Cash Receipts", "RefNo",
        _CONTROL_COMMON + ("DefaultBank",),
        ("Batch", "RefNo", "TransDate", "TransComment", "Posted", "BankCode", "Seq", "Status", "Diary", "DiaryNo")
        + _CURRENCY,
        ("Batch", "RefNo", "PKey", "Seq", "Description", "WBS1", "WBS2", "WBS3", "Account", "Amount", "Interest",
         "TaxCode", "TaxBasis", "Retainer", "CurrencyExchangeOverrideRate", "SourceCurrencyCode", "SourceBalance",
         "SourceAmount", "SourceExchangeInfo", "LinkCompany", "PreInvoice", "Invoice"),
        ("Amount", "TaxBasis", "SourceAmount"),
    ),
    "AP": TypeSpec(
        "AP", "AP Vouchers", "MasterPKey",
        _CONTROL_COMMON + ("DefaultLiab", "DefaultBank", "DefaultDate"),
        ("Batch", "MasterPKey", "Vendor", "InvoiceDate", "Invoice", "TransDate", "TransComment", "LiabCode",
         "BankCode", "PayTerms", "PayDate", "Address", "Seq", "Voucher", "PaymentCurrencyCode", "Status", "Diary",
         "DiaryNo", "AllowAssetEntries") + _CURRENCY,
        ("Batch", "MasterPKey", "PKey", "Seq", "Description", "WBS1", "WBS2", "WBS3", "Account", "Amount",
         "SuppressBill", "NetAmount", "PONumber", "PaymentAmount", "ExpenseCode", "OriginatingVendor", "CreateAsset",
         "TaxCode"),
        ("Amount", "NetAmount", "PaymentAmount"),
        ("apControlDefaultTaxCodes",),
    ),
    "JE": TypeSpec(
        "JE", "Journal Entries", "RefNo",
        _CONTROL_COMMON + ("CreditsTotal", "AllowTaxEntries", "RecurSchedule", "Reverse", "ReverseDate",
                           "ReverseAutoPost"),
        ("Batch", "RefNo", "TransDate", "Description", "Type", "UpdateBilled", "Seq", "Status", "Diary", "DiaryNo")
        + _CURRENCY,
        ("Batch", "RefNo", "PKey", "Seq", "Description", "WBS1", "WBS2", "WBS3", "Account", "DebitAmount",
         "CreditAmount", "SuppressBill", "LinkCompany"),
        ("DebitAmount", "CreditAmount"),
        ("jeDetailTax",),
    ),
}
LEDGER_COLUMNS = (
    "TransType", "SubType", "Batch", "Company", "Period", "PostSeq", "PKey", "WBS1", "WBS2", "WBS3", "Account",
    "Org", "RefNo", "TransDate", "PostDate", "Desc1", "Desc2", "Amount", "TransactionAmount",
    "TransactionCurrencyCode", "Invoice", "InvoiceSection", "CreditMemoRefNo", "Vendor", "Voucher", "BankCode",
    "TaxCode", "TaxBasis", "BillStatus", "LinkCompany", "ModDate",
)
LANDING_COLUMNS = (
    "TransType", "Batch", "Description", "Posted", "PostStatus", "PostDate", "PostSeq", "PostUser", "Period",
    "RawPeriod", "FmtPeriod", "Total", "Creator", "Company", "ModDate",
)
AR_COLUMNS = ("WBS1", "Invoice", "InvoiceDate", "BillingClientID", "OriginalAmt", "Paid", "Balance", "Org")


def spec_for(prefix: str) -> TypeSpec:
    spec = SPECS.get(prefix.upper())
    if spec is None:
        raise VPError(f"Transaction type {prefix} is not supported.", status=404)
    return spec


def _pad_invoice(state: TenantState, value: object) -> str:
    """Invoice numbers as saved: zero-padded to RefnoLength, or as given (``invoice_padding``)."""
    text = str(value or "").strip()
    if state.settings.invoice_padding == "as_given":
        return text
    width = state.settings.key_formats.refno_length
    return text.rjust(width, "0") if text and len(text) < width else text


def _as_list(value: object) -> list[dict]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]  # practitioners send a single master object; VP accepts it
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return list(value)
    raise VPError("Transaction rows must be JSON objects.")


def _split_body(spec: TypeSpec, body: dict) -> tuple[dict, list[dict], list[dict], dict[str, list[dict]]]:
    if not isinstance(body, dict):
        raise VPError("The request body must be a JSON object.")
    masters, details, extras, control = [], [], {}, {}
    for key, value in body.items():
        lowered = key.lower()
        if lowered == f"{spec.prefix}master":
            masters = _as_list(value)
        elif lowered == f"{spec.prefix}detail":
            details = _as_list(value)
        elif lowered in {e.lower() for e in spec.extra_arrays}:
            extras[next(e for e in spec.extra_arrays if e.lower() == lowered)] = _as_list(value)
        else:
            control[key] = value
    return control, masters, details, extras


# --- validation -------------------------------------------------------------------------------


def _check_period_value(state: TenantState, spec: TypeSpec, raw: object, errors: list[str]) -> int | None:
    try:
        period = int(str(raw).strip())
    except ValueError:
        errors.append(f"'{raw}' is not a valid Period (YYYYPP).")
        return None
    if period == 0 and spec.code == "AP":
        return 0
    if not (190001 <= period <= 999912 and 1 <= period % 100 <= 99):
        errors.append(f"'{raw}' is not a valid Period (YYYYPP).")
        return None
    state.require_open_period(period, errors)
    return period


def _validate_control(state: TenantState, spec: TypeSpec, raw: dict, errors: list[str], new: bool) -> dict:
    control = normalize_fields(raw, spec.control_fields, errors)
    if new:
        batch = str(control.get("Batch") or "").strip()
        if not batch:
            errors.append(f"Please provide a Batch for table {spec.prefix}Control")
        state.check_length(f"{spec.prefix}Control", "Batch", batch, 32, errors)
        if batch and batch.upper() in state.files[spec.code]:
            errors.append(f"Record {batch} already exists and cannot be added.")
        control["Batch"] = batch
        if "Period" not in control:
            errors.append(f"Please provide a Period for table {spec.prefix}Control")
    if "Period" in control:
        control["Period"] = _check_period_value(state, spec, control["Period"], errors)
    state.check_length(f"{spec.prefix}Control", "Description", control.get("Description"), 40, errors)
    company = str(control.get("Company") or "").strip()
    if company and company != state.company["Company"]:
        errors.append(f"Company {company} does not exist.")
    for key in ("Total", "RetTotal", "CreditsTotal"):
        if key in control:
            try:
                control[key] = to_decimal(control[key], key)
            except VPError as exc:
                errors.extend(exc.messages)
    bank = str(control.get("DefaultBank") or "").strip()
    if bank and bank not in state.banks:
        errors.append(f"Bank Code {bank} does not exist.")
    liab = str(control.get("DefaultLiab") or "").strip()
    if liab and liab not in state.liability_codes:
        errors.append(f"Liability Code {liab} does not exist.")
    return control


def _check_date(state: TenantState, value: object, label: str, errors: list[str], required: bool = True) -> str:
    try:
        parsed = parse_vp_datetime(value)
    except ValueError:
        errors.append(f"'{value}' is not a valid {label}.")
        return ""
    if parsed is None:
        if required:
            errors.append(f"Please provide a {label}.")
        return ""
    if label == "Transaction Date" and state.settings.check_transdate_period:
        state.require_open_period(period_of(parsed), errors, what=f"Transaction date {parsed.date()}: period")
    return vp_datetime(parsed)


def _check_project(state: TenantState, row: dict, where: str, errors: list[str], required: bool) -> dict | None:
    wbs1 = str(row.get("WBS1") or "").strip()
    row["WBS2"], row["WBS3"] = blank(row.get("WBS2")), blank(row.get("WBS3"))
    if not wbs1:
        if required:
            errors.append(f"{where}: a project (WBS1) is required.")
        row["WBS1"] = ""
        return None
    top = state.project(wbs1)
    if top is None:
        errors.append(f"{where}: project {wbs1} does not exist.")
        return None
    row["WBS1"] = top["WBS1"]
    if top["Status"] != "A":
        errors.append(f"{where}: project {wbs1} is not active and cannot accept new charges.")
    if row["WBS2"] == " " and top["SubLevel"] == "Y":
        errors.append(f"{where}: project {wbs1} has phases; charge the lowest level (WBS2), not the project.")
        return top
    if row["WBS2"] != " ":
        phase = state.project(wbs1, row["WBS2"])
        if phase is None:
            errors.append(f"{where}: phase {wbs1}/{row['WBS2'].strip()} does not exist.")
            return top
        if row["WBS3"] == " " and phase["SubLevel"] == "Y":
            errors.append(f"{where}: phase {wbs1}/{row['WBS2'].strip()} has tasks; charge the lowest level (WBS3).")
        elif row["WBS3"] != " " and state.project(wbs1, row["WBS2"], row["WBS3"]) is None:
            errors.append(f"{where}: task {wbs1}/{row['WBS2'].strip()}/{row['WBS3'].strip()} does not exist.")
    return top


def _check_account(state: TenantState, row: dict, where: str, errors: list[str]) -> dict | None:
    number = str(row.get("Account") or "").strip()
    if not number:
        errors.append(f"{where}: an Account is required.")
        return None
    state.check_length(f"{where.split()[0]}", "Account", number, state.settings.key_formats.account_length, errors)
    account = state.accounts.get(number)
    if account is None:
        errors.append(f"{where}: account {number} does not exist.")
        return None
    if account["Status"] != "A":
        errors.append(f"{where}: account {number} is inactive.")
    return account


def _validate_master(state: TenantState, spec: TypeSpec, f: TransFile, raw: dict, errors: list[str]) -> dict:
    table = f"{spec.prefix}Master"
    m = normalize_fields(raw, spec.master_fields, errors)
    batch = f.control["Batch"]
    if str(m.get("Batch") or batch).strip().upper() != batch.upper():
        errors.append(f"{table}: Batch {m.get('Batch')} does not match the file's batch {batch}.")
    m["Batch"] = batch
    key = spec.master_key
    if spec.code == "IN":
        m["Invoice"] = _pad_invoice(state, m.get("Invoice"))
    value = str(m.get(key) or "").strip()
    m[key] = value
    if not value:
        errors.append(f"Please provide a {key} for table {table}")
    limit = 32 if key == "MasterPKey" else state.settings.key_formats.refno_length
    state.check_length(table, key, value, limit, errors)
    if value and any(x[key].upper() == value.upper() for x in f.masters):
        errors.append(f"Record {value} already exists and cannot be added.")
    where = f"{table} {value}"
    m["TransDate"] = _check_date(state, m.get("TransDate"), "Transaction Date", errors)
    state.check_length(table, "TransComment", m.get("TransComment"), 255, errors)
    if spec.code == "IN":
        top = _check_project(state, m, where, errors, required=True)
        if top is not None and top["ChargeType"] != "R":
            errors.append(f"{where}: project {top['WBS1']} is not a regular project (ChargeType {top['ChargeType']});"
                          " only regular projects can be invoiced.")
        if m.get("DueDate"):
            m["DueDate"] = _check_date(state, m["DueDate"], "Due Date", errors, required=False)
    elif spec.code == "CR":
        bank = str(m.get("BankCode") or f.control.get("DefaultBank") or "").strip()
        if not bank:
            errors.append(f"{where}: a Bank Code is required (on the receipt or as the file's DefaultBank).")
        elif bank not in state.banks:
            errors.append(f"{where}: Bank Code {bank} does not exist.")
        m["BankCode"] = bank
    elif spec.code == "AP":
        vendor = str(m.get("Vendor") or "").strip()
        if vendor.isdigit():
            vendor = vendor.zfill(state.settings.key_formats.vendor_length)
        firm = state.firm_by_vendor(vendor) if vendor else None
        if not vendor:
            errors.append(f"{where}: a Vendor is required.")
        elif firm is None or firm["VendorInd"] != "Y":
            errors.append(f"{where}: vendor {vendor} does not exist.")
        m["Vendor"] = firm["Vendor"] if firm else vendor
        state.check_length(table, "Invoice", m.get("Invoice"), 50, errors)
        liab = str(m.get("LiabCode") or f.control.get("DefaultLiab") or "General").strip()
        if liab not in state.liability_codes:
            errors.append(f"{where}: Liability Code {liab} does not exist.")
        m["LiabCode"] = liab
        bank = str(m.get("BankCode") or "").strip()
        if bank and bank not in state.banks:
            errors.append(f"{where}: Bank Code {bank} does not exist.")
        if m.get("InvoiceDate"):
            m["InvoiceDate"] = _check_date(state, m["InvoiceDate"], "Invoice Date", errors, required=False)
        if not str(m.get("Voucher") or "").strip():
            m["Voucher"] = f"{state.next_voucher:07d}"
            state.next_voucher += 1
        state.check_length(table, "Voucher", m["Voucher"], 12, errors)
    elif spec.code == "JE":
        state.check_length(table, "Description", m.get("Description"), 40, errors)
    status = str(m.get("Status") or "N")
    m["Status"] = status
    return m


def _validate_detail(state: TenantState, spec: TypeSpec, f: TransFile, masters: list[dict], raw: dict,
                     index: int, errors: list[str]) -> dict:
    table = f"{spec.prefix}Detail"
    d = normalize_fields(raw, spec.detail_fields, errors)
    d["Batch"] = f.control["Batch"]
    key = spec.master_key
    if spec.code == "IN":
        d["Invoice"] = _pad_invoice(state, d.get("Invoice"))
    link = str(d.get(key) or "").strip()
    master = next((m for m in masters if m[key].upper() == link.upper()), None) if link else None
    pkey = str(d.get("PKey") or "").strip()
    where = f"{table} {pkey or index + 1}"
    if master is None:
        errors.append(f"{where}: {key} {link or '(blank)'} does not match a {spec.prefix}Master row of batch "
                      f"{f.control['Batch']}.")
    else:
        d[key] = master[key]
    if not pkey:
        errors.append(f"Please provide a PKey for table {table}")
    state.check_length(table, "PKey", pkey, 32, errors)
    if pkey and any(x["PKey"].upper() == pkey.upper() for x in f.details):
        errors.append(f"Record {pkey} already exists and cannot be added.")
    d["PKey"] = pkey
    if str(d.get("Seq") or "").strip() == "":
        d["Seq"] = len(f.details) + index + 1
    state.check_length(table, "Description", d.get("Description"), 40, errors)
    for name in spec.amount_fields:
        if name in d or name in ("Amount", "DebitAmount", "CreditAmount"):
            try:
                d[name] = to_decimal(d.get(name), name)
            except VPError as exc:
                errors.extend(exc.messages)
                d[name] = Decimal("0")
    account = _check_account(state, d, where, errors)
    account_type = account["Type"] if account else 0
    needs_project = account_type in PROJECT_ACCOUNT_TYPES
    if spec.code == "IN":
        if master is not None and str(d.get("WBS1") or "").strip() == "":
            d["WBS1"], d["WBS2"], d["WBS3"] = master["WBS1"], master["WBS2"], master["WBS3"]
        top = _check_project(state, d, where, errors, required=True)
        if master is not None and top is not None and top["WBS1"].upper() != master["WBS1"].upper():
            errors.append(f"{where}: invoice lines must be on the invoice's project {master['WBS1']}.")
        if account is not None and account_type != 4:
            errors.append(f"{where}: account {account['Account']} is not a revenue account; invoice lines must use a "
                          "revenue account.")
        section = str(d.get("InvoiceSection") or "F").strip().upper()
        if section not in INVOICE_SECTIONS:
            errors.append(f"{where}: '{section}' is not a valid InvoiceSection (F, L, C, E, U, A, T, I).")
        d["InvoiceSection"] = section
    elif spec.code == "CR":
        invoice = _pad_invoice(state, d.get("Invoice"))
        d["Invoice"] = invoice
        top = _check_project(state, d, where, errors, required=bool(invoice) or needs_project)
        ar_account = state.auto_posting["AcctsReceivable"]
        if invoice:
            if account is not None and account["Account"] != ar_account:
                errors.append(f"{where}: a receipt line applied to an invoice must use the Accounts Receivable "
                              f"account {ar_account}, not {account['Account']}.")
            if top is not None and (top["WBS1"].upper(), invoice.upper()) not in state.ar:
                errors.append(f"{where}: invoice {invoice} has not been posted for project {top['WBS1']}.")
        elif account is not None and account["Account"] == ar_account:
            errors.append(f"{where}: a receipt line on the Accounts Receivable account must name an Invoice.")
    elif spec.code == "AP":
        _check_project(state, d, where, errors, required=needs_project)
        if account is not None and account_type in (3, 4):
            errors.append(f"{where}: account {account['Account']} cannot be used on a voucher line.")
        if d["Amount"] < 0 and not state.settings.ap_allow_negative:
            errors.append(f"{where}: Amount must not be negative on a voucher line.")
        if not d.get("NetAmount"):
            d["NetAmount"] = d["Amount"]
        if not d.get("PaymentAmount"):
            d["PaymentAmount"] = d["Amount"]
    elif spec.code == "JE":
        _check_project(state, d, where, errors, required=needs_project)
        debit, credit = d["DebitAmount"], d["CreditAmount"]
        if debit < 0 or credit < 0:
            errors.append(f"{where}: DebitAmount and CreditAmount must not be negative.")
        if debit and credit:
            errors.append(f"{where}: a line is either a debit or a credit, not both.")
    tax = str(d.get("TaxCode") or "").strip()
    if tax and tax not in state.tax_codes:
        errors.append(f"{where}: tax code {tax} does not exist.")
    return d


def _validate_documents(state: TenantState, spec: TypeSpec, f: TransFile, raw_masters: list[dict],
                        raw_details: list[dict], errors: list[str]) -> tuple[list[dict], list[dict]]:
    masters: list[dict] = []
    probe = TransFile(spec.code, f.control, list(f.masters), list(f.details))
    for raw in raw_masters:
        m = _validate_master(state, spec, probe, raw, errors)
        masters.append(m)
        probe.masters.append(m)
    for i, m in enumerate(masters):
        if str(m.get("Seq") or "").strip() == "":
            m["Seq"] = len(f.masters) + i + 1
    details = []
    for index, raw in enumerate(raw_details):
        d = _validate_detail(state, spec, probe, probe.masters, raw, index, errors)
        details.append(d)
        probe.details.append(d)
    return masters, details


# --- views ---------------------------------------------------------------------------------------


def sums(f: TransFile) -> dict[str, Decimal]:
    if f.trans_type == "JE":
        return {
            "Total": sum((d["DebitAmount"] for d in f.details), Decimal("0")),
            "CreditsTotal": sum((d["CreditAmount"] for d in f.details), Decimal("0")),
        }
    out = {"Total": sum((d["Amount"] for d in f.details), Decimal("0"))}
    if f.trans_type == "IN":
        out["RetTotal"] = sum((d.get("RetAmount", Decimal("0")) for d in f.details), Decimal("0"))
    return out


def control_view(state: TenantState, f: TransFile) -> dict:
    row = dict(f.control)
    for name, value in sums(f).items():
        declared = row.get(name, Decimal("0")) or Decimal("0")
        row[name] = declared
        row[f"Sum{name}"] = value
        row[f"Diff{name}"] = declared - value
    bank = state.banks.get(str(row.get("DefaultBank") or ""))
    if f.trans_type in ("CR", "AP"):
        row["DefaultBankDescription"] = bank["Description"] if bank else ""
        row["BankCurrencyCode"] = bank["CurrencyCode"] if bank else ""
    row["Posted"] = "Y" if f.posted else "N"
    return row


def master_view(m: dict) -> dict:
    return {**m, "StatusDescription": "In Progress" if m.get("Status") == "N" else "Approved"}


def landing_row(state: TenantState, f: TransFile) -> dict:
    c = f.control
    period = int(c.get("PostPeriod") or c.get("Period") or 0)
    return {
        "TransType": f.trans_type, "Batch": c["Batch"], "Description": c.get("Description", ""),
        "Posted": "Y" if f.posted else "N", "PostStatus": "Posted" if f.posted else "Unposted",
        "PostDate": c.get("PostDate", ""), "PostSeq": c.get("PostSeq", 0), "PostUser": c.get("PostUser", ""),
        "Period": period, "RawPeriod": period, "FmtPeriod": f"{period % 100:02d}/{period // 100}" if period else "",
        "Total": sums(f)["Total"], "Creator": c.get("Creator", ""), "Company": state.company["Company"],
        "ModDate": c.get("ModDate", ""),
    }


# --- writes --------------------------------------------------------------------------------------


def _stamp_masters(state: TenantState, masters: list[dict]) -> None:
    stamp = state.stamp()
    for m in masters:
        m.setdefault("Diary", "D1")
        state.counts["diary_no"] += 1
        m["DiaryNo"] = state.counts["diary_no"]
        m["ModUser"] = state.settings.username
        m["ModDate"] = stamp


def create_file(state: TenantState, spec: TypeSpec, body: dict) -> TransFile:
    """``POST /DataEntry/{xx}Control`` with the master and detail arrays as siblings."""
    if not state.settings.use_files_to_group_transactions:
        raise VPError("Use Files to Group Transactions is off for this database; create transactions with "
                      f"POST /DataEntry/{spec.prefix}Master/{{Batch}}|{{{spec.master_key}}}.")
    raw_control, raw_masters, raw_details, extras = _split_body(spec, body)
    errors: list[str] = []
    with state.lock:
        control = _validate_control(state, spec, raw_control, errors, new=True)
        control.setdefault("Company", state.company["Company"])
        f = TransFile(spec.code, control, extras=extras)
        masters, details = _validate_documents(state, spec, f, raw_masters, raw_details, errors)
        if errors:
            raise VPError(list(dict.fromkeys(errors)))
        control.update({"Posted": "N", "ModUser": state.settings.username, "ModDate": state.stamp(),
                        "Creator": control.get("Creator") or state.settings.username})
        _stamp_masters(state, masters)
        f.masters, f.details = masters, details
        state.files[spec.code][control["Batch"].upper()] = f
        state.counts[f"{spec.code}_files_created"] += 1
        return f


def get_file(state: TenantState, spec: TypeSpec, batch: str) -> TransFile:
    f = state.files[spec.code].get(batch.strip().upper())
    if f is None:
        raise VPError(f"Batch {batch} was not found.", status=404)
    return f


def _writable(state: TenantState, spec: TypeSpec, batch: str) -> TransFile:
    f = get_file(state, spec, batch)
    if f.posted:
        raise VPError(POSTED_MESSAGE)
    return f


def update_control(state: TenantState, spec: TypeSpec, batch: str, body: dict) -> TransFile:
    with state.lock:
        f = _writable(state, spec, batch)
        raw_control, raw_masters, raw_details, _ = _split_body(spec, body)
        errors: list[str] = []
        if str(raw_control.get("Batch", f.control["Batch"])).upper() != f.control["Batch"].upper():
            errors.append("Batch cannot be changed.")
        raw_control = {k: v for k, v in raw_control.items() if k.lower() not in ("batch", "posted")}
        changes = _validate_control(state, spec, raw_control, errors, new=False)
        masters, details = _validate_documents(state, spec, f, raw_masters, raw_details, errors)
        if errors:
            raise VPError(list(dict.fromkeys(errors)))
        f.control.update(changes)
        _stamp_masters(state, masters)
        f.masters.extend(masters)
        f.details.extend(details)
        f.control["ModDate"] = state.stamp()
        return f


def delete_file(state: TenantState, spec: TypeSpec, batch: str) -> None:
    with state.lock:
        f = _writable(state, spec, batch)
        del state.files[spec.code][f.control["Batch"].upper()]


def add_master(state: TenantState, spec: TypeSpec, batch: str, key: str, body: dict) -> tuple[TransFile, dict]:
    """``POST /DataEntry/{xx}Master/{Batch}|{Key}`` with the detail array nested. Without grouping by
    files the batch is created implicitly (period = the active period, total = the lines' sum)."""
    if not isinstance(body, dict):
        raise VPError("The request body must be a JSON object.")
    nested = {k: v for k, v in body.items() if k.lower() != f"{spec.prefix}detail"}
    raw_details = _as_list(next((v for k, v in body.items() if k.lower() == f"{spec.prefix}detail"), None))
    nested.setdefault(spec.master_key, key)
    if str(nested[spec.master_key]).strip().upper() != key.strip().upper():
        raise VPError(f"{spec.master_key} in the body does not match the URL.")
    errors: list[str] = []
    with state.lock:
        f = state.files[spec.code].get(batch.strip().upper())
        implicit = f is None
        if implicit:
            if state.settings.use_files_to_group_transactions:
                raise VPError(f"Batch {batch} was not found.", status=404)
            control = _validate_control(state, spec, {"Batch": batch, "Period": state.active_period}, errors, True)
            f = TransFile(spec.code, {**control, "Company": state.company["Company"]})
        elif f.posted:
            raise VPError(POSTED_MESSAGE)
        masters, details = _validate_documents(state, spec, f, [nested], raw_details, errors)
        if errors:
            raise VPError(list(dict.fromkeys(errors)))
        _stamp_masters(state, masters)
        f.masters.extend(masters)
        f.details.extend(details)
        f.control["ModDate"] = state.stamp()
        if implicit:
            f.control.update({name: value for name, value in sums(f).items()})
            f.control.update({"Posted": "N", "Creator": state.settings.username})
            state.files[spec.code][batch.strip().upper()] = f
        elif not state.settings.use_files_to_group_transactions:
            f.control.update({name: value for name, value in sums(f).items()})
        return f, masters[0]


def update_master(state: TenantState, spec: TypeSpec, batch: str, key: str, body: dict) -> dict:
    with state.lock:
        f = _writable(state, spec, batch)
        m = next((x for x in f.masters if x[spec.master_key].upper() == key.strip().upper()), None)
        if m is None:
            raise VPError(f"{spec.master_key} {key} was not found in batch {batch}.", status=404)
        errors: list[str] = []
        changes = normalize_fields(body, spec.master_fields, errors)
        for fixed in ("Batch", spec.master_key):
            if fixed in changes and str(changes.pop(fixed)).strip().upper() != str(m[fixed]).upper():
                errors.append(f"{fixed} cannot be changed.")
        if "TransDate" in changes:
            changes["TransDate"] = _check_date(state, changes["TransDate"], "Transaction Date", errors)
        if errors:
            raise VPError(list(dict.fromkeys(errors)))
        m.update(changes)
        m["ModDate"] = state.stamp()
        return m


def delete_master(state: TenantState, spec: TypeSpec, batch: str, key: str) -> None:
    with state.lock:
        f = _writable(state, spec, batch)
        before = len(f.masters)
        f.masters = [m for m in f.masters if m[spec.master_key].upper() != key.strip().upper()]
        if len(f.masters) == before:
            raise VPError(f"{spec.master_key} {key} was not found in batch {batch}.", status=404)
        f.details = [d for d in f.details if d[spec.master_key].upper() != key.strip().upper()]


# --- posting ---------------------------------------------------------------------------------------


def _post_problem(state: TenantState, spec: TypeSpec, f: TransFile | None, period: int) -> str | None:
    if f is None:
        return "the file was not found"
    if f.posted:
        return f"the file was already posted (posting sequence {f.control.get('PostSeq')})"
    errors: list[str] = []
    if period <= 0:
        return "a posting period is required"
    state.require_open_period(period, errors)
    if state.settings.check_transdate_period:
        for m in f.masters:
            parsed = parse_vp_datetime(m.get("TransDate"))
            if parsed is not None:
                state.require_open_period(period_of(parsed), errors, what=f"Transaction date {parsed.date()}: period")
    if errors:
        return "; ".join(dict.fromkeys(errors))
    if not f.masters:
        return "the file has no transactions"
    key = spec.master_key
    for m in f.masters:
        if not any(d[key] == m[key] for d in f.details):
            return f"{key} {m[key]} has no detail lines"
    totals = sums(f)
    for name, value in totals.items():
        declared = f.control.get(name, Decimal("0")) or Decimal("0")
        if declared != value:
            return (f"the file is out of balance: control {name} {declared:.2f} does not equal the detail total "
                    f"{value:.2f}")
    if spec.code == "JE":
        for m in f.masters:
            lines = [d for d in f.details if d["RefNo"] == m["RefNo"]]
            debit = sum((d["DebitAmount"] for d in lines), Decimal("0"))
            credit = sum((d["CreditAmount"] for d in lines), Decimal("0"))
            if debit != credit:
                return f"journal entry {m['RefNo']} is out of balance: debits {debit:.2f}, credits {credit:.2f}"
    return None


def _ledger_base(state: TenantState, f: TransFile, period: int, seq: int, stamp: str, m: dict) -> dict:
    row = {name: "" for name in LEDGER_COLUMNS}
    row.update({"TransType": f.trans_type, "Batch": f.control["Batch"], "Company": state.company["Company"],
                "Period": period, "PostSeq": seq, "TransDate": m.get("TransDate", ""), "PostDate": stamp,
                "ModDate": stamp,
                "TransactionCurrencyCode": "USD", "TaxBasis": Decimal("0"), "BillStatus": "",
                "WBS2": " ", "WBS3": " "})
    return row


def _line(row: dict, state: TenantState, d: dict, amount: Decimal, sub: str = "") -> dict:
    project = state.project(d.get("WBS1") or "") if d.get("WBS1") else None
    row.update({"SubType": sub, "PKey": d.get("PKey", ""), "WBS1": d.get("WBS1", ""), "WBS2": blank(d.get("WBS2")),
                "WBS3": blank(d.get("WBS3")), "Account": d.get("Account", ""),
                "Org": project["Org"] if project else "", "Amount": amount, "TransactionAmount": amount,
                "Desc2": d.get("Description", ""), "TaxCode": d.get("TaxCode", "")})
    return row


def _post(state: TenantState, spec: TypeSpec, f: TransFile, period: int) -> int:
    state.post_seq += 1
    seq = state.post_seq
    stamp = state.stamp()
    key = spec.master_key
    for m in f.masters:
        lines = [d for d in f.details if d[key] == m[key]]
        total = sum((d.get("Amount", Decimal("0")) for d in lines), Decimal("0"))
        base = _ledger_base(state, f, period, seq, stamp, m)
        if spec.code == "IN":
            base.update({"Invoice": m["Invoice"], "RefNo": m["Invoice"], "Desc1": m.get("TransComment", "")})
            for d in lines:
                row = _line(dict(base), state, d, -d["Amount"])
                row.update({"InvoiceSection": d.get("InvoiceSection", ""),
                            "CreditMemoRefNo": d.get("CreditMemoRefNo", "")})
                state.add_ledger_row(row)
            ar_line = {"WBS1": m["WBS1"], "WBS2": m["WBS2"], "WBS3": m["WBS3"],
                       "Account": state.auto_posting["AcctsReceivable"], "Description": "Accounts Receivable"}
            state.add_ledger_row(_line(dict(base), state, ar_line, total, sub="A"))
            ar_key = (m["WBS1"].upper(), m["Invoice"].upper())
            project = state.project(m["WBS1"]) or {}
            entry = state.ar.setdefault(ar_key, {
                "WBS1": m["WBS1"], "Invoice": m["Invoice"], "InvoiceDate": m["TransDate"],
                "BillingClientID": project.get("BillingClientID") or project.get("ClientID", ""),
                "OriginalAmt": Decimal("0"), "Paid": Decimal("0"), "Balance": Decimal("0"),
                "Org": project.get("Org", "")})
            entry["OriginalAmt"] += total
            entry["Balance"] += total
        elif spec.code == "CR":
            base.update({"RefNo": m["RefNo"], "BankCode": m["BankCode"], "Desc1": m.get("TransComment", "")})
            for d in lines:
                row = _line(dict(base), state, d, -d["Amount"])
                row["Invoice"] = d.get("Invoice", "")
                state.add_ledger_row(row)
                if d.get("Invoice"):
                    entry = state.ar[(d["WBS1"].upper(), d["Invoice"].upper())]
                    entry["Paid"] += d["Amount"]
                    entry["Balance"] -= d["Amount"]
            bank = state.banks[m["BankCode"]]
            state.add_ledger_row(_line(dict(base), state, {"Account": bank["Account"], "Description": "Cash"},
                                       total, sub="A"))
        elif spec.code == "AP":
            base.update({"Vendor": m["Vendor"], "Voucher": m["Voucher"], "Invoice": m.get("Invoice", ""),
                         "RefNo": m["Voucher"], "Desc1": m.get("TransComment", "")})
            for d in lines:
                state.add_ledger_row(_line(dict(base), state, d, d["Amount"]))
            liability = {"Account": state.liability_codes[m["LiabCode"]], "Description": "Accounts Payable"}
            state.add_ledger_row(_line(dict(base), state, liability, -total, sub="A"))
        else:
            base.update({"RefNo": m["RefNo"], "Desc1": m.get("Description", "")})
            for d in lines:
                state.add_ledger_row(_line(dict(base), state, d, d["DebitAmount"] - d["CreditAmount"]))
    f.posted = True
    f.control.update({"Posted": "Y", "PostSeq": seq, "PostDate": stamp, "PostUser": state.settings.username,
                      "PostPeriod": period, "ModDate": stamp})
    state.counts[f"{spec.code}_files_posted"] += 1
    return seq


def post_trans_files(state: TenantState, body: dict) -> tuple[int, object]:
    """Returns (status, payload). On 200 the payload is a JSON *string* holding the result."""
    if not isinstance(body, dict):
        raise VPError("The request body must be a JSON object.")
    parms = next((v for k, v in body.items() if k.lower() == "parms"), None)
    items = _as_list(parms)
    if not items:
        raise VPError("Please provide parms: batch, transtype and period.")
    results = []
    with state.lock:
        checks = []
        for raw in items:
            p = {k.lower(): v for k, v in raw.items()}
            trans_type = str(p.get("transtype") or "").upper()
            batch = str(p.get("batch") or "").strip()
            spec = SPECS.get(trans_type)
            f = state.files[spec.code].get(batch.upper()) if spec else None
            try:
                period = int(str(p.get("period") or (f.control.get("Period") if f else 0) or 0))
            except ValueError:
                period = -1
            desc = str(p.get("description") or (f.control.get("Description") if f else "") or batch)
            checks.append((spec, f, batch, trans_type, period, desc))

        def problem_of(spec, f, trans_type, period, seen) -> str | None:
            if spec is None:
                return f"transaction type '{trans_type}' cannot be posted"
            if f is not None and id(f) in seen:
                return "the file appears twice in this request"
            return _post_problem(state, spec, f, period)

        if state.settings.post_failure_http_400:
            seen: set[int] = set()
            failures = []
            for spec, f, batch, trans_type, period, _ in checks:
                problem = problem_of(spec, f, trans_type, period, seen)
                if f is not None:
                    seen.add(id(f))
                if problem:
                    failures.append(f"{trans_type} file {batch}: {problem}.")
            if failures:
                raise VPError(failures)
        for spec, f, batch, trans_type, period, desc in checks:
            name = spec.name if spec else trans_type
            n = len(f.masters) if f else 0
            problem = problem_of(spec, f, trans_type, period, set())
            if problem:
                results.append((trans_type, batch, "0", period, "0",
                                f"{name} file {desc}; 0 of {n} records posted; {problem}"))
                state.counts["post_failures"] += 1
                continue
            seq = _post(state, spec, f, period)
            results.append((trans_type, batch, "1", period, str(seq),
                            f"{name} file {desc}; {n} of {n} records posted; Posting sequence {seq}"))
    inner = {
        "typeList": "|".join(r[0] for r in results),
        "batchList": "|".join(r[1] for r in results),
        "retList": "|".join(r[2] for r in results),
        "periodList": "|".join(str(r[3]) for r in results),
        "postseqList": "|".join(r[4] for r in results),
        "msg": "[CRLF]".join(r[5] for r in results),
    }
    return 200, json.dumps(inner, indent=1).replace("\n", "\r\n")
