"""ServiceTitan V2 API client (over the shared HTTP layer) and its Dagster resource.

It owns the client-credentials token (one cached token per client, one fetch however many
threads need it), the ST-App-Key and tenant path, streaming iterators over list and export
endpoints (memory flat whatever the page count; ``ids`` in batches of 50), export continuation
tokens kept as cursors in the sync store, and typed models (money as Decimal). It does not map
records to ERP documents; that is the mappings' job.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import httpx
from dagster import ConfigurableResource
from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from resources.http import (
    AuthError,
    HttpClient,
    RateLimiter,
    RemoteError,
    RetryPolicy,
    register_secret,
)

SYSTEM = "servicetitan"
MAX_IDS = 50
MAX_PAGE_SIZE = 5000
RATE_CEILING = 60.0  # documented: requests per second per app key and tenant


# --- models ----------------------------------------------------------------------------------


class STModel(BaseModel):
    """Snake-case fields over ServiceTitan's camelCase; unknown fields kept, not rejected."""

    model_config = ConfigDict(extra="allow", populate_by_name=True,
                              alias_generator=AliasGenerator(validation_alias=to_camel))

    @field_validator("*", mode="after")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        # ServiceTitan sends a few timestamps without a zone (e.g. journal postDate): they are UTC.
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class NamedRef(STModel):
    id: int
    name: str | None = None


class GLAccountRef(STModel):
    id: int | None = None
    name: str | None = None
    number: str | None = None
    type: str | None = None
    detail_type: str | None = None


class Address(STModel):
    street: str | None = None
    unit: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None


class JobRef(STModel):
    id: int
    number: str | None = None
    type: str | None = None


class InvoiceItem(STModel):
    id: int
    order: int = 0
    type: str | None = None
    sku_id: int | None = None
    sku_name: str | None = None
    description: str | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    cost: Decimal | None = None
    total: Decimal | None = None
    taxable: bool = False
    general_ledger_account: GLAccountRef | None = None
    business_unit: NamedRef | None = None
    service_date: datetime | None = None
    modified_on: datetime | None = None


class Invoice(STModel):
    id: int
    reference_number: str | None = None
    invoice_date: datetime | None = None
    due_date: datetime | None = None
    sub_total: Decimal | None = None
    sales_tax: Decimal | None = None
    total: Decimal | None = None
    balance: Decimal | None = None
    customer: NamedRef | None = None
    customer_address: Address | None = None
    location: NamedRef | None = None
    location_address: Address | None = None
    business_unit: NamedRef | None = None
    job: JobRef | None = None
    adjustment_to_id: int | None = None
    sync_status: str | None = None
    review_status: str | None = None
    term_name: str | None = None
    summary: str | None = None
    active: bool = True
    paid_on: datetime | None = None
    created_on: datetime | None = None
    modified_on: datetime | None = None
    items: list[InvoiceItem] = Field(default_factory=list)

    @field_validator("items", mode="before")
    @classmethod
    def _no_null_items(cls, value: Any) -> Any:
        return value or []


class PaymentApplication(STModel):
    applied_id: int
    applied_to: int  # invoice id
    applied_amount: Decimal | None = None
    applied_on: datetime | None = None
    applied_by: str | None = None
    applied_to_reference_number: str | None = None


class Payment(STModel):
    id: int
    reference_number: str | None = None
    date: datetime | None = None
    total: Decimal | None = None
    unapplied_amount: Decimal | None = None
    type: str | None = None
    type_id: str | None = None
    customer: NamedRef | None = None
    business_unit: NamedRef | None = None
    general_ledger_account: GLAccountRef | None = None
    memo: str | None = None
    check_number: str | None = None
    auth_code: str | None = None
    sync_status: str | None = None
    active: bool = True
    created_on: datetime | None = None
    modified_on: datetime | None = None
    applied_to: list[PaymentApplication] = Field(default_factory=list)

    @field_validator("applied_to", mode="before")
    @classmethod
    def _no_null_applications(cls, value: Any) -> Any:
        return value or []


