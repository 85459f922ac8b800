"""Deterministic data for one simulated ServiceTitan tenant: a year of a contractor's work.

Business units, vendors, GL accounts and payment types come straight from
``simulators.contractor``; customers (the contractor's key accounts among them), locations,
invoices with GL-coded items, payments, purchase orders, receipts and the inventory bills they
create are generated from the seed. ``Builder`` is reused by live mode to make new documents.
"""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, date, datetime, timedelta

from simulators.contractor import (
    CONTRACTORS,
    GL_ACCOUNTS,
    INVENTORY_ACCOUNT,
    ITEM_TYPE_ACCOUNTS,
    PAYMENT_TYPES,
    Contractor,
)
from simulators.servicetitan.model import (
    Address,
    Application,
    BillRow,
    BusinessUnitRow,
    Credentials,
    CustomerRow,
    GLAccountRow,
    InvoiceItem,
    InvoiceRow,
    LocationRow,
    PaymentRow,
    PaymentTypeRow,
    PurchaseOrderRow,
    ReceiptRow,
    StockLine,
    TenantData,
    VendorRow,
)
from simulators.servicetitan.wire import DAY_TICKS, TICKS, ticks_of, ticks_of_day

MATERIALS_COST_ACCOUNT = "50000"

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
    "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
    "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark", "Sandra", "Steven", "Ashley",
    "Kevin", "Emily", "Brian", "Michelle", "George", "Amanda", "Timothy", "Melissa", "Jason", "Stephanie",
    "José", "Zoë", "Chloé", "Søren", "Björn", "Renée", "Łukasz", "François", "Siân", "Ãngela",
    "Mei", "Hiroshi", "Priya", "Oluwaseun", "Aroha", "Dmitri", "Ingrid", "Mateo", "Yusuf", "Nora",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
    "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson",
    "Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill", "Green", "Adams", "Nelson",
    "García", "Núñez", "Müller", "O'Connor", "Dvořák", "Nguyễn", "Østergaard", "Kowalczyk", "Peña", "Søndergaard",
    "Tanaka", "Patel", "Okafor", "Ivanova", "Lindqvist", "Hernández", "Chen", "Kim", "Fischer", "D'Angelo",
)
STREETS = (
    "Maple Ave", "Oak St", "Pine St", "Cedar Ln", "Elm St", "Lakeview Dr", "Hillcrest Rd", "Park Ave",
    "Sunset Blvd", "Ridge Rd", "Meadow Ln", "River Rd", "Highland Ave", "Forest Dr", "Madison St",
    "Washington Ave", "Lincoln Way", "Jefferson St", "Summit Ave", "Valley View Rd", "Cascade Way",
    "Aspen Ct", "Birch Pl", "Willow Way", "Spruce St", "Alder St", "Garfield St", "Fremont Ave",
)
COMMERCIAL_WORDS = (
    ("Evergreen", "Property Management"), ("Northgate", "Apartments LLC"), ("Lakeside", "Dental Group"),
    ("Pioneer", "Storage"), ("Granite", "Office Park"), ("Alpine", "Veterinary Clinic"),
    ("Juniper", "Bistro"), ("Copper Kettle", "Café"), ("Blue Spruce", "Condominiums HOA"),
    ("Riverbend", "Community Church"), ("Sunrise", "Daycare Center"), ("Trailhead", "Outfitters"),
    ("Harborlight", "Hotel"), ("Ironwood", "Fitness"), ("Crescent", "Medical Offices"),
)
JOB_TYPES = ("Service Call", "Maintenance", "Repair", "Install", "Diagnostic")

