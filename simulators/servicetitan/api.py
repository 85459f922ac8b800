"""The ServiceTitan resources the simulator serves, declared as data (namespace, path, table,
scope, filters, export feed), and the engine that answers list, by-id and export requests.

List semantics follow the reference: ``page`` from 1 (0 tolerated), ``pageSize`` default 50 and
max 5000, ``includeTotal``, ``ids`` at most 50, ``active``/``activeState`` defaulting to active
only, created/modified windows (on-or-after inclusive, before exclusive), ``sort=±Field``, and
unknown parameters silently ignored. Parameters the spec types as arrays travel the OpenAPI
default way (form style, exploded: ``statuses=A&statuses=B``); a string parameter given twice
binds its first value, as ASP.NET does. Export feeds take ``from`` (a continuation token or a date)
and ``includeRecentChanges``, return active, inactive and deleted rows ordered by modifiedOn.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field

from simulators.servicetitan.model import Row, TenantData
from simulators.servicetitan.render import render
from simulators.servicetitan.wire import DAY_TICKS, TICKS, parse_time, ticks_of_day

MAX_IDS = 50
MAX_PAGE_SIZE = 5000


class BadRequest(Exception):
    """A 400 with ASP.NET-style field errors."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("One or more validation errors occurred.")
        self.errors = errors


Predicate = Callable[[Row], bool]
FilterBuilder = Callable[[str, dict], Predicate]


def _day_ticks(row) -> int:
    from datetime import date

    return ticks_of_day(date.fromordinal(row.day))


def _time_filter(getter: Callable[[Row], int | None], op: str) -> FilterBuilder:
    def build(value: str, options: dict) -> Predicate:
        bound = parse_time(value)
        if op == "ge":
            return lambda r: (v := getter(r)) is not None and v >= bound
        if op == "gt":
            return lambda r: (v := getter(r)) is not None and v > bound
        if op == "le":
            return lambda r: (v := getter(r)) is not None and v <= bound
        return lambda r: (v := getter(r)) is not None and v < bound
    return build


def _paid_on_after(value: str, options: dict) -> Predicate:
    # "paidOnAfter" is not documented as inclusive; exclusive unless options say otherwise.
    op = "ge" if options.get("paid_on_after_inclusive", False) else "gt"
    return _time_filter(_day_ticks, op)(value, options)


def _bill_date_to(value: str, options: dict) -> Predicate:
    # "dateTo" semantics are undocumented; inclusive by default, exclusive if configured.
    op = "lt" if options.get("bill_date_to_exclusive", False) else "le"
    return _time_filter(_day_ticks, op)(value, options)


def _int_eq(attr: str) -> FilterBuilder:
    def build(value: str, options: dict) -> Predicate:
        target = _parse_int(value, attr)
        return lambda r: getattr(r, attr) == target
    return build


def _int_in(attr: str) -> FilterBuilder:
    def build(value: str, options: dict) -> Predicate:
        wanted = {_parse_int(v, attr) for v in value.split(",") if v.strip()}
        return lambda r: getattr(r, attr) in wanted
    return build


def _str_in(attr: str) -> FilterBuilder:
    def build(value: str, options: dict) -> Predicate:
        wanted = {v.strip() for v in value.split(",") if v.strip()}
        return lambda r: getattr(r, attr) in wanted
    return build


def _contains(attr: str) -> FilterBuilder:
    def build(value: str, options: dict) -> Predicate:
        needle = value.casefold()
        return lambda r: needle in getattr(r, attr).casefold()
    return build


def _applied_to(value: str, options: dict) -> Predicate:
    wanted = {_parse_int(v, "appliedToInvoiceIds") for v in value.split(",") if v.strip()}
    return lambda r: any(a.invoice_id in wanted for a in r.applied)


