"""Reading a connection's day from ServiceTitan: which list call and date window serve each
document type, and fetching the parties the day's documents reference. Records leave here in
ServiceTitan's own JSON shape (camelCase), which is what the mapping rules and the replayable
source payloads use."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from pydantic.alias_generators import to_camel

DAY_READERS = {
    "invoice": lambda c, d: c.invoices(invoiced_on_or_after=d, invoiced_before=d + timedelta(days=1)),
    "payment": lambda c, d: c.payments(paid_on_or_after=d, paid_before=d + timedelta(days=1)),
    "bill": lambda c, d: c.inventory_bills(bill_date_on_or_after=d, bill_date_before=d + timedelta(days=1)),
}
ID_READERS = {
    "customer": lambda c, ids: c.customers(ids=ids),
    "vendor": lambda c, ids: c.vendors(ids=ids),
    "invoice": lambda c, ids: c.invoices(ids=ids),
    "payment": lambda c, ids: c.payments(ids=ids),
    "bill": lambda c, ids: c.inventory_bills(ids=ids),
}
EXPORT_STREAMS = {"invoice": "invoices", "payment": "payments", "bill": "inventory_bills"}
DATE_FIELD = {"invoice": "invoiceDate", "payment": "date", "bill": "billDate"}


def api_shape(value: Any) -> Any:
    """A client model (snake_case) back to ServiceTitan's camelCase JSON."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    if isinstance(value, dict):
        return {to_camel(k) if "_" in k else k: api_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [api_shape(v) for v in value]
    return value


def day_records(client, source_type: str, day: date) -> list[dict]:
    return [api_shape(m) for m in DAY_READERS[source_type](client, day)]


def referenced_ids(records: Iterable[dict], entity: str) -> list[int]:
    ids = {(r.get(entity) or {}).get("id") for r in records}
    return sorted(i for i in ids if i is not None)


def by_ids(client, entity: str, ids: list[int]) -> list[dict]:
    if not ids:
        return []
    return [api_shape(m) for m in ID_READERS[entity](client, ids)]


def changed_days(client, store, connection: str, source_type: str, first_from: str, max_records: int = 20000,
                 tokens: dict[str, str] | None = None) -> set[date]:
    """Business days of the records changed since the stored export continuation token; the
    token advances page by page (so a crash re-reads at most one page). A row identical to the
    version already registered (a webhook run read it first; compared in the shape the extract
    stores) names no day: re-running that day would only hold the connection's run slot while
    webhook runs wait behind it. Any difference still names the day. With ``tokens`` (cursor name
    -> token) the read starts from and advances those instead of the stored ones: the caller (the
    catch-up) commits them once the days they name have run requests."""
    from resources.servicetitan import STREAMS
    from resources.store import as_stored

    days: set[date] = set()
    stream = EXPORT_STREAMS[source_type]
    model = STREAMS[stream].model
    cursor = f"st_export_{stream}"
    token = (tokens or {}).get(cursor) or store.get_cursor(connection, cursor) or first_from
    seen = 0
    for page in client.export_pages(stream, token):
        known = store.latest_sources(connection, source_type, [str(r.get("id")) for r in page.records])
        for row in page.records:
            stored = known.get(str(row.get("id")))
            if stored is not None and stored == as_stored(api_shape(model.model_validate(row))):
                continue
            value = row.get(DATE_FIELD[source_type]) or row.get("createdOn")
            if value:
                days.add(date.fromisoformat(str(value)[:10]))
        if tokens is None:
            store.set_cursor(connection, cursor, page.continue_from)
        else:
            tokens[cursor] = page.continue_from
        seen += len(page.records)
        if seen >= max_records:
            break
    return days