class InventoryBillItem(STModel):
    id: int
    order: int = 0
    name: str | None = None
    description: str | None = None
    quantity: Decimal | None = None
    cost: Decimal | None = None
    sku_id: int | None = None
    sku_code: str | None = None
    sku_type: str | None = None
    receipt_item_id: int | None = None
    general_ledger_account: GLAccountRef | None = None


class InventoryBill(STModel):
    id: int
    purchase_order_id: int | None = None
    reference_number: str | None = None
    vendor_number: str | None = None
    bill_date: datetime | None = None
    due_date: datetime | None = None
    bill_amount: Decimal | None = None
    tax_amount: Decimal | None = None
    shipping_amount: Decimal | None = None
    term_name: str | None = None
    sync_status: str | None = None
    vendor: NamedRef | None = None
    business_unit: NamedRef | None = None
    job_id: int | None = None
    job_number: str | None = None
    active: bool = True  # only the export feed sends it
    created_on: datetime | None = None
    modified_on: datetime | None = None
    items: list[InventoryBillItem] = Field(default_factory=list)

    @field_validator("items", mode="before")
    @classmethod
    def _no_null_items(cls, value: Any) -> Any:
        return value or []


class CustomerAddress(Address):
    latitude: float | None = None
    longitude: float | None = None


class Customer(STModel):
    id: int
    name: str
    type: str | None = None
    active: bool = True
    address: CustomerAddress | None = None
    balance: Decimal | None = None
    tax_exempt: bool = False
    merged_to_id: int | None = None
    created_on: datetime | None = None
    modified_on: datetime | None = None


class Location(STModel):
    id: int
    customer_id: int
    name: str
    active: bool = True
    address: CustomerAddress | None = None
    tax_zone_id: int | None = None
    created_on: datetime | None = None
    modified_on: datetime | None = None


class VendorContact(STModel):
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    email: str | None = None


class Vendor(STModel):
    id: int
    name: str
    active: bool = True
    address: Address | None = None
    contact_info: VendorContact | None = None
    default_tax_rate: Decimal | None = None
    created_on: datetime | None = None
    modified_on: datetime | None = None


class BusinessUnit(STModel):
    id: int
    name: str
    official_name: str | None = None
    active: bool = True
    account_code: str | None = None
    currency: str | None = None
    trade: NamedRef | None = None
    division: NamedRef | None = None
    created_on: datetime | None = None
    modified_on: datetime | None = None


class GLAccount(STModel):
    id: int
    name: str | None = None
    number: str | None = None
    description: str | None = None
    type: str | None = None
    subtype: str | None = None
    active: bool = True
    default_account_type: str | None = None
    created_on: datetime | None = None
    modified_on: datetime | None = None


class PurchaseOrderItem(STModel):
    id: int
    sku_id: int | None = None
    sku_code: str | None = None
    sku_name: str | None = None
    quantity: Decimal | None = None
    quantity_received: Decimal | None = None
    cost: Decimal | None = None
    total: Decimal | None = None
    status: str | None = None


class PurchaseOrder(STModel):
    id: int
    number: str
    status: str | None = None
    vendor_id: int | None = None
    business_unit_id: int | None = None
    job_id: int | None = None
    date: datetime | None = None
    received_on: datetime | None = None
    total: Decimal | None = None
    tax: Decimal | None = None
    shipping: Decimal | None = None
    created_on: datetime | None = None
    modified_on: datetime | None = None
    items: list[PurchaseOrderItem] = Field(default_factory=list)


M = TypeVar("M", bound=STModel)


# --- the resource table -------------------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    """One ServiceTitan resource as data: where it lives and how to read it."""

    name: str
    namespace: str
    path: str
    model: type[STModel]
    export_path: str | None = None
    active_param: str | None = "active"  # "active" (Any) / "activeState" (All) / None
    ids_as_array: bool = False  # vendors take ids=1&ids=2 instead of ids=1,2
    business_date: str | None = None  # model field holding the document's business date


