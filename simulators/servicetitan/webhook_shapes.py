"""The bodies the ServiceTitan simulator delivers, one renderer per envelope shape.

Only V1's layout is known from captured deliveries; V2's envelope is not public
(docs/servicetitan-webhooks.md), so ``v2`` is our labelled guess and ``current`` is the envelope
fieldledger has used so far; ``unlisted`` is a layout none of those (a future variant), for the
receiving side's fallback. Which shape a registration gets is a setting, so tests run the same
change through every shape. ``date_shift_days`` moves the business dates in a payload (not in the
API): a delivery whose dates lie, for tests that the receiving side reads the record instead.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

SHAPES = ("current", "v1", "v2", "unlisted")
BUSINESS_DATES = ("invoiceDate", "dueDate", "date", "billDate", "paidOn")


def per_tenant(value, tenant: int, key: str, default: str) -> str:
    """An option given once for every tenant (``v1``) or per tenant, by contractor key or tenant id
    (``cascade-hvac:v1,1000002:v2``, or a dict); tenants not named get ``default``."""
    if value is None or value == "":
        return default
    if isinstance(value, dict):
        chosen = value.get(key, value.get(str(tenant), value.get(tenant)))
        return default if chosen is None else str(chosen)
    text = str(value)
    if ":" not in text:
        return text
    for part in text.split(","):
        name, _, chosen = part.partition(":")
        if name.strip() in (key, str(tenant)):
            return chosen.strip()
    return default


def pascal_event(event_type: str) -> str:
    """``invoice.created`` -> ``InvoiceCreated``; ``inventorybill.created`` -> ``InventoryBillCreated``."""
    entity, _, action = event_type.partition(".")
    return entity_name(entity) + action.capitalize()


def entity_name(entity: str) -> str:
    """``invoice`` -> ``Invoice``; ``inventorybill`` -> ``InventoryBill``."""
    return {"inventorybill": "InventoryBill"}.get(entity, entity.capitalize())


def shifted(record: dict, days: int) -> dict:
    """The record with its business dates moved by ``days`` (the payload lies; the API does not)."""
    if not days:
        return record
    out = dict(record)
    for name in BUSINESS_DATES:
        value = out.get(name)
        if isinstance(value, str) and len(value) >= 10:
            try:
                moved = date.fromisoformat(value[:10]) + timedelta(days=days)
            except ValueError:
                continue
            out[name] = moved.isoformat() + value[10:]
    return out


def render(shape: str, *, event_type: str, record: dict, webhook_id: int, tenant: int, tenant_name: str,
           created: datetime, event_stamp: str) -> tuple[str, dict]:
    """(event id, body) of one delivery. ``event_stamp`` is the event's instant in ServiceTitan's
    7-digit form; V1 uses it as the event id, as captured deliveries do."""
    if shape == "v1":
        # the entity's own fields at the top level, routing data beside them (captured V1 layout)
        info = {"eventId": event_stamp, "webhookId": webhook_id, "webhookType": pascal_event(event_type)}
        body = {**record, "eventId": event_stamp, "webhookId": webhook_id, "__eventInfo": info,
                "__tenantInfo": {"id": tenant, "name": tenant_name}}
        return event_stamp, body
    event_id = str(uuid.uuid4())
    if shape == "v2":
        # OUR GUESS at V2 ("aligned with the API's data models"): not from any ServiceTitan source
        entity, _, action = event_type.partition(".")
        body = {"eventId": event_id, "eventType": pascal_event(event_type), "tenantId": tenant,
                "webhookId": webhook_id, "occurredOn": event_stamp,
                "entity": {"type": entity_name(entity), "id": record.get("id"), "action": action},
                "data": record}
        return event_id, body
    if shape == "unlisted":
        # no eventType, no __eventInfo, no data: what a receiver must keep without understanding
        body = {"notificationId": event_id, "topic": event_type.replace(".", "/"), "tenant": tenant,
                "sentAt": event_stamp, "resource": {"kind": entity_name(event_type.partition(".")[0]),
                                                    "key": str(record.get("id"))}}
        return event_id, body
    if shape != "current":
        raise ValueError(f"unknown webhook shape {shape!r}; use one of {', '.join(SHAPES)}")
    body = {"eventId": event_id, "eventType": event_type, "webhookId": webhook_id, "tenantId": tenant,
            "createdOn": created.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z", "data": record}
    return event_id, body
