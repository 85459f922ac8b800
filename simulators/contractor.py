"""The simulated contractors: one definition that all three simulators seed from.

ServiceTitan's business units, GL accounts, vendors and payment types, and the ERPs' branches,
subaccounts, organizations, projects and chart of accounts are all derived from this module, so
a record extracted from the ServiceTitan simulator maps onto reference data that exists in the
Acumatica and Vantagepoint simulators. It holds no HTTP code and no randomness of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Branch:
    code: str  # Acumatica BranchID, Vantagepoint organization suffix
    name: str
    city: str
    state: str
    zip_prefix: str


@dataclass(frozen=True)
class Trade:
    code: str  # three letters, used in subaccounts and projects
    name: str
    revenue_account: str  # GL account number for this trade's service revenue


@dataclass(frozen=True)
class BusinessUnit:
    id: int  # ServiceTitan business unit id
    name: str
    branch: Branch
    trade: Trade
    active: bool = True


@dataclass(frozen=True)
class GLAccount:
    number: str
    name: str
    type: str  # Asset, Liability, Income, Expense
    st_type: str  # ServiceTitan's GL account type label
    st_subtype: str


@dataclass(frozen=True)
class Vendor:
    id: int
    name: str
    city: str


@dataclass(frozen=True)
class PaymentType:
    id: int
    name: str
    cash_account: str  # GL account number the receipt lands in


@dataclass(frozen=True)
class Contractor:
    key: str  # connection name in the demo
    tenant_id: int
    name: str
    seed: int
    branches: tuple[Branch, ...]
    trades: tuple[Trade, ...]
    business_units: tuple[BusinessUnit, ...]
    technicians: int
    vendors: tuple[Vendor, ...] = field(default_factory=tuple)
    # Commercial customers that already exist in the ERP before fieldledger is connected; the
    # ServiceTitan simulator includes them (same names) so name-matching rules can be tested.
    key_accounts: tuple[str, ...] = field(default_factory=tuple)


# The chart of accounts is shared by both contractors (each ERP holds its own copy).
GL_ACCOUNTS: tuple[GLAccount, ...] = (
    GLAccount("10100", "Operating Cash", "Asset", "Asset", "Bank"),
    GLAccount("10200", "Merchant Clearing", "Asset", "Asset", "Bank"),
    GLAccount("10300", "Undeposited Funds", "Asset", "Asset", "Other Current Asset"),
    GLAccount("12000", "Accounts Receivable", "Asset", "Asset", "Accounts Receivable"),
    GLAccount("13000", "Inventory", "Asset", "Asset", "Inventory"),
    GLAccount("20000", "Accounts Payable", "Liability", "Liability", "Accounts Payable"),
    GLAccount("22000", "Sales Tax Payable", "Liability", "Liability", "Other Current Liability"),
    GLAccount("40100", "Service Revenue - HVAC", "Income", "Income", "Income"),
    GLAccount("40200", "Service Revenue - Plumbing", "Income", "Income", "Income"),
    GLAccount("40300", "Service Revenue - Electrical", "Income", "Income", "Income"),
    GLAccount("41000", "Equipment Sales", "Income", "Income", "Income"),
    GLAccount("42000", "Maintenance Agreements", "Income", "Income", "Income"),
    GLAccount("49000", "Discounts Given", "Income", "Income", "Income"),
    GLAccount("50000", "Materials Cost", "Expense", "Expense", "Cost of Goods Sold"),
    GLAccount("51000", "Equipment Cost", "Expense", "Expense", "Cost of Goods Sold"),
    GLAccount("60000", "Freight", "Expense", "Expense", "Expense"),
)

ACCOUNTS_BY_NUMBER = {a.number: a for a in GL_ACCOUNTS}

# ServiceTitan item types -> the revenue account ServiceTitan puts on the item (trade accounts
# are chosen per business unit for Service items).
ITEM_TYPE_ACCOUNTS = {
    "Material": "41000",
    "Equipment": "41000",
    "Membership": "42000",
    "Discount": "49000",
}

PAYMENT_TYPES: tuple[PaymentType, ...] = (
    PaymentType(1, "Cash", "10300"),
    PaymentType(2, "Check", "10300"),
    PaymentType(3, "Credit Card", "10200"),
    PaymentType(4, "ACH", "10100"),
)

AR_ACCOUNT = "12000"
AP_ACCOUNT = "20000"
INVENTORY_ACCOUNT = "13000"
TAX_ACCOUNT = "22000"
FREIGHT_ACCOUNT = "60000"

HVAC = Trade("HVC", "HVAC", "40100")
PLUMBING = Trade("PLM", "Plumbing", "40200")
ELECTRICAL = Trade("ELC", "Electrical", "40300")
TRADES = (HVAC, PLUMBING, ELECTRICAL)

_VENDOR_NAMES = (
    ("Ferguson Enterprises", "Seattle"),
    ("Johnstone Supply", "Tacoma"),
    ("Carrier Enterprise", "Kent"),
    ("Winsupply of Everett", "Everett"),
    ("Graybar Electric", "Seattle"),
    ("Consolidated Pipe & Supply", "Spokane"),
    ("Lennox PartsPlus", "Bellevue"),
    ("Rexel USA", "Portland"),
    ("Hajoca Corporation", "Boise"),
    ("Grainger Industrial", "Renton"),
    ("Lumière Électrique SARL", "Montréal"),
    ("Mueller Großhandel GmbH", "Spokane"),
)


def _vendors(base: int) -> tuple[Vendor, ...]:
    return tuple(Vendor(base + i, name, city) for i, (name, city) in enumerate(_VENDOR_NAMES, start=1))


def _business_units(base: int, layout: list[tuple[Branch, tuple[Trade, ...]]]) -> tuple[BusinessUnit, ...]:
    units = []
    n = 0
    for branch, trades in layout:
        for trade in trades:
            n += 1
            units.append(BusinessUnit(base + n, f"{branch.name} {trade.name}", branch, trade))
    return tuple(units)


_CASCADE_BRANCHES = (
    Branch("SEATTLE", "Seattle", "Seattle", "WA", "981"),
    Branch("TACOMA", "Tacoma", "Tacoma", "WA", "984"),
    Branch("BELLEVUE", "Bellevue", "Bellevue", "WA", "980"),
)
_SUMMIT_BRANCHES = (
    Branch("DENVER", "Denver", "Denver", "CO", "802"),
    Branch("BOULDER", "Boulder", "Boulder", "CO", "803"),
    Branch("SPRINGS", "Colorado Springs", "Colorado Springs", "CO", "809"),
)

CASCADE = Contractor(
    key="cascade-hvac",
    tenant_id=1000001,
    name="Cascade HVAC & Plumbing",
    seed=20261,
    branches=_CASCADE_BRANCHES,
    trades=TRADES,
    business_units=_business_units(
        1100,
        [
            (_CASCADE_BRANCHES[0], (HVAC, PLUMBING, ELECTRICAL)),
            (_CASCADE_BRANCHES[1], (HVAC, PLUMBING)),
            (_CASCADE_BRANCHES[2], (HVAC, ELECTRICAL)),
        ],
    ),
    technicians=110,
    vendors=_vendors(5100),
    key_accounts=(
        "Pike Place Property Management",
        "Harbor View Medical Center",
        "Rainier Brewing Lofts HOA",
        "Emerald City Schools District",
        "Sound Transit Facilities",
        "Queen Anne Senior Living",
        "Café Olé Restaurants LLC",
        "O'Brien Family Dental",
    ),
)

SUMMIT = Contractor(
    key="summit-mechanical",
    tenant_id=1000002,
    name="Summit Mechanical",
    seed=20262,
    branches=_SUMMIT_BRANCHES,
    trades=TRADES,
    business_units=_business_units(
        2100,
        [
            (_SUMMIT_BRANCHES[0], (HVAC, PLUMBING)),
            (_SUMMIT_BRANCHES[1], (HVAC, PLUMBING)),
            (_SUMMIT_BRANCHES[2], (HVAC, ELECTRICAL)),
        ],
    ),
    technicians=95,
    vendors=_vendors(6100),
    key_accounts=(
        "Front Range Property Group",
        "Red Rocks Hospitality",
        "Boulder Valley Schools",
        "Pikes Peak Medical Plaza",
        "Mile High Apartments LLC",
        "Niño's Taquería Group",
        "Cherry Creek Offices HOA",
    ),
)

CONTRACTORS: tuple[Contractor, ...] = (CASCADE, SUMMIT)
CONTRACTORS_BY_TENANT = {c.tenant_id: c for c in CONTRACTORS}
CONTRACTORS_BY_KEY = {c.key: c for c in CONTRACTORS}


# --- how the ERPs name the contractor's structure (used by the ERP simulators' seeds and by the
# --- demo connection files, so the mapping points at things that exist) -----------------------

def acumatica_subaccount(branch: Branch, trade: Trade) -> str:
    """Acumatica subaccount CD: branch segment + department segment, e.g. 'SEA-HVC'."""
    return f"{branch.code[:3]}-{trade.code}"


def vantagepoint_org(branch: Branch) -> str:
    """Vantagepoint organization: company:branch, e.g. '01:SEA'."""
    return f"01:{branch.code[:3]}"


def vantagepoint_project(contractor: Contractor, unit: BusinessUnit) -> str:
    """WBS1 of the project a business unit's revenue lands on: one overhead-style project per
    branch and trade (a service contractor's 'job' projects), e.g. '2026-SEA-HVC'."""
    return f"2026-{unit.branch.code[:3]}-{unit.trade.code}"