STREAMS: dict[str, Stream] = {s.name: s for s in (
    Stream("business_units", "settings", "business-units", BusinessUnit, "export/business-units"),
    Stream("gl_accounts", "accounting", "gl-accounts", GLAccount),
    Stream("customers", "crm", "customers", Customer, "export/customers"),
    Stream("locations", "crm", "locations", Location, "export/locations"),
    Stream("vendors", "inventory", "vendors", Vendor, ids_as_array=True),
    Stream("purchase_orders", "inventory", "purchase-orders", PurchaseOrder, "export/purchase-orders",
           active_param=None, business_date="date"),
    Stream("invoices", "accounting", "invoices", Invoice, "export/invoices", active_param="activeState",
           business_date="invoice_date"),
    Stream("payments", "accounting", "payments", Payment, "export/payments", active_param="activeState",
           business_date="date"),
    Stream("inventory_bills", "accounting", "inventory-bills/paginated", InventoryBill, "export/inventory-bills",
           active_param=None, business_date="bill_date"),
)}


class CursorStore(Protocol):
    def get_cursor(self, connection: str, name: str) -> str | None: ...

    def set_cursor(self, connection: str, name: str, value: str) -> None: ...


@dataclass
class ExportPage:
    records: list[dict]
    continue_from: str
    has_more: bool


