"""Seed data for the simulated Vantagepoint tenant, all derived from the contractor definition:
company, organizations per branch, projects per business unit, chart of accounts, banks, tax
codes, periods, and the key accounts and vendors as firms. Deterministic from the seed."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from simulators.contractor import (
    ACCOUNTS_BY_NUMBER,
    AP_ACCOUNT,
    AR_ACCOUNT,
    GL_ACCOUNTS,
    PAYMENT_TYPES,
    TAX_ACCOUNT,
    Contractor,
    vantagepoint_org,
    vantagepoint_project,
)
from simulators.vantagepoint.wire import vp_date, vp_datetime

COMPANY = "01"
OVERHEAD_PROJECT = "OH-ADMIN"
# Vantagepoint numeric account types (Vision convention): 1 Asset, 2 Liability, 3 Net Worth,
# 4 Revenue, 5 Reimbursable, 6 Reimbursable Consultant, 7 Direct, 8 Direct Consultant,
# 9 Indirect, 10 Other Charges.
ACCOUNT_TYPE_NAMES = {
    1: "Asset", 2: "Liability", 3: "Net Worth", 4: "Revenue", 5: "Reimbursable",
    6: "Reimbursable Consultant", 7: "Direct", 8: "Direct Consultant", 9: "Indirect", 10: "Other Charges",
}
PROJECT_ACCOUNT_TYPES = frozenset({4, 5, 6, 7, 8})  # lines on these accounts need a project
_TAX_RATES = ("8.81", "8.845", "8.20", "10.25", "9.60", "7.75")


def vp_account_type(number: str) -> int:
    account = ACCOUNTS_BY_NUMBER[number]
    if account.type == "Asset":
        return 1
    if account.type == "Liability":
        return 2
    if account.type == "Income":
        return 4
    return 7 if account.st_subtype == "Cost of Goods Sold" else 9


class IdMaker:
    """ClientIDs and other server-assigned GUIDs: 32 upper-case hex digits from a seeded RNG."""

    def __init__(self, seed: int):
        self._rng = random.Random(f"vantagepoint-ids:{seed}")

    def guid(self) -> str:
        return f"{self._rng.getrandbits(128):032X}"


@dataclass
class SeedData:
    company: dict
    orgs: dict[str, dict]
    accounts: dict[str, dict]
    banks: dict[str, dict]
    tax_codes: dict[str, dict]
    liability_codes: dict[str, str]
    periods: dict[int, dict]
    active_period: int
    firms: dict[str, dict]
    projects: dict[tuple[str, str, str], dict]
    auto_posting: dict
    next_client_number: int
    next_vendor_number: int
    service_client_id: str = ""
    notes: list[str] = field(default_factory=list)


def month_periods(today: date, open_months: int = 12, closed_months: int = 12) -> list[tuple[int, date, date]]:
    """(YYYYPP, first day, last day) from oldest to the current month; calendar fiscal year."""
    out = []
    year, month = today.year, today.month
    for _ in range(open_months + closed_months):
        start = date(year, month, 1)
        nxt = date(year + (month == 12), month % 12 + 1, 1)
        out.append((year * 100 + month, start, nxt - timedelta(days=1)))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return list(reversed(out))


def build_seed(contractor: Contractor, seed: int, now: datetime, ids: IdMaker) -> SeedData:
    today = now.date()
    periods_list = month_periods(today)
    first_open = periods_list[-12][1]
    stamp = vp_datetime(datetime(first_open.year, first_open.month, 1, tzinfo=UTC))
    created = {"CreateUser": "ADMIN", "CreateDate": stamp, "ModUser": "ADMIN", "ModDate": stamp}

    company = {"Company": COMPANY, "FirmName": contractor.name, "FunctionalCurrencyCode": "USD"}
    orgs = {}
    for branch in contractor.branches:
        org = vantagepoint_org(branch)
        orgs[org] = {"Org": org, "Name": f"{contractor.name} {branch.name}", "Status": "A", "Company": COMPANY}

    accounts = {}
    for acct in GL_ACCOUNTS:
        accounts[acct.number] = {
            "Account": acct.number, "Name": acct.name, "Type": vp_account_type(acct.number), "Status": "A",
            "Detail": "1", "CashBasisAccount": "", "UnrealizedLossAccount": "", "UnrealizedGainAccount": "",
            "CashBasisRevaluation": "", "GlobalAccount": "N", "AccountCurrencyCode": "USD",
        }
    cash_accounts = sorted({p.cash_account for p in PAYMENT_TYPES} | {
        a.number for a in GL_ACCOUNTS if a.st_subtype == "Bank"})
    # Bank codes equal their GL account numbers (as in Deltek's own example, bank 101.10).
    banks = {
        number: {"Code": number, "Description": ACCOUNTS_BY_NUMBER[number].name, "Company": COMPANY, "Org": "",
                 "Account": number, "CurrencyCode": "USD", "Status": "A"}
        for number in cash_accounts
    }
    tax_codes = {}
    for i, branch in enumerate(contractor.branches):
        code = f"{branch.state}-{branch.code[:3]}"
        tax_codes[code] = {"Code": code, "Description": f"{branch.city} sales tax", "Rate": Decimal(_TAX_RATES[i]),
                           "CompoundOnTaxCode": "", "Account": TAX_ACCOUNT, "Status": "A"}

    periods = {}
    for index, (number, start, end) in enumerate(periods_list):
        closed = "Y" if index < len(periods_list) - 12 else "N"
        periods[number] = {
            "Period": number, "FmtPeriod": f"{number % 100:02d}/{number // 100}",
            "AccountPdStart": vp_date(start), "AccountPdEnd": vp_date(end),
            "FYStart": vp_date(date(start.year, 1, 1)), "FYEnd": vp_date(date(start.year, 12, 31)),
            "ActiveCompanyClosed": closed, "AllCompaniesClosed": closed,
        }

    firms: dict[str, dict] = {}
    client_no = 1
    vendor_no = 1

    def add_firm(name: str, client: bool, vendor: bool, city: str = "", state: str = "") -> dict:
        nonlocal client_no, vendor_no
        row = {
            "ClientID": ids.guid(), "Client": f"C{client_no:05d}", "Vendor": "", "Name": name, "SortName": name.upper(),
            "ClientInd": "Y" if client else "N", "VendorInd": "Y" if vendor else "N", "Status": "A", "Category": "",
            "Type": "", "Org": "", "PrimaryCity": city, "PrimaryState": state, "PrimaryCountry": "United States",
            **created,
        }
        client_no += 1
        if vendor:
            row["Vendor"] = f"{vendor_no:06d}"
            row["Category"] = "SUP"
            vendor_no += 1
        firms[row["ClientID"]] = row
        return row

    home_state = contractor.branches[0].state
    service_client = add_firm(f"{contractor.name} Service Customers", True, False, contractor.branches[0].city,
                              home_state)
    for name in contractor.key_accounts:
        add_firm(name, True, False, contractor.branches[0].city, home_state)
    for vendor in contractor.vendors:
        add_firm(vendor.name, False, True, vendor.city)

    projects: dict[tuple[str, str, str], dict] = {}
    start = vp_date(first_open)

    def add_project(wbs1: str, wbs2: str, name: str, org: str, charge: str, sub: str, active: bool = True) -> None:
        projects[(wbs1, wbs2, " ")] = {
            "WBS1": wbs1, "WBS2": wbs2, "WBS3": " ", "Name": name, "LongName": name, "ChargeType": charge,
            "SubLevel": sub, "Status": "A" if active else "I", "RevType": "N", "Org": org,
            "ClientID": service_client["ClientID"] if charge == "R" else "",
            "BillingClientID": service_client["ClientID"] if charge == "R" else "",
            "ProjectCurrencyCode": "USD", "BillingCurrencyCode": "USD", "StartDate": start, "EndDate": "",
            **created,
        }

    for unit in contractor.business_units:
        wbs1 = vantagepoint_project(contractor, unit)
        add_project(wbs1, " ", f"{unit.name} Service"[:40], vantagepoint_org(unit.branch), "R", "N", unit.active)
    first_org = vantagepoint_org(contractor.branches[0])
    add_project(OVERHEAD_PROJECT, " ", "Overhead - Administration", first_org, "H", "Y")
    add_project(OVERHEAD_PROJECT, "100", "Office", first_org, "H", "N")
    add_project(OVERHEAD_PROJECT, "200", "Fleet", first_org, "H", "N")

    auto_posting = {"Company": COMPANY, "AcctsReceivable": AR_ACCOUNT, "UninvoicedRevenue": "",
                    "UnbilledServices": "", "AcctsPayable": AP_ACCOUNT}
    return SeedData(
        company=company, orgs=orgs, accounts=accounts, banks=banks, tax_codes=tax_codes,
        liability_codes={"General": AP_ACCOUNT}, periods=periods, active_period=periods_list[-1][0],
        firms=firms, projects=projects, auto_posting=auto_posting, next_client_number=client_no,
        next_vendor_number=vendor_no, service_client_id=service_client["ClientID"],
    )