SERVICES = {
    "HVC": (("AC Tune-Up", 18900), ("Furnace Repair", 32500), ("Heat Pump Diagnostic", 14900),
            ("Duct Cleaning", 45000), ("Thermostat Install", 22500), ("Refrigerant Recharge", 39500)),
    "PLM": (("Drain Cleaning", 24900), ("Water Heater Flush", 17900), ("Leak Repair", 29500),
            ("Toilet Rebuild", 21500), ("Sewer Camera Inspection", 34900), ("Faucet Replacement", 19500)),
    "ELC": (("Panel Inspection", 15900), ("Outlet Replacement", 12500), ("Breaker Replacement", 27500),
            ("EV Charger Install", 89500), ("Lighting Retrofit", 64500), ("Surge Protector Install", 34500)),
}
MATERIALS = (
    ("MAT-FLT16", "16x25x1 Pleated Filter", 2400), ("MAT-CAP45", "45/5 MFD Run Capacitor", 3800),
    ("MAT-CON30", "30A Contactor", 4200), ("MAT-PVC2", "2in PVC Pipe 10ft", 1850),
    ("MAT-PEX34", "3/4in PEX Coil 100ft", 9600), ("MAT-WAX", "Wax Ring Kit", 1200),
    ("MAT-BRK20", "20A Breaker", 2900), ("MAT-GFCI", "GFCI Outlet", 2600), ("MAT-R410", "R-410A Refrigerant (lb)", 6500),
    ("MAT-VLV12", "1/2in Ball Valve", 1550), ("MAT-WIRE12", "12/2 Romex 50ft", 8900), ("MAT-TSTAT", "Smart Thermostat", 18900),
)
EQUIPMENT = (
    ("EQ-AC3T", "3-Ton AC Condenser", 420000), ("EQ-FURN80", "80k BTU Furnace", 385000),
    ("EQ-WH50", "50 Gal Water Heater", 165000), ("EQ-TWH", "Tankless Water Heater", 310000),
    ("EQ-PNL200", "200A Service Panel", 240000),
)
TAX_BP = {"SEATTLE": 1035, "TACOMA": 1030, "BELLEVUE": 1010, "DENVER": 881, "BOULDER": 885, "SPRINGS": 820}
UTC_OFFSET_HOURS = {"WA": 8, "CO": 7}
DEFAULT_TYPE = {"10100": "CheckingAccount", "10300": "UndepositedFunds", "12000": "AccountsReceivable",
                "13000": "Inventory", "20000": "AccountsPayable", "22000": "SalesTaxPayable",
                "40100": "Revenue", "42000": "MembershipRevenue", "50000": "CostOfGoodsSoldMaterials",
                "51000": "CostOfGoodsSoldEquipment", "60000": "CostOfGoodsSoldShipping"}

KIND_OFFSETS = {
    "customers": 1, "locations": 2, "invoices": 3, "invoice-items": 4, "payments": 5, "applications": 6,
    "purchase-orders": 7, "po-lines": 8, "receipts": 9, "receipt-lines": 10, "inventory-bills": 11,
    "bill-lines": 12, "jobs": 13, "gl-accounts": 14, "vendors": 15,
}


def credentials_for(seed: int, contractor: Contractor) -> Credentials:
    """Deterministic, realistic-looking credentials (cid./cs1./ak1.) for one tenant."""
    def part(label: str, n: int) -> str:
        return hashlib.sha256(f"{seed}:{contractor.tenant_id}:{label}".encode()).hexdigest()[:n]

    return Credentials(
        client_id=f"cid.{part('client', 26)}",
        client_secret=f"cs1.{part('secret', 48)}",
        app_key=f"ak1.{part('app', 32)}",
        webhook_secret=part("webhook", 48),
    )


def _cents_round(value: int, bp: int) -> int:
    """value (cents) * basis points, rounded half up to the cent."""
    return (value * bp + 5000) // 10000 if value >= 0 else -((-value * bp + 5000) // 10000)