def format_time(value: date | datetime) -> str:
    """A filter value in UTC with a Z. Naive datetimes are refused (their zone is a guess)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("ServiceTitan filters need timezone-aware datetimes (UTC)")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{value.isoformat()}T00:00:00Z"


def _as_date(value: date | datetime) -> date:
    return value.astimezone(UTC).date() if isinstance(value, datetime) else value


# --- auth -----------------------------------------------------------------------------------------


def _classify_token_error(response: httpx.Response) -> type[RemoteError] | None:
    if response.status_code in (400, 401) and b"invalid_client" in response.content:
        return AuthError
    return None


class ServiceTitanTokenAuth:
    """Client-credentials token for one tenant: cached until ``margin`` seconds before expiry,
    fetched by one thread while others wait. ``clock`` returns seconds (tests pass a simulated one)."""

    def __init__(self, auth_url: str, client_id: str, client_secret: str, app_key: str, *,
                 margin_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 timeout: float = 30.0, retry: RetryPolicy | None = None,
                 transport: httpx.BaseTransport | None = None):
        for secret in (client_id, client_secret, app_key):
            register_secret(secret)
        self._client_id = client_id
        self._client_secret = client_secret
        self._app_key = app_key
        self._margin = margin_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.fetches = 0
        self._http = HttpClient(f"{SYSTEM}-auth", auth_url.rstrip("/"), timeout=timeout,
                                retry=retry or RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=30.0),
                                classify=_classify_token_error, transport=transport)

    def headers(self) -> dict[str, str]:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - self._margin:
                self._fetch()
            return {"Authorization": f"Bearer {self._token}", "ST-App-Key": self._app_key}

    def refresh(self, failed_headers: dict[str, str]) -> None:
        failed = {k.lower(): v for k, v in failed_headers.items()}.get("authorization")
        with self._lock:
            if self._token is None or failed == f"Bearer {self._token}":
                self._fetch()

    def _fetch(self) -> None:
        try:
            response = self._http.post("/connect/token", data={
                "grant_type": "client_credentials", "client_id": self._client_id,
                "client_secret": self._client_secret,
            }, use_auth=False, idempotent=True)  # a repeated grant only issues another token
        except AuthError as exc:
            raise AuthError("ServiceTitan refused the client credentials (invalid_client): check the "
                            "connection's st_client_id and st_client_secret in the vault", system=SYSTEM,
                            method="POST", path="/connect/token", status=exc.status) from None
        body = response.json()
        token = body["access_token"]
        register_secret(token)
        self._token = token
        self._expires_at = self._clock() + float(body.get("expires_in", 900))
        self.fetches += 1

    def close(self) -> None:
        self._http.close()


# --- the client -------------------------------------------------------------------------------------


class ServiceTitanClient:
    """Reads one ServiceTitan tenant. Every call carries ST-App-Key and a bearer token, goes
    through the shared HTTP layer (retries, 401 -> one refresh) and a rate limiter shared by every
    client of the same app key and tenant in the process (kept under the 60/s ceiling)."""

    def __init__(self, base_url: str, auth_url: str, tenant: int, client_id: str, client_secret: str,
                 app_key: str, rate_per_second: float = 50.0, *, page_size: int = MAX_PAGE_SIZE,
                 timeout: float = 100.0, retry: RetryPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic, token_margin_seconds: float = 60.0,
                 transport: httpx.BaseTransport | None = None):
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.tenant = int(tenant)
        self.page_size = page_size
        self.auth = ServiceTitanTokenAuth(auth_url, client_id, client_secret, app_key, clock=clock,
                                          margin_seconds=token_margin_seconds, transport=transport)
        key_hash = hashlib.sha256(app_key.encode()).hexdigest()[:16]
        # a small burst keeps any one-second window under the ceiling: burst + rate < 60
        headroom = int(RATE_CEILING - rate_per_second) - 2
        burst = max(1, min(int(rate_per_second), headroom)) if headroom >= 1 else max(1, int(rate_per_second // 10))
        self.limiter = RateLimiter.shared(f"{SYSTEM}:{key_hash}:{self.tenant}", rate_per_second, burst)
        self.http = HttpClient(SYSTEM, base_url.rstrip("/"), auth=self.auth, timeout=timeout,
                               retry=retry or RetryPolicy(max_attempts=8, base_delay=0.25, max_delay=20.0),
                               limiter=self.limiter, transport=transport)

    # housekeeping
    def close(self) -> None:
        self.http.close()
        self.auth.close()

    def __enter__(self) -> ServiceTitanClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def token_fetches(self) -> int:
        return self.auth.fetches

    def path(self, namespace: str, resource: str) -> str:
        return f"/{namespace}/v2/tenant/{self.tenant}/{resource}"

    def get_json(self, namespace: str, resource: str, params: Any = None) -> Any:
        response = self.http.get(self.path(namespace, resource), params=params)
        return json.loads(response.content, parse_float=Decimal)

    # --- generic readers -----------------------------------------------------------------------
    def list_pages(self, namespace: str, resource: str, params: dict | None = None,
                   page_size: int | None = None) -> Iterator[list[dict]]:
        """Raw pages of a list endpoint, one request at a time. Handles the enveloped form and the
        bare-array form (inventory-bills), which has no ``hasMore``: a short page ends it."""
        size = page_size or self.page_size
        page = 1
        while True:
            body = self.get_json(namespace, resource, {**(params or {}), "page": page, "pageSize": size})
            if isinstance(body, list):
                yield body
                if len(body) < size:
                    return
            else:
                yield body.get("data") or []
                if not body.get("hasMore"):
                    return
            page += 1

    def iterate(self, stream: str, *, ids: Iterable[int] | None = None, params: dict | None = None,
                include_inactive: bool = True) -> Iterator[STModel]:
        """Records of a list endpoint as models, page by page; ``ids`` are sent 50 at a time."""
        s = STREAMS[stream]
        base = dict(params or {})
        if include_inactive and s.active_param == "active":
            base.setdefault("active", "Any")
        elif include_inactive and s.active_param == "activeState":
            base.setdefault("activeState", "All")
        batches: Iterable[list[int] | None] = [None] if ids is None else _chunks(ids, MAX_IDS)
        for batch in batches:
            query: Any = dict(base)
            if batch is not None:
                if s.ids_as_array:
                    query = list(base.items()) + [("ids", str(i)) for i in batch]
                else:
                    query["ids"] = ",".join(str(i) for i in batch)
            for rows in self._pages_with_query(s, query):
                for row in rows:
                    yield s.model.model_validate(row)

    def _pages_with_query(self, s: Stream, query: Any) -> Iterator[list[dict]]:
        if isinstance(query, list):  # repeated params: page/pageSize appended per request
            page = 1
            while True:
                body = self.get_json(s.namespace, s.path, query + [("page", page), ("pageSize", self.page_size)])
                yield body.get("data") or []
                if not body.get("hasMore"):
                    return
                page += 1
        else:
            yield from self.list_pages(s.namespace, s.path, query)

    def export_pages(self, stream: str, from_token: str | None = None,
                     include_recent_changes: bool = True) -> Iterator[ExportPage]:
        """Raw export pages from ``from_token`` (a continuation token, a date, or the beginning)
        until ``hasMore`` is false."""
        s = STREAMS[stream]
        if s.export_path is None:
            raise ValueError(f"ServiceTitan has no export feed for {stream}; use the list endpoint")
        token = from_token
        while True:
            params = {"includeRecentChanges": "true" if include_recent_changes else "false"}
            if token:
                params["from"] = token
            body = self.get_json(s.namespace, s.export_path, params)
            page = ExportPage(body.get("data") or [], body["continueFrom"], bool(body.get("hasMore")))
            yield page
            token = page.continue_from
            if not page.has_more:
                return

    def export(self, stream: str, *, store: CursorStore | None = None, connection: str | None = None,
               from_token: str | None = None, include_recent_changes: bool = True) -> Iterator[STModel]:
        """Every record changed since the stored (or given) continuation token, oldest change
        first; the token is saved after each page has been consumed. A record can come twice
        (ServiceTitan's own caveat): deduplicate on (id, modifiedOn)."""
        if store is not None and not connection:
            raise ValueError("a cursor store needs the connection name")
        cursor = f"st_export_{stream}"
        if from_token is None and store is not None:
            from_token = store.get_cursor(connection, cursor)
        model = STREAMS[stream].model
        for page in self.export_pages(stream, from_token, include_recent_changes):
            for row in page.records:
                yield model.model_validate(row)
            if store is not None:
                store.set_cursor(connection, cursor, page.continue_from)

    # --- typed list methods ------------------------------------------------------------------
    def business_units(self, *, ids: Iterable[int] | None = None, include_inactive: bool = True
                       ) -> Iterator[BusinessUnit]:
        return self.iterate("business_units", ids=ids, include_inactive=include_inactive)

    def gl_accounts(self, *, ids: Iterable[int] | None = None, include_inactive: bool = True
                    ) -> Iterator[GLAccount]:
        return self.iterate("gl_accounts", ids=ids, include_inactive=include_inactive)

    def customers(self, *, ids: Iterable[int] | None = None, modified_on_or_after: datetime | None = None,
                  modified_before: datetime | None = None, include_inactive: bool = True) -> Iterator[Customer]:
        return self.iterate("customers", ids=ids, include_inactive=include_inactive,
                            params=_window(modified_on_or_after, modified_before))

    def customer(self, customer_id: int) -> Customer:
        return Customer.model_validate(self.get_json("crm", f"customers/{int(customer_id)}"))

    def locations(self, *, ids: Iterable[int] | None = None, customer_id: int | None = None,
                  modified_on_or_after: datetime | None = None, modified_before: datetime | None = None,
                  include_inactive: bool = True) -> Iterator[Location]:
        params = _window(modified_on_or_after, modified_before)
        if customer_id is not None:
            params["customerId"] = int(customer_id)
        return self.iterate("locations", ids=ids, include_inactive=include_inactive, params=params)

    def vendors(self, *, ids: Iterable[int] | None = None, modified_on_or_after: datetime | None = None,
                modified_before: datetime | None = None, include_inactive: bool = True) -> Iterator[Vendor]:
        return self.iterate("vendors", ids=ids, include_inactive=include_inactive,
                            params=_window(modified_on_or_after, modified_before))

    def purchase_orders(self, *, ids: Iterable[int] | None = None, modified_on_or_after: datetime | None = None,
                        modified_before: datetime | None = None) -> Iterator[PurchaseOrder]:
        return self.iterate("purchase_orders", ids=ids, params=_window(modified_on_or_after, modified_before))

    def invoices(self, *, invoiced_on_or_after: date | None = None, invoiced_before: date | None = None,
                 modified_on_or_after: datetime | None = None, modified_before: datetime | None = None,
                 ids: Iterable[int] | None = None, business_unit_id: int | None = None,
                 include_inactive: bool = True) -> Iterator[Invoice]:
        """Invoices, optionally by invoice date (a business day window: on or after, before)."""
        params = _window(modified_on_or_after, modified_before)
        if invoiced_on_or_after is not None:
            params["invoicedOnOrAfter"] = format_time(_as_date(invoiced_on_or_after))
        if invoiced_before is not None:
            params["invoicedOnBefore"] = format_time(_as_date(invoiced_before))
        if business_unit_id is not None:
            params["businessUnitId"] = int(business_unit_id)
        records = self.iterate("invoices", ids=ids, include_inactive=include_inactive, params=params)
        return _in_days(records, "invoice_date", invoiced_on_or_after, invoiced_before)

    def payments(self, *, paid_on_or_after: date | None = None, paid_before: date | None = None,
                 modified_on_or_after: datetime | None = None, modified_before: datetime | None = None,
                 ids: Iterable[int] | None = None, applied_to_invoice_ids: Iterable[int] | None = None,
                 include_inactive: bool = True) -> Iterator[Payment]:
        """Payments by payment date. ``paidOnAfter``'s inclusiveness is undocumented, so the
        request asks from the day before and the window is applied here, exactly."""
        params = _window(modified_on_or_after, modified_before)
        if paid_on_or_after is not None:
            params["paidOnAfter"] = format_time(_as_date(paid_on_or_after) - timedelta(days=1))
        if paid_before is not None:
            params["paidOnBefore"] = format_time(_as_date(paid_before))
        if applied_to_invoice_ids is not None:
            wanted = [int(i) for i in applied_to_invoice_ids]
            def by_invoice() -> Iterator[STModel]:
                for batch in _chunks(wanted, MAX_IDS):
                    yield from self.iterate("payments", ids=ids, include_inactive=include_inactive,
                                            params={**params, "appliedToInvoiceIds": ",".join(map(str, batch))})
            records: Iterator[STModel] = _unique(by_invoice())
        else:
            records = self.iterate("payments", ids=ids, include_inactive=include_inactive, params=params)
        return _in_days(records, "date", paid_on_or_after, paid_before)

    def inventory_bills(self, *, bill_date_on_or_after: date | None = None, bill_date_before: date | None = None,
                        modified_on_or_after: datetime | None = None, modified_before: datetime | None = None,
                        ids: Iterable[int] | None = None) -> Iterator[InventoryBill]:
        """Inventory bills (the paginated variant) by bill date; ``dateTo``'s inclusiveness is
        undocumented, so it asks for the last day too and applies the window here."""
        params = _window(modified_on_or_after, modified_before)
        if bill_date_on_or_after is not None:
            params["dateFrom"] = format_time(_as_date(bill_date_on_or_after))
        if bill_date_before is not None:
            params["dateTo"] = format_time(_as_date(bill_date_before))
        records = self.iterate("inventory_bills", ids=ids, params=params)
        return _in_days(records, "bill_date", bill_date_on_or_after, bill_date_before)

    # --- exports --------------------------------------------------------------------------------
    def export_invoices(self, store: CursorStore | None = None, connection: str | None = None,
                        from_token: str | None = None, include_recent_changes: bool = True) -> Iterator[Invoice]:
        return self.export("invoices", store=store, connection=connection, from_token=from_token,
                           include_recent_changes=include_recent_changes)

    def export_payments(self, store: CursorStore | None = None, connection: str | None = None,
                        from_token: str | None = None, include_recent_changes: bool = True) -> Iterator[Payment]:
        return self.export("payments", store=store, connection=connection, from_token=from_token,
                           include_recent_changes=include_recent_changes)

    def export_inventory_bills(self, store: CursorStore | None = None, connection: str | None = None,
                               from_token: str | None = None, include_recent_changes: bool = True
                               ) -> Iterator[InventoryBill]:
        return self.export("inventory_bills", store=store, connection=connection, from_token=from_token,
                           include_recent_changes=include_recent_changes)

    def export_customers(self, store: CursorStore | None = None, connection: str | None = None,
                         from_token: str | None = None, include_recent_changes: bool = True) -> Iterator[Customer]:
        return self.export("customers", store=store, connection=connection, from_token=from_token,
                           include_recent_changes=include_recent_changes)

    def export_locations(self, store: CursorStore | None = None, connection: str | None = None,
                         from_token: str | None = None, include_recent_changes: bool = True) -> Iterator[Location]:
        return self.export("locations", store=store, connection=connection, from_token=from_token,
                           include_recent_changes=include_recent_changes)

    def export_purchase_orders(self, store: CursorStore | None = None, connection: str | None = None,
                               from_token: str | None = None, include_recent_changes: bool = True
                               ) -> Iterator[PurchaseOrder]:
        return self.export("purchase_orders", store=store, connection=connection, from_token=from_token,
                           include_recent_changes=include_recent_changes)


def _chunks(values: Iterable[int], size: int) -> Iterator[list[int]]:
    batch: list[int] = []
    for value in values:
        batch.append(int(value))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _window(on_or_after: datetime | None, before: datetime | None) -> dict:
    params: dict[str, Any] = {}
    if on_or_after is not None:
        params["modifiedOnOrAfter"] = format_time(on_or_after)
    if before is not None:
        params["modifiedBefore"] = format_time(before)
    return params


def _in_days(records: Iterator[M], field: str, on_or_after: date | None, before: date | None) -> Iterator[M]:
    """Keep records whose business date is in [on_or_after, before) (UTC dates)."""
    lo = _as_date(on_or_after) if on_or_after is not None else None
    hi = _as_date(before) if before is not None else None
    for record in records:
        value = getattr(record, field)
        day = value.astimezone(UTC).date() if value is not None else None
        if (lo is not None or hi is not None) and day is None:
            continue
        if lo is not None and day < lo:
            continue
        if hi is not None and day >= hi:
            continue
        yield record


def _unique(records: Iterator[M]) -> Iterator[M]:
    seen: set[int] = set()
    for record in records:
        if record.id not in seen:
            seen.add(record.id)
            yield record


def day_window(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a business day in UTC, for callers building modified windows."""
    start = datetime.combine(day, dtime.min, UTC)
    return start, start + timedelta(days=1)


# --- Dagster resource ---------------------------------------------------------------------------


class ServiceTitanResource(ConfigurableResource):
    """ServiceTitan for one connection. Config holds no secrets: the client id, client secret and
    app key come from the vault (names st_client_id, st_client_secret, st_app_key) at run time."""

    connection: str
    base_url: str = "https://api.servicetitan.io"
    auth_url: str = "https://auth.servicetitan.io"
    tenant: int
    rate_per_second: float = 50.0
    page_size: int = MAX_PAGE_SIZE

    def get_client(self) -> ServiceTitanClient:
        from resources.vault import open_vault

        vault = open_vault()
        return ServiceTitanClient(
            self.base_url, self.auth_url, self.tenant,
            client_id=vault.get(self.connection, "st_client_id"),
            client_secret=vault.get(self.connection, "st_client_secret"),
            app_key=vault.get(self.connection, "st_app_key"),
            rate_per_second=self.rate_per_second, page_size=self.page_size,
        )
