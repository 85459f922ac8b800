"""Live mode: new and changed documents (invoices, payments, received POs and their bills,
customers, vendors) at a steady rate, each announced as a webhook event.

``LiveMode.tick(n)`` makes n changes at once (tests, ``POST /_sim/live/tick``); ``start()`` runs
a thread that ticks ``live_rate_per_minute`` times per wall-clock minute.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable
from datetime import date, timedelta

from simulators.runtime import SimClock
from simulators.servicetitan.model import InvoiceItem, InvoiceRow, TenantData
from simulators.servicetitan.render import render
from simulators.servicetitan.seed import MATERIALS, STREETS, UTC_OFFSET_HOURS, Builder
from simulators.servicetitan.wire import ticks_of

CHANGE_WEIGHTS = {
    "invoice.created": 35, "invoice.updated": 10, "payment.created": 25, "payment.updated": 5,
    "inventorybill.created": 10, "customer.updated": 10, "vendor.created": 2,
}
EVENT_KINDS = {"invoice": "invoices", "payment": "payments", "inventorybill": "inventory-bills",
               "customer": "customers", "vendor": "vendors"}

Publish = Callable[[int, str, dict], None]


class LiveMode:
    def __init__(self, tenants: dict[int, TenantData], clock: SimClock, seed: int, publish: Publish,
                 rate_per_minute: float = 30.0):
        self.tenants = tenants
        self.clock = clock
        self.publish = publish
        self.rate = rate_per_minute
        self.builders = {t: Builder(d, random.Random(f"{seed}:{t}:live")) for t, d in tenants.items()}
        self._round_robin = itertools.cycle(sorted(tenants))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.changes = 0

    # --- the background loop --------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None and self.rate > 0:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="st-live", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        interval = 60.0 / self.rate
        while not self._stop.wait(interval):
            self.tick(1)

    # --- changes --------------------------------------------------------------------------------
    def tick(self, count: int = 1, tenant: int | None = None, event_types: list[str] | None = None) -> list[dict]:
        """Make ``count`` changes; returns [{"eventType", "tenantId", "id"}] for every event raised."""
        events: list[dict] = []
        for _ in range(count):
            tenant_id = tenant if tenant is not None else next(self._round_robin)
            data = self.tenants[tenant_id]
            builder = self.builders[tenant_id]
            choices = [e for e in CHANGE_WEIGHTS if not event_types or e in event_types]
            if not choices:
                raise ValueError(f"no known change among {event_types}; known: {', '.join(CHANGE_WEIGHTS)}")
            change = builder.rng.choices(choices, weights=[CHANGE_WEIGHTS[c] for c in choices])[0]
            with data.lock:
                raised = getattr(self, "_" + change.replace(".", "_"))(data, builder)
                rendered = [(e, kind, row, render(data, EVENT_KINDS[e.split(".")[0]], row)) for e, kind, row in raised]
            for event_type, _kind, row, record in rendered:
                self.publish(tenant_id, event_type, record)
                events.append({"eventType": event_type, "tenantId": tenant_id, "id": row.id})
            self.changes += 1
        return events

    def _now(self) -> int:
        return ticks_of(self.clock.now())

    def _today(self, data: TenantData) -> int:
        """The contractor's local business day (a document raised at 23:30 in Seattle is dated that
        day, although UTC is already in the next one), as the seed dates its documents."""
        local = self.clock.now() - timedelta(hours=UTC_OFFSET_HOURS.get(data.contractor.branches[0].state, 7))
        return local.date().toordinal()

    def _recent(self, data: TenantData, kind: str, n: int = 300):
        return list(itertools.islice(reversed(data.tables[kind].rows.values()), n))

    def _invoice_created(self, data: TenantData, b: Builder) -> list:
        now = self._now()
        raised = []
        customers = [c for c in self._recent(data, "customers", 2000) if c.active and not c.deleted]
        if b.rng.random() < 0.2 or not customers:
            customer, locations = b.customer(now, commercial=b.rng.random() < 0.1)
            data.touch("customers", customer, now)
            for loc in locations:
                data.touch("locations", loc, now)
            raised.append(("customer.created", "customers", customer))
        else:
            customer = b.rng.choice(customers)
        invoice = b.invoice(customer, b.rng.choice(customer.locations), self._today(data), now)
        invoice.review_status = "NeedsReview"
        data.touch("invoices", invoice, now)
        customer.balance += invoice.total
        raised.append(("invoice.created", "invoices", invoice))
        return raised

    def _invoice_updated(self, data: TenantData, b: Builder) -> list:
        invoices = [i for i in self._recent(data, "invoices") if i.active and not i.deleted and i.total > 0]
        if not invoices:
            return self._invoice_created(data, b)
        invoice: InvoiceRow = b.rng.choice(invoices)
        now = self._now()
        if b.rng.random() < 0.5 and invoice.balance == invoice.total:
            m = b.rng.randrange(len(MATERIALS))
            code, name, price = MATERIALS[m]
            invoice.items.append(InvoiceItem(b.new_id("invoice-items"), len(invoice.items) + 1, "Material", 2000 + m,
                                             name, f"<p>{name}</p>", 100, price, price // 2, price, "41000", True,
                                             now, now))
            old_total = invoice.total
            taxable = sum(i.total for i in invoice.items if i.taxable)
            invoice.subtotal = sum(i.total for i in invoice.items)
            invoice.tax = (taxable * invoice.tax_rate_bp + 5000) // 10000
            invoice.balance += invoice.total - old_total
            data.tables["customers"].rows[invoice.customer_id].balance += invoice.total - old_total
        else:
            invoice.review_status = "Reviewed"
        data.touch("invoices", invoice, now)
        return [("invoice.updated", "invoices", invoice)]

    def _payment_created(self, data: TenantData, b: Builder) -> list:
        open_invoices = [i for i in self._recent(data, "invoices", 1000)
                         if i.active and not i.deleted and i.balance > 0]
        if not open_invoices:
            return self._invoice_created(data, b)
        invoice = b.rng.choice(open_invoices)
        now = self._now()
        amount = invoice.balance if b.rng.random() < 0.8 else max(1, invoice.balance // 2)
        payment = b.payment(invoice.customer_id, invoice.bu_id, self._today(data), now, [(invoice, amount)])
        data.touch("payments", payment, now)
        invoice.balance -= amount
        if invoice.balance == 0:
            invoice.paid_on = now
        data.tables["customers"].rows[invoice.customer_id].balance -= amount
        data.touch("invoices", invoice, now)
        return [("payment.created", "payments", payment), ("invoice.updated", "invoices", invoice)]

    def _payment_updated(self, data: TenantData, b: Builder) -> list:
        payments = [p for p in self._recent(data, "payments") if not p.deleted]
        if not payments:
            return self._payment_created(data, b)
        payment = b.rng.choice(payments)
        payment.memo = f"Updated {self.clock.now():%Y-%m-%d %H:%M}"
        data.touch("payments", payment, self._now())
        return [("payment.updated", "payments", payment)]

    def _inventorybill_created(self, data: TenantData, b: Builder) -> list:
        now = self._now()
        open_pos = [p for p in self._recent(data, "purchase-orders", 500) if p.status in ("Sent", "PartiallyReceived")]
        if open_pos and b.rng.random() < 0.7:
            po = b.rng.choice(open_pos)
        else:
            po = b.purchase_order(self._today(data), now)
            po.status, po.sent = "Sent", now
        receipt, bill = b.receive(po, now, 1.0 if b.rng.random() < 0.8 else 0.5)
        bill.day = date.fromordinal(self._today(data)).toordinal()
        bill.due_day = bill.day + 30
        data.touch("purchase-orders", po, now)
        data.touch("receipts", receipt, now)
        data.touch("inventory-bills", bill, now)
        return [("inventorybill.created", "inventory-bills", bill)]

    def _customer_updated(self, data: TenantData, b: Builder) -> list:
        customers = [c for c in data.tables["customers"].rows.values() if c.active and not c.deleted]
        customer = b.rng.choice(customers)
        customer.address.street = f"{b.rng.randint(100, 19999)} {b.rng.choice(STREETS)}"
        data.touch("customers", customer, self._now())
        return [("customer.updated", "customers", customer)]

    def _vendor_created(self, data: TenantData, b: Builder) -> list:
        from simulators.servicetitan.model import VendorRow

        now = self._now()
        n = data.next_id("vendors")
        vendor = VendorRow(id=b.new_id("vendors"), created=now, modified=now, name=f"Regional Supply Co. #{n}",
                           city=data.contractor.branches[0].city, state=data.contractor.branches[0].state,
                           contact_first="Alex", contact_last="Rivera", phone="5550199", email=f"ap{n}@example.com",
                           street="42 Commerce St", zip=f"{data.contractor.branches[0].zip_prefix}10", tax_rate_bp=0)
        data.touch("vendors", vendor, now)
        return [("vendor.created", "vendors", vendor)]
