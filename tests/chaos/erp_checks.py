"""What each ERP holds after the chaos, read the way an accountant would (through the ERP
simulator's own API), compared with what ServiceTitan says the period holds.

Each check returns a ``Findings``: documents found once, missing, duplicated, and wrong (amount,
account, branch/subaccount or project, applications) — the test asserts the last three are empty.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from mappings.connection import load_connection
from resources.acumatica import AcumaticaClient
from resources.vantagepoint import VantagepointClient, pad_document_number


@dataclass
class Findings:
    erp: str
    documents: Counter = field(default_factory=Counter)  # kind -> documents found exactly once
    missing: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)


def check_acumatica(info: dict, store, connection: str, expected: dict, days: list) -> Findings:
    a = info["acumatica"]
    conn = load_connection(connection)
    found = Findings("Acumatica")
    window = (f"Date ge datetimeoffset'{days[0]}T00:00:00Z' and "
              f"Date lt datetimeoffset'{days[-1] + timedelta(days=1)}T00:00:00Z'")
    with AcumaticaClient(a["base_url"], a["tenant"], a["client_id"], a["client_secret"], a["username"],
                         a["password"], poll_interval=0.05) as acu:
        invoices = list(acu.iter_all("Invoice", expand="Details"))
        payments = list(acu.iter_all("Payment", expand="DocumentsToApply"))
        bills = list(acu.iter_all("Bill", filter=window, expand="Details"))

    # no external reference twice anywhere in the ERP (also invoices of earlier days that payments pulled in)
    for ref, n in Counter(i["CustomerOrder"] for i in invoices if i.get("CustomerOrder")).items():
        if n > 1:
            found.duplicates.append(f"invoice {ref} x{n}")
    for ref, n in Counter(p["PaymentRef"] for p in payments if p.get("PaymentRef")).items():
        if n > 1:
            found.duplicates.append(f"payment {ref} x{n}")
    by_ref = {i["CustomerOrder"]: i for i in invoices}
    for doc in expected["invoice"].values():
        inv = by_ref.get(doc.number)
        if inv is None:
            found.missing.append(f"invoice {doc.number}")
            continue
        found.documents["invoice"] += 1
        unit = conn.mapping.business_units[doc.business_unit_id]
        if {(d["Branch"], d["Subaccount"]) for d in inv["Details"]} != {(unit.branch, unit.subaccount)}:
            found.wrong.append(f"invoice {doc.number}: branch/subaccount")
        if Decimal(str(inv["Amount"])) != abs(doc.total):
            found.wrong.append(f"invoice {doc.number}: amount {inv['Amount']} != {doc.total}")
        if sorted(d["Account"] for d in inv["Details"]) != sorted(line.coding.account for line in doc.lines):
            found.wrong.append(f"invoice {doc.number}: accounts")

    nbr_to_ref = {(i["Type"], i["ReferenceNbr"]): i["CustomerOrder"] for i in invoices}
    pay_by_ref = {p["PaymentRef"]: p for p in payments}
    for doc in expected["payment"].values():
        payment = pay_by_ref.get(doc.reference)
        if payment is None:
            found.missing.append(f"payment {doc.reference}")
            continue
        found.documents["payment"] += 1
        if Decimal(str(payment["PaymentAmount"])) != doc.amount:
            found.wrong.append(f"payment {doc.reference}: amount {payment['PaymentAmount']} != {doc.amount}")
        if payment.get("CashAccount") not in (None, doc.cash.account):
            found.wrong.append(f"payment {doc.reference}: cash account {payment.get('CashAccount')}")
        applied = {nbr_to_ref.get((x["DocType"], x["ReferenceNbr"])): Decimal(str(x["AmountPaid"]))
                   for x in payment.get("DocumentsToApply") or []}
        if applied != {x.invoice_number: x.amount for x in doc.applications}:
            found.wrong.append(f"payment {doc.reference}: applications {applied}")

    bill_refs = Counter((b["Vendor"], b["VendorRef"]) for b in bills)
    bill_by_ref = {(b["Vendor"], b["VendorRef"]): b for b in bills}
    for doc in expected["bill"].values():
        key = (store.lookup(connection, "vendor", doc.vendor_id), doc.number)
        if bill_refs[key] == 0:
            found.missing.append(f"bill {doc.number}")
            continue
        if bill_refs[key] > 1:
            found.duplicates.append(f"bill {doc.number} x{bill_refs[key]}")
        found.documents["bill"] += 1
        bill = bill_by_ref[key]
        if Decimal(str(bill["Amount"])) != abs(doc.total):
            found.wrong.append(f"bill {doc.number}: amount {bill['Amount']} != {doc.total}")
        if sorted(d["Account"] for d in bill["Details"]) != sorted(line.coding.account for line in doc.lines):
            found.wrong.append(f"bill {doc.number}: accounts")
    return found


def check_vantagepoint(info: dict, store, connection: str, expected: dict, days: list) -> Findings:
    v = info["vantagepoint"]
    conn = load_connection(connection)
    found = Findings("Vantagepoint")
    with VantagepointClient(v["base_url"], v["database"], v["client_id"], v["client_secret"], v["username"],
                            v["password"], rate_per_second=200) as vp:
        invoices = vp.ledger("IN")
        receipts = vp.ledger("CR")
        vouchers = vp.ledger("AP")

    ar_rows = Counter(pad_document_number(r.Invoice) for r in invoices if r.SubType == "A")
    ar_amount = {pad_document_number(r.Invoice): r.Amount for r in invoices if r.SubType == "A"}
    for number, n in ar_rows.items():
        if n > 1:
            found.duplicates.append(f"invoice {number} x{n}")
    projects, accounts = defaultdict(set), defaultdict(list)
    for r in invoices:
        if r.SubType != "A":
            projects[pad_document_number(r.Invoice)].add(r.WBS1)
            accounts[pad_document_number(r.Invoice)].append(r.Account)
    for doc in expected["invoice"].values():
        number = pad_document_number(doc.number)
        if ar_rows[number] == 0:
            found.missing.append(f"invoice {doc.number}")
            continue
        found.documents["invoice"] += 1
        unit = conn.mapping.business_units[doc.business_unit_id]
        if projects[number] != {unit.project}:
            found.wrong.append(f"invoice {doc.number}: projects {projects[number]}")
        # the IN file carries the non-tax lines; sales tax is a companion journal entry (posting/vantagepoint.py),
        # whose totals the reconciliation test compares
        lines = [line for line in doc.lines if line.kind != "tax"]
        if abs(Decimal(str(ar_amount[number]))) != abs(sum(line.amount for line in lines)):
            found.wrong.append(f"invoice {doc.number}: amount {ar_amount[number]} != {doc.total} less tax")
        if sorted(accounts[number]) != sorted(line.coding.account for line in lines):
            found.wrong.append(f"invoice {doc.number}: accounts {sorted(accounts[number])}")

    bank_rows = Counter(r.RefNo for r in receipts if r.SubType == "A")
    bank_amount = {r.RefNo: r.Amount for r in receipts if r.SubType == "A"}
    for ref, n in bank_rows.items():
        if n > 1:
            found.duplicates.append(f"payment {ref} x{n}")
    applied = defaultdict(dict)
    for r in receipts:
        if r.SubType != "A" and r.Invoice:
            applied[r.RefNo][pad_document_number(r.Invoice)] = -r.Amount
    for doc in expected["payment"].values():
        key = next((k for k in bank_rows if k.strip().lstrip("0") == doc.reference.lstrip("0")), None)
        if key is None:
            found.missing.append(f"payment {doc.reference}")
            continue
        found.documents["payment"] += 1
        if abs(Decimal(str(bank_amount[key]))) != doc.amount:
            found.wrong.append(f"payment {doc.reference}: amount {bank_amount[key]} != {doc.amount}")
        if applied[key] != {pad_document_number(x.invoice_number): x.amount for x in doc.applications}:
            found.wrong.append(f"payment {doc.reference}: applications {applied[key]}")

    voucher_rows = Counter((r.Vendor, r.Invoice) for r in vouchers if r.SubType == "A")
    for doc in expected["bill"].values():
        vendor = store.lookup(connection, "vendor", doc.vendor_id)
        matches = [k for k in voucher_rows if k[0] == vendor and doc.number in k[1]]
        if not matches:
            found.missing.append(f"bill {doc.number}")
            continue
        if len(matches) > 1 or voucher_rows[matches[0]] > 1:
            found.duplicates.append(f"bill {doc.number}")
        found.documents["bill"] += 1
    return found