def _parse_int(value: str, name: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise BadRequest({name: [f"The value '{value}' is not valid."]}) from None


@dataclass(frozen=True)
class AnyOf:
    """An array-typed query parameter: a row matches when ``get(row)`` is one of the values.

    The spec leaves style/explode at the OpenAPI defaults (form, explode: true), so each element
    is its own ``name=value`` pair and a comma is part of the value, not a separator. ASP.NET binds
    every element and refuses one it cannot parse (an enum name, matched case-insensitively, or an
    integer) with a 400 naming the parameter."""

    get: Callable[[Row], object]
    choices: tuple[str, ...] = ()  # the spec's enum; empty means integers

    def build(self, name: str, values: list[str]) -> Predicate:
        wanted = {self._element(name, v) for v in values}
        get = self.get
        return lambda r: get(r) in wanted

    def _element(self, name: str, value: str) -> object:
        if not self.choices:
            return _parse_int(value, name)
        for choice in self.choices:
            if choice.lower() == value.strip().lower():
                return choice
        raise BadRequest({name: [f"The value '{value}' is not valid."]})


def _attr(name: str) -> Callable[[Row], object]:
    return lambda r: getattr(r, name)


# The enums of the array parameters served (accounting v2: TransactionStatus, InvoiceReviewStatus,
# InvoiceConfiguration, InventoryBillSyncStatus).
TRANSACTION_STATUSES = ("Pending", "Posted", "Exported")
REVIEW_STATUSES = ("NeedsReview", "OnHold", "Reviewed", "PendingApproval", "Rejected", "ReadyForBilling", "Invoiced")
INVOICE_CONFIGURATIONS = ("JobInvoice", "ProjectInvoice", "CounterSales", "MembershipInvoice",
                          "InterestChargeInvoice", "ARImportInvoice")
BILL_SYNC_STATUSES = ("Pending", "Posted", "Exported", "PostedAndExported")


COMMON: dict[str, FilterBuilder] = {
    "createdOnOrAfter": _time_filter(lambda r: r.created, "ge"),
    "createdBefore": _time_filter(lambda r: r.created, "lt"),
    "modifiedOnOrAfter": _time_filter(lambda r: r.modified, "ge"),
    "modifiedBefore": _time_filter(lambda r: r.modified, "lt"),
}


@dataclass(frozen=True)
class Resource:
    namespace: str
    path: str
    kind: str
    scope: str
    active_param: str | None = "active"  # "active" (True|Any|False), "activeState", or None
    filters: dict[str, FilterBuilder | AnyOf] = field(default_factory=dict)
    ids_array: bool = False  # ``ids`` typed as an array (repeated), not a comma-delimited string
    modified_filters: bool = True
    export: bool = False
    by_id: bool = False
    label: str = "Record"


RESOURCES: tuple[Resource, ...] = (
    Resource("settings", "business-units", "business-units", "tn.stt.businessunits:r", export=True, by_id=True,
             filters={"name": _contains("name")}, label="Business unit"),
    Resource("accounting", "gl-accounts", "gl-accounts", "tn.acc.glaccounts:r", by_id=True,
             filters={"numbers": _str_in("number"), "types": _str_in("type")}, label="GL account"),
    Resource("accounting", "payment-types", "payment-types", "tn.acc.paymenttypes:r", by_id=True,
             modified_filters=False, label="Payment type"),
    Resource("crm", "customers", "customers", "tn.crm.customers:r", export=True, by_id=True,
             filters={"name": _contains("name")}, label="Customer"),
    Resource("crm", "locations", "locations", "tn.crm.locations:r", export=True, by_id=True,
             filters={"customerId": _int_eq("customer_id"), "name": _contains("name")}, label="Location"),
    Resource("inventory", "vendors", "vendors", "tn.inv.vendors:r", by_id=True, ids_array=True, label="Vendor"),
    Resource("inventory", "purchase-orders", "purchase-orders", "tn.inv.purchaseorders:r", active_param=None,
             export=True, by_id=True, label="Purchase order", filters={
                 "status": _str_in("status"), "number": _str_in("number"), "jobId": _int_eq("job_id"),
                 "dateOnOrAfter": _time_filter(_day_ticks, "ge"), "dateBefore": _time_filter(_day_ticks, "lt")}),
    Resource("inventory", "receipts", "receipts", "tn.inv.receipts:r", label="Receipt", filters={
        "purchaseOrderIds": _int_in("po_id"), "billId": _int_eq("bill_id"), "vendorIds": _int_in("vendor_id"),
        "businessUnitIds": _int_in("bu_id"),
        "receivedOnOrAfter": _time_filter(lambda r: r.received, "ge"),
        "receivedBefore": _time_filter(lambda r: r.received, "lt")}),
    Resource("accounting", "invoices", "invoices", "tn.acc.invoices:r", active_param="activeState", export=True,
             label="Invoice", filters={
                 "invoicedOnOrAfter": _time_filter(_day_ticks, "ge"),
                 "invoicedOnBefore": _time_filter(_day_ticks, "lt"),
                 "businessUnitId": _int_eq("bu_id"), "customerId": _int_eq("customer_id"),
                 "jobId": _int_eq("job_id"), "number": _str_in("number"),
                 "statuses": AnyOf(_attr("sync_status"), TRANSACTION_STATUSES),
                 "reviewStatuses": AnyOf(_attr("review_status"), REVIEW_STATUSES),
                 "assignedToIds": AnyOf(lambda r: None),  # nobody is assigned in the simulator
                 "invoiceConfigurations": AnyOf(lambda r: "JobInvoice", INVOICE_CONFIGURATIONS),  # as rendered
                 "adjustmentToId": _int_eq("adjustment_to")}),
    Resource("accounting", "payments", "payments", "tn.acc.payments:r", active_param="activeState", export=True,
             label="Payment", filters={
                 "paidOnAfter": _paid_on_after, "paidOnBefore": _time_filter(_day_ticks, "lt"),
                 "customerId": _int_eq("customer_id"), "businessUnitIds": _int_in("bu_id"),
                 "appliedToInvoiceIds": _applied_to, "statuses": _str_in("sync_status")}),
    Resource("accounting", "inventory-bills", "inventory-bills", "tn.acc.inventorybills:r", active_param=None,
             export=True, label="Inventory bill", filters={
                 "dateFrom": _time_filter(_day_ticks, "ge"), "dateTo": _bill_date_to,
                 "businessUnitIds": _int_in("bu_id"), "billNumber": _str_in("number"),
                 "syncStatuses": AnyOf(_attr("sync_status"), BILL_SYNC_STATUSES)}),
)

BY_ROUTE = {(r.namespace, r.path): r for r in RESOURCES}


@dataclass
class Route:
    resource: Resource
    mode: str  # list | bare | export | one
    record_id: int | None = None


def resolve(namespace: str, rest: str) -> Route | None:
    """'invoices', 'export/invoices', 'customers/123', 'inventory-bills/paginated' -> Route."""
    parts = [p for p in rest.split("/") if p]
    if len(parts) == 2 and parts[0] == "export":
        res = BY_ROUTE.get((namespace, parts[1]))
        return Route(res, "export") if res and res.export else None
    if not parts:
        return None
    res = BY_ROUTE.get((namespace, parts[0]))
    if res is None:
        return None
    if len(parts) == 1:
        return Route(res, "bare" if res.kind == "inventory-bills" else "list")
    if len(parts) == 2 and parts[1] == "paginated" and res.kind == "inventory-bills":
        return Route(res, "list")
    if len(parts) == 2 and res.by_id and parts[1].isdigit():
        return Route(res, "one", int(parts[1]))
    return None


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _active_predicate(res: Resource, params) -> Predicate | None:
    if res.active_param == "activeState":
        value = (params.get("activeState") or "ActiveOnly").strip().lower()
        choices = {"activeonly": lambda r: r.active, "inactiveonly": lambda r: not r.active, "all": None}
    elif res.active_param == "active":
        value = (params.get("active") or "True").strip().lower()
        choices = {"true": lambda r: r.active, "false": lambda r: not r.active, "any": None}
    else:
        return None
    if value not in choices:
        raise BadRequest({res.active_param: [f"The value '{params.get(res.active_param)}' is not valid."]})
    return choices[value]


def _first(params, name: str) -> str | None:
    """A scalar parameter given more than once binds its first value (ASP.NET's FirstValue)."""
    values = params.getlist(name)
    return values[0] if values else None


def _ids(res: Resource, params) -> list[int] | None:
    if res.ids_array:
        raw = [v for v in params.getlist("ids") if v.strip()]
    else:
        raw = [v for v in (_first(params, "ids") or "").split(",") if v.strip()]
    if not raw:
        return None
    ids = [_parse_int(v, "ids") for v in raw]
    if len(ids) > MAX_IDS:
        raise BadRequest({"Ids": [f"Simple IDs lookup should not contain more than {MAX_IDS} items."]})
    return ids


SORT_KEYS = {"id": lambda r: r.id, "modifiedon": lambda r: (r.modified, r.id), "createdon": lambda r: (r.created, r.id)}


def list_page(data: TenantData, res: Resource, params, options: dict) -> dict:
    """The standard envelope ``{page, pageSize, hasMore, totalCount, data}`` for one page."""
    try:
        page = int(params.get("page") or 1)
        page_size = int(params.get("pageSize") or 50)
    except ValueError:
        raise BadRequest({"page": ["page and pageSize must be integers."]}) from None
    page = max(page, 1)
    if page_size < 1:
        raise BadRequest({"PageSize": [f"The field PageSize must be between 1 and {MAX_PAGE_SIZE}."]})
    if page_size > MAX_PAGE_SIZE:
        if options.get("page_size_over_max", "reject") == "clamp":
            page_size = MAX_PAGE_SIZE
        else:
            raise BadRequest({"PageSize": [f"The field PageSize must be between 1 and {MAX_PAGE_SIZE}."]})
    include_total = _flag(params.get("includeTotal"))
    predicates: list[Predicate] = []
    active = _active_predicate(res, params)
    if active:
        predicates.append(active)
    builders = dict(res.filters)
    if res.modified_filters:
        builders.update(COMMON)
    else:
        builders.update({k: v for k, v in COMMON.items() if k.startswith("created")})
    for name, build in builders.items():
        if isinstance(build, AnyOf):
            values = [v for v in params.getlist(name) if v.strip()]
            if values:
                predicates.append(build.build(name, values))
            continue
        value = _first(params, name)
        if value:
            try:
                predicates.append(build(value, options))
            except ValueError:
                raise BadRequest({name: [f"The value '{value}' is not valid."]}) from None
    ids = _ids(res, params)
    sort = (params.get("sort") or "").strip()
    with data.lock:
        table = data.tables[res.kind]
        if ids is not None:
            source = [table.rows[i] for i in sorted(set(ids)) if i in table.rows]
        else:
            source = table.rows.values()
        if sort:
            key = SORT_KEYS.get(sort.lstrip("+- ").lower())
            if key is not None:
                source = sorted(source, key=key, reverse=sort.startswith("-"))
        start = (page - 1) * page_size
        selected, matched = [], 0
        for row in source:
            if row.deleted or not all(p(row) for p in predicates):
                continue
            matched += 1
            if matched > start and len(selected) <= page_size:
                selected.append(row)
            if not include_total and len(selected) > page_size:
                break
        has_more = len(selected) > page_size
        rendered = [render(data, res.kind, row) for row in selected[:page_size]]
    return {"page": page, "pageSize": page_size, "hasMore": has_more,
            "totalCount": matched if include_total else None, "data": rendered}


def one(data: TenantData, res: Resource, record_id: int) -> dict | None:
    with data.lock:
        row = data.tables[res.kind].rows.get(record_id)
        if row is None or row.deleted:
            return None
        return render(data, res.kind, row)


# --- export feeds ------------------------------------------------------------------------------

_TOKEN_PREFIX = "stx1:"
_END = 2**62


def encode_token(key: tuple[int, int]) -> str:
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{key[0]}:{key[1]}".encode()).decode().rstrip("=")


def decode_from(value: str | None) -> tuple[int, int]:
    """A continuation token or a date (inclusive, on modifiedOn) -> log position to read after."""
    if not value:
        return (0, 0)
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        if raw.startswith(_TOKEN_PREFIX):
            ticks, seq = raw[len(_TOKEN_PREFIX):].split(":")
            return (int(ticks), int(seq))
    except (ValueError, UnicodeDecodeError):
        pass
    try:
        return (parse_time(value) - 1, _END)
    except ValueError:
        raise BadRequest({"from": [f"'{value}' is neither a continuation token nor a date."]}) from None


def export_page(data: TenantData, res: Resource, params, options: dict, now_ticks: int) -> dict:
    """``{hasMore, continueFrom, data}``: rows after the position, oldest change first."""
    position = decode_from(params.get("from"))
    recent = _flag(params.get("includeRecentChanges"))
    lag = int(float(options.get("export_lag_seconds", 900)) * TICKS)
    size = int(options.get("export_page_size", 1000))
    horizon = now_ticks - lag
    with data.lock:
        table = data.tables[res.kind]
        picked = []
        for key, row in table.scan(position, None if recent else horizon):
            picked.append((key, row))
            if len(picked) > size:
                break
        has_more = len(picked) > size
        picked = picked[:size]
        rendered = [render(data, res.kind, row, export=True) for _, row in picked]
    last = picked[-1][0] if picked else position
    if recent and not has_more and options.get("export_duplicates", True) and last[0] > horizon:
        # the documented caveat of includeRecentChanges: the latest changes come again next time
        last = max(position, (horizon, _END))
    return {"hasMore": has_more, "continueFrom": encode_token(last), "data": rendered}


__all__ = ["DAY_TICKS", "RESOURCES", "BadRequest", "Route", "export_page", "list_page", "one", "resolve"]
