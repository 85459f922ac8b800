"""Reference data of the simulated Acumatica tenant, derived from simulators.contractor so that it
agrees with the ServiceTitan simulator: branches (BranchID = Branch.code), the chart of accounts,
subaccounts per branch x trade plus the default 000-000, payment methods with their cash accounts,
the contractor's key accounts as Customers (C000101…) and most of its vendors under ERP-style
ids (FERGUSON…, VendorName = the contractor's vendor name; every fourth vendor is absent so the
sink has some to create)."""

from __future__ import annotations

import random
import re
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from simulators.contractor import (
    ACCOUNTS_BY_NUMBER,
    GL_ACCOUNTS,
    PAYMENT_TYPES,
    Contractor,
    acumatica_subaccount,
)

DEFAULT_SUBACCOUNT = "000-000"
PAYMENT_METHOD_IDS = {"Cash": "CASH", "Check": "CHECK", "Credit Card": "CREDITCARD", "ACH": "ACH"}
MEANS_OF_PAYMENT = {"CASH": "Cash", "CHECK": "Check", "CREDITCARD": "Credit Card", "ACH": "Direct Deposit"}


def erp_vendor_id(name: str, taken: set[str]) -> str:
    """'Ferguson Enterprises' -> 'FERGUSON'; accents stripped, at most 10 characters, unique."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    word = re.sub(r"[^A-Za-z0-9]", "", ascii_name.split()[0] if ascii_name.split() else "VENDOR").upper()[:10]
    candidate, n = word or "VENDOR", 1
    while candidate in taken:
        n += 1
        candidate = f"{word[:8]}{n:02d}"
    taken.add(candidate)
    return candidate


def seed_records(contractor: Contractor, seed: int) -> dict[str, list[dict]]:
    """Entity name -> records (plain Python values, no wire wrapping)."""
    rng = random.Random(seed)
    base = datetime(2025, 1, 6, 15, 0, tzinfo=UTC)

    def stamp() -> datetime:
        return base + timedelta(minutes=rng.randint(0, 60 * 24 * 300))

    def guid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    out: dict[str, list[dict]] = {}
    out["Account"] = [
        {"id": guid(), "AccountCD": a.number, "AccountClass": a.type.upper(), "AccountGroup": None,
         "AccountID": 1000 + i, "Active": True, "CashAccount": a.st_subtype == "Bank" or a.number == "10300",
         "CurrencyID": "USD", "Description": a.name, "PostOption": "Summary", "Type": a.type,
         "UseDefaultSubaccount": False, "CreatedDateTime": base, "LastModifiedDateTime": stamp()}
        for i, a in enumerate(GL_ACCOUNTS, start=1)
    ]
    subs = [(DEFAULT_SUBACCOUNT, "Default")]
    for branch in contractor.branches:
        for trade in contractor.trades:
            subs.append((acumatica_subaccount(branch, trade), f"{branch.name} {trade.name}"))
    out["Subaccount"] = [
        {"id": guid(), "SubaccountCD": cd, "SubaccountID": 500 + i, "Active": True, "Description": desc,
         "Secured": False, "LastModifiedDateTime": stamp()}
        for i, (cd, desc) in enumerate(subs, start=1)
    ]
    head = contractor.branches[0]
    out["Branch"] = [
        {"BranchID": b.code, "BranchName": f"{contractor.name} - {b.name}", "BranchStatus": True,
         "BranchCountry": "US", "BaseCurrencyID": "USD", "CompanyID": contractor.key.split("-")[0].upper(),
         "CompanyName": contractor.name, "CompanyStatus": True, "CompanyType": "With Branches Requiring Balancing"}
        for b in contractor.branches
    ]
    out["Ledger"] = [{
        "id": guid(), "LedgerID": "ACTUAL", "Description": "Actual ledger", "Currency": "USD", "Type": "Actual",
        "LastModifiedDateTime": base,
        "Branches": [{"id": guid(), "Active": True, "BranchID": b.code,
                      "BranchName": f"{contractor.name} - {b.name}", "CompanyName": contractor.name}
                     for b in contractor.branches],
    }]
    cash_accounts = sorted({p.cash_account for p in PAYMENT_TYPES})
    out["CashAccount"] = [
        {"CashAccount": n, "Branch": head.code, "Description": ACCOUNTS_BY_NUMBER[n].name} for n in cash_accounts
    ]
    out["PaymentMethod"] = []
    for p in PAYMENT_TYPES:
        pm_id = PAYMENT_METHOD_IDS.get(p.name, re.sub(r"[^A-Z]", "", p.name.upper())[:10])
        out["PaymentMethod"].append({
            "id": guid(), "PaymentMethodID": pm_id, "Active": True, "Description": p.name,
            "MeansOfPayment": MEANS_OF_PAYMENT.get(pm_id, "Other"), "UseInAR": True, "UseInAP": pm_id != "CASH",
            "CreatedDateTime": base, "LastModifiedDateTime": stamp(),
            "AllowedCashAccounts": [{
                "id": guid(), "CashAccount": p.cash_account, "Branch": head.code, "PaymentMethod": pm_id,
                "Description": ACCOUNTS_BY_NUMBER[p.cash_account].name, "ARDefault": True, "APDefault": False,
                "UseInAR": True, "UseInAP": pm_id != "CASH"}],
        })
    out["Customer"] = [
        {"id": guid(), "CustomerID": f"C{101 + i:06d}", "CustomerName": name, "CustomerClass": "COMMERCIAL",
         "Status": "Active", "CurrencyID": "USD", "Terms": "30D", "BAccountID": 7000 + i,
         "CreditLimit": Decimal("50000.00"), "AccountRef": None, "Email": None, "TaxZone": None,
         "NoteID": None, "CreatedDateTime": base, "LastModifiedDateTime": stamp(),
         "MainContact": {"DisplayName": name, "CompanyName": name,
                         "Address": {"City": head.city, "State": head.state, "Country": "US"}}}
        for i, name in enumerate(contractor.key_accounts)
    ]
    taken: set[str] = set()
    out["Vendor"] = [
        {"id": guid(), "VendorID": erp_vendor_id(v.name, taken), "VendorName": v.name, "LegalName": v.name,
         "VendorClass": "SUPPLIER", "Status": "Active", "CurrencyID": "USD", "Terms": "30D",
         "APAccount": "20000", "APSubaccount": DEFAULT_SUBACCOUNT, "CashAccount": None, "PaymentMethod": "CHECK",
         "AccountRef": None, "TaxZone": None, "CreatedDateTime": base, "LastModifiedDateTime": stamp(),
         "MainContact": {"DisplayName": v.name, "CompanyName": v.name, "Address": {"City": v.city, "Country": "US"}}}
        for i, v in enumerate(contractor.vendors) if i % 4 != 3
    ]
    for rows in out.values():
        for r in rows:
            if "NoteID" in r:
                r["NoteID"] = r["id"]
    return out