class Builder:
    """Makes records for one tenant: used by the seed and by live mode."""

    def __init__(self, data: TenantData, rng: random.Random):
        self.data = data
        self.rng = rng
        tenants = [c.tenant_id for c in CONTRACTORS]
        index = 1 + tenants.index(data.tenant_id) if data.tenant_id in tenants else 9
        self.base = index * 1_000_000_000
        self.units = list(data.contractor.business_units)
        self.bu_by_id = {u.id: u for u in self.units}

    def new_id(self, kind: str) -> int:
        return self.base + KIND_OFFSETS[kind] * 10_000_000 + self.data.next_id(kind)

    # --- customers --------------------------------------------------------------------------
    def address(self, branch) -> Address:
        rng = self.rng
        unit = f"Apt {rng.randint(1, 40)}" if rng.random() < 0.12 else None
        return Address(
            street=f"{rng.randint(100, 19999)} {rng.choice(STREETS)}", unit=unit, city=branch.city,
            state=branch.state, zip=f"{branch.zip_prefix}{rng.randint(0, 99):02d}",
            lat=round(47.0 + rng.random(), 6) if branch.state == "WA" else round(39.0 + rng.random(), 6),
            lon=round(-122.5 + rng.random(), 6) if branch.state == "WA" else round(-105.2 + rng.random(), 6),
        )

    def customer(self, created: int, name: str | None = None, commercial: bool = False,
                 key_account: bool = False) -> tuple[CustomerRow, list[LocationRow]]:
        rng = self.rng
        branch = rng.choice(self.data.contractor.branches)
        if name is None:
            if commercial:
                a, b = rng.choice(COMMERCIAL_WORDS)
                name = f"{a} {b}"
            else:
                name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        customer = CustomerRow(
            id=self.new_id("customers"), created=created, modified=created, name=name,
            type="Commercial" if commercial else "Residential", address=self.address(branch),
            key_account=key_account, do_not_mail=rng.random() < 0.05,
            tax_exempt=commercial and rng.random() < 0.1,
        )
        count = rng.randint(2, 4) if commercial else (2 if rng.random() < 0.05 else 1)
        locations = []
        for n in range(count):
            address = customer.address if n == 0 else self.address(branch)
            location = LocationRow(
                id=self.new_id("locations"), created=created, modified=created, customer_id=customer.id,
                name=name if count == 1 else f"{name} - {address.street}", address=address,
                tax_zone_id=self.unit_tax_zone(branch), zone_id=1 + self.data.contractor.branches.index(branch),
            )
            locations.append(location)
            customer.locations.append(location.id)
        return customer, locations

    def unit_tax_zone(self, branch) -> int:
        return 100 + self.data.contractor.branches.index(branch)

    # --- invoices ---------------------------------------------------------------------------
    def invoice(self, customer: CustomerRow, location_id: int, day: int, created: int,
                kind: str = "normal", original: InvoiceRow | None = None) -> InvoiceRow:
        rng = self.rng
        unit = self.bu_by_id[original.bu_id] if original else rng.choice(self.units)
        items: list[InvoiceItem] = []

        def add(type_: str, sku: int, name: str, qty: int, price: int, account: str, taxable: bool):
            cost = price * rng.randint(35, 65) // 100 if type_ in ("Material", "Equipment") else 0
            items.append(InvoiceItem(
                id=self.new_id("invoice-items"), order=len(items) + 1, type=type_, sku_id=sku, sku_name=name,
                description=f"<p>{name}</p>", qty=qty, price=price, cost=cost, total=(qty * price + 50) // 100,
                account=account, taxable=taxable, created=created, modified=created,
            ))

        services = SERVICES[unit.trade.code]
        if kind == "zero":
            name, _ = rng.choice(services)
            add("Service", 9000 + rng.randint(1, 5), f"Warranty Call - {name}", 100, 0, unit.trade.revenue_account,
                False)
        elif kind == "credit":
            source = original.items[0] if original and original.items else None
            price = source.price if source and source.price > 0 else rng.choice(services)[1]
            add("Service", source.sku_id if source else 9100, "Customer Credit - Service Adjustment", -100, price,
                unit.trade.revenue_account, False)
        else:
            s = rng.randrange(len(services))
            name, price = services[s]
            add("Service", 1000 + s + 10 * "HVCPLMELC".index(unit.trade.code), name,
                100 if rng.random() < 0.85 else 200, price, unit.trade.revenue_account, False)
            for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
                m = rng.randrange(len(MATERIALS))
                code, mname, mprice = MATERIALS[m]
                add("Material", 2000 + m, mname, 100 * rng.randint(1, 4), mprice, ITEM_TYPE_ACCOUNTS["Material"], True)
            if rng.random() < 0.05:
                e = rng.randrange(len(EQUIPMENT))
                code, ename, eprice = EQUIPMENT[e]
                add("Equipment", 3000 + e, ename, 100, eprice, ITEM_TYPE_ACCOUNTS["Equipment"], True)
            if rng.random() < 0.08:
                add("Unspecified", 4001, "Comfort Club Membership - Annual", 100, 19900,
                    ITEM_TYPE_ACCOUNTS["Membership"], False)
            if rng.random() < 0.10:
                base = sum(i.total for i in items)
                discount = -max(500, base * rng.choice((5, 10, 15)) // 100)
                add("PriceModifier", 5001, "Member Discount", 100, discount, ITEM_TYPE_ACCOUNTS["Discount"], False)
        tax_bp = 0 if customer.tax_exempt else TAX_BP.get(unit.branch.code, 800)
        taxable = sum(i.total for i in items if i.taxable)
        subtotal = sum(i.total for i in items)
        tax = _cents_round(taxable, tax_bp)
        job_id = original.job_id if original else self.new_id("jobs")
        job_number = original.job_number if original else str(job_id % 10_000_000 + 20_000)
        invoice = InvoiceRow(
            id=self.new_id("invoices"), created=created, modified=created,
            number=f"{job_number}-{rng.randint(1, 9)}" if original else job_number,
            customer_id=customer.id, location_id=location_id, bu_id=unit.id, job_id=job_id,
            job_number=job_number, job_type=original.job_type if original else rng.choice(JOB_TYPES),
            day=day, due_day=day + (30 if customer.type == "Commercial" else 0), items=items,
            tax_rate_bp=tax_bp, tax=tax, subtotal=subtotal, balance=subtotal + tax,
            adjustment_to=original.id if original else None,
            summary=f"<p>{items[0].sku_name} at {customer.name}</p>" if rng.random() < 0.6 else None,
            created_by=rng.choice(("dispatch", "tech.app", "office")),
        )
        return invoice

    # --- payments ---------------------------------------------------------------------------
    def payment(self, customer_id: int, bu_id: int, day: int, created: int, applications: list[tuple[InvoiceRow, int]],
                type_id: int | None = None) -> PaymentRow:
        rng = self.rng
        type_id = type_id or rng.choice((1, 2, 3, 3, 3, 4))
        total = sum(amount for _, amount in applications)
        payment_id = self.new_id("payments")
        applied = [Application(self.new_id("applications"), inv.id, amount, created, "office") for inv, amount in applications]
        return PaymentRow(
            id=payment_id, created=created, modified=created, number=f"P{payment_id % 10_000_000:07d}",
            customer_id=customer_id, bu_id=bu_id, type_id=type_id, day=day, total=total, applied=applied,
            check_number=str(rng.randint(1000, 99999)) if type_id == 2 else None,
            auth_code=f"{rng.randint(0, 999999):06d}" if type_id == 3 else None,
            memo="Batch payment" if len(applications) > 1 else None,
        )

    # --- purchasing -------------------------------------------------------------------------
    def purchase_order(self, day: int, created: int) -> PurchaseOrderRow:
        rng = self.rng
        unit = rng.choice(self.units)
        vendor = rng.choice(self.data.contractor.vendors)
        lines = []
        for _ in range(rng.randint(1, 4)):
            m = rng.randrange(len(MATERIALS))
            code, name, price = MATERIALS[m]
            lines.append(StockLine(self.new_id("po-lines"), 2000 + m, code, name, 100 * rng.randint(1, 12),
                                   price * rng.randint(40, 60) // 100))
        job = rng.random() < 0.4
        po_id = self.new_id("purchase-orders")
        return PurchaseOrderRow(
            id=po_id, created=created, modified=created, number=f"PO-{po_id % 10_000_000:06d}",
            vendor_id=vendor.id, bu_id=unit.id, job_id=self.base + KIND_OFFSETS["jobs"] * 10_000_000 + rng.randint(1, 5000)
            if job else None, technician_id=rng.randint(1, self.data.contractor.technicians) if job else None,
            day=day, required_day=day + rng.randint(1, 7), status="Pending", lines=lines,
            tax=0, shipping=rng.choice((0, 0, 0, 1500, 2500, 4500)),
        )

    def receive(self, po: PurchaseOrderRow, when: int, share: float = 1.0) -> tuple[ReceiptRow, BillRow]:
        """Receive (part of) what is still open on a PO: a receipt and the inventory bill it creates."""
        rng = self.rng
        first = not po.receipts
        r_lines, b_lines = [], []
        for line in po.lines:
            open_qty = line.qty - line.received
            if open_qty <= 0:
                continue
            take = open_qty if share >= 1.0 else max(100, (int(open_qty * share) // 100) * 100)
            take = min(take, open_qty)
            line.received += take
            r_line = StockLine(self.new_id("receipt-lines"), line.sku_id, line.code, line.name, take, line.cost,
                               source_id=line.id)
            r_lines.append(r_line)
            b_lines.append(StockLine(self.new_id("bill-lines"), line.sku_id, line.code, line.name, take, line.cost,
                                     source_id=r_line.id))
        fully = all(line.received >= line.qty for line in po.lines)
        po.status = "Received" if fully else "PartiallyReceived"
        po.received = when
        vendor_invoice = f"INV-{rng.randint(100000, 999999)}"
        shipping = po.shipping if first else 0
        taxable = sum((ln.qty * ln.cost + 50) // 100 for ln in b_lines)
        tax = _cents_round(taxable, 0 if po.job_id is None else 0)  # purchases here are resale: no tax
        receipt_id = self.new_id("receipts")
        bill_id = self.new_id("inventory-bills")
        receipt = ReceiptRow(
            id=receipt_id, created=when, modified=when, number=f"R-{receipt_id % 10_000_000:06d}", po_id=po.id,
            bill_id=bill_id, vendor_id=po.vendor_id, bu_id=po.bu_id, job_id=po.job_id, vendor_invoice=vendor_invoice,
            received=when, lines=r_lines, tax=tax, shipping=shipping,
        )
        day = (when // DAY_TICKS) + date(1970, 1, 1).toordinal()
        job_number = str(po.job_id % 10_000_000 + 20_000) if po.job_id else None
        bill = BillRow(
            id=bill_id, created=when, modified=when, number=f"B-{bill_id % 10_000_000:06d}", po_id=po.id,
            receipt_id=receipt_id, vendor_id=po.vendor_id, bu_id=po.bu_id, job_id=po.job_id, job_number=job_number,
            vendor_invoice=vendor_invoice, day=day, due_day=day + 30, lines=b_lines, tax=tax, shipping=shipping,
        )
        po.receipts.append(receipt_id)
        return receipt, bill

    def bill_account(self, bill: BillRow) -> str:
        return MATERIALS_COST_ACCOUNT if bill.job_id else INVENTORY_ACCOUNT


def seed_tenant(contractor: Contractor, seed: int, now: datetime, options: dict) -> TenantData:
    """Generate one tenant's year. ``options``: invoices_per_day (mean per weekday, default 45),
    days (default 365), customers (default 600), purchase_orders_per_day (default 6)."""
    data = TenantData(contractor, credentials_for(seed, contractor))
    rng = random.Random(seed * 1_000_003 + contractor.seed)
    b = Builder(data, rng)
    data.id_base = b.base
    now_ticks = ticks_of(now)
    days = int(options.get("days", 365))
    per_day = float(options.get("invoices_per_day", 45))
    customers_n = int(options.get("customers", 600))
    pos_per_day = float(options.get("purchase_orders_per_day", 6))
    today = now.date()
    first_day = today - timedelta(days=days - 1)
    offset = UTC_OFFSET_HOURS.get(contractor.branches[0].state, 7) * 3600 * TICKS
    year_ago = ticks_of(datetime.combine(first_day, datetime.min.time(), UTC))
    setup = year_ago - 400 * DAY_TICKS

    # reference data
    units = [BusinessUnitRow(id=u.id, created=setup, modified=setup + u.id * TICKS, name=u.name,
                             official_name=f"{contractor.name} - {u.name}", branch=u.branch, trade=u.trade,
                             active=u.active) for u in contractor.business_units]
    gls = []
    for n, acct in enumerate(GL_ACCOUNTS, start=1):
        row = GLAccountRow(id=b.new_id("gl-accounts"), created=setup, modified=setup + n * TICKS, number=acct.number,
                           name=acct.name, type=acct.st_type, subtype=acct.st_subtype,
                           default_type=DEFAULT_TYPE.get(acct.number))
        gls.append(row)
        data.gl_by_number[acct.number] = row
    ptypes = [PaymentTypeRow(id=p.id, created=setup, modified=setup, name=p.name, cash_account=p.cash_account)
              for p in PAYMENT_TYPES]
    vendors = []
    for v in contractor.vendors:
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        vendors.append(VendorRow(
            id=v.id, created=setup, modified=setup + v.id * TICKS, name=v.name, city=v.city,
            state=contractor.branches[0].state, contact_first=first, contact_last=last,
            phone=f"555{rng.randint(1000000, 9999999)}", email=f"orders{v.id}@example.com",
            street=f"{rng.randint(100, 9999)} Industrial Way", zip=f"{contractor.branches[0].zip_prefix}{rng.randint(0, 99):02d}",
            tax_rate_bp=0,
        ))

    # customers: key accounts first (commercial), then a mix
    customers: list[CustomerRow] = []
    locations: list[LocationRow] = []
    for name in contractor.key_accounts:
        c, locs = b.customer(setup + rng.randint(0, 300) * DAY_TICKS, name=name, commercial=True, key_account=True)
        customers.append(c)
        locations.extend(locs)
    while len(customers) < customers_n:
        created = setup + rng.randint(0, 400 + days) * DAY_TICKS + rng.randint(0, 86_399) * TICKS
        c, locs = b.customer(min(created, now_ticks - DAY_TICKS), commercial=rng.random() < 0.12)
        customers.append(c)
        locations.extend(locs)
    key_accounts = [c for c in customers if c.key_account]
    for c in customers[len(key_accounts):]:
        if rng.random() < 0.02:
            c.active = False
            c.merged_to = rng.choice(customers).id
            c.modified = c.created + 3 * DAY_TICKS

    # invoices, day by day
    by_id = customers_by_id(customers)
    invoices: list[InvoiceRow] = []
    ordinal0 = first_day.toordinal()
    lo, hi = max(0, int(per_day * 2 / 3)), max(1, int(per_day * 4 / 3))
    for d in range(days):
        day = date.fromordinal(ordinal0 + d)
        weekday = day.weekday()
        if weekday == 6:
            continue
        count = rng.randint(lo, hi) if weekday < 5 else rng.randint(0, max(1, hi // 6))
        day_start = ticks_of_day(day) + offset  # local midnight in UTC
        for _ in range(count):
            created = day_start + rng.randint(8 * 3600, 19 * 3600) * TICKS + rng.randint(0, TICKS - 1)
            if created >= now_ticks:
                continue
            customer = rng.choice(key_accounts) if rng.random() < 0.08 else rng.choice(customers)
            location_id = rng.choice(customer.locations)
            roll = rng.random()
            kind, original = "normal", None
            if roll < 0.03:
                kind = "zero"
            elif roll < 0.05 and invoices:
                kind = "credit"
                original = invoices[-rng.randint(1, min(len(invoices), 200))]
                customer = by_id[original.customer_id]
                location_id = original.location_id
            invoice = b.invoice(customer, location_id, day.toordinal(), created, kind, original)
            invoice.modified = min(now_ticks, created + rng.randint(60, 3 * 86_400) * TICKS)
            for item in invoice.items:
                item.modified = invoice.modified
            age = today.toordinal() - invoice.day
            invoice.review_status = "Reviewed" if age > 2 else rng.choice(("NeedsReview", "Reviewed"))
            invoice.sync_status = "Posted" if age > 60 and rng.random() < 0.3 else "Pending"
            if rng.random() < 0.01:
                invoice.active = False
            invoices.append(invoice)

    # payments
    payments = _seed_payments(b, invoices, customers, now_ticks, today)
    for c in customers:
        c.balance = 0
    by_customer = customers_by_id(customers)
    for inv in invoices:
        if inv.active:
            by_customer[inv.customer_id].balance += inv.balance

    # purchasing
    pos, receipts, bills = [], [], []
    for d in range(days):
        day = date.fromordinal(ordinal0 + d)
        if day.weekday() >= 5:
            continue
        for _ in range(rng.randint(max(0, int(pos_per_day / 2)), max(1, int(pos_per_day * 1.5)))):
            created = ticks_of_day(day) + offset + rng.randint(7 * 3600, 16 * 3600) * TICKS + rng.randint(0, TICKS - 1)
            if created >= now_ticks:
                continue
            po = b.purchase_order(day.toordinal(), created)
            po.status = "Sent"
            po.sent = created + 600 * TICKS
            po.modified = po.sent
            age = today.toordinal() - day.toordinal()
            roll = rng.random()
            if age >= 3 and roll < 0.80:
                when = min(now_ticks - 60 * TICKS, created + rng.randint(1, 3) * DAY_TICKS)
                partial = rng.random() < 0.15
                r, bill = b.receive(po, when, 0.5 if partial else 1.0)
                receipts.append(r)
                bills.append(bill)
                if partial and age > 10 and rng.random() < 0.8:
                    r2, bill2 = b.receive(po, min(now_ticks - 30 * TICKS, when + rng.randint(2, 6) * DAY_TICKS))
                    receipts.append(r2)
                    bills.append(bill2)
                po.modified = max(po.modified, po.received or 0)
            elif age >= 3 and roll < 0.85:
                po.status = "Canceled"
            elif age < 3 and roll < 0.4:
                po.status = "Pending"
                po.sent = None
                po.modified = created
            pos.append(po)
    for bill in bills:
        if today.toordinal() - bill.day > 45 and rng.random() < 0.5:
            bill.sync_status = "Posted"

    seq = 0
    for kind, rows in (("business-units", units), ("gl-accounts", gls), ("payment-types", ptypes),
                       ("vendors", vendors), ("customers", customers), ("locations", locations),
                       ("invoices", invoices), ("payments", payments), ("purchase-orders", pos),
                       ("receipts", receipts), ("inventory-bills", bills)):
        seq = data.tables[kind].load(rows, seq)
    data.seq = data.seed_seq = seq
    return data


def customers_by_id(customers: list[CustomerRow]) -> dict[int, CustomerRow]:
    return {c.id: c for c in customers}


def _seed_payments(b: Builder, invoices: list[InvoiceRow], customers: list[CustomerRow], now_ticks: int,
                   today: date) -> list[PaymentRow]:
    rng = b.rng
    by_customer = customers_by_id(customers)
    payments: list[PaymentRow] = []
    batches: dict[tuple[int, int], list[InvoiceRow]] = {}
    horizon = now_ticks - 3600 * TICKS

    def paid_at(day_ordinal: int, after: int) -> tuple[int, int]:
        day = min(day_ordinal, today.toordinal())
        ticks = max(after + 1800 * TICKS, ticks_of_day(date.fromordinal(day)) + rng.randint(15, 23) * 3600 * TICKS)
        ticks = min(ticks, horizon)
        return (ticks // DAY_TICKS) + date(1970, 1, 1).toordinal(), ticks

    def apply(payment: PaymentRow) -> None:
        for app in payment.applied:
            inv = invoice_by_id[app.invoice_id]
            inv.balance -= app.amount
            inv.modified = max(inv.modified, payment.created)
            if inv.balance == 0:
                inv.paid_on = payment.created
        payments.append(payment)

    invoice_by_id = {inv.id: inv for inv in invoices}
    for inv in invoices:
        total = inv.total
        if total <= 0 or not inv.active or inv.created >= horizon:
            continue
        age = today.toordinal() - inv.day
        chance = 0.93 if age >= 45 else 0.75 if age >= 15 else 0.45
        if rng.random() >= chance:
            continue
        customer = by_customer[inv.customer_id]
        if customer.key_account:
            month = inv.day // 30
            batches.setdefault((customer.id, month), []).append(inv)
            continue
        roll = rng.random()
        if roll < 0.10 and total >= 2000:  # deposit now, the rest later: two payments on one invoice
            deposit = total // 2
            day, when = paid_at(inv.day, inv.created)
            apply(b.payment(customer.id, inv.bu_id, day, when, [(inv, deposit)]))
            day2, when2 = paid_at(inv.day + rng.randint(3, 20), when)
            if when2 > when:
                apply(b.payment(customer.id, inv.bu_id, day2, when2, [(inv, total - deposit)]))
        elif roll < 0.18:  # partial payment, balance stays open
            part = max(100, total * rng.randint(30, 70) // 100)
            day, when = paid_at(inv.day + rng.randint(0, 10), inv.created)
            apply(b.payment(customer.id, inv.bu_id, day, when, [(inv, part)]))
        else:
            day, when = paid_at(inv.day + rng.choice((0, 0, 0, 1, 3, 7, 14)), inv.created)
            apply(b.payment(customer.id, inv.bu_id, day, when, [(inv, total)]))
    # key accounts pay a month's invoices with one check or ACH: one payment over several invoices
    for (customer_id, _month), group in sorted(batches.items()):
        last = max(group, key=lambda i: i.created)
        day, when = paid_at(last.day + rng.randint(10, 25), last.created)
        apply(b.payment(customer_id, group[0].bu_id, day, when, [(inv, inv.balance) for inv in group],
                        type_id=rng.choice((2, 4))))
    payments.sort(key=lambda p: p.created)
    return payments
