"""Envelope parsers: what a webhook body says, whatever shape ServiceTitan sent it in.

One entry point, ``parse(body) -> Hint``, used by the receiver (to store the event) and by the inbox
sensor (to plan runs). It raises ``NotJson`` only for a body that is not a JSON object we can read;
any other authentic body becomes a Hint, ``shape == "unrecognised"`` with a ``reason`` when no
parser knows it (the sensor then asks for the connection's catch-up instead of trusting it).

Known shapes (docs/servicetitan-webhooks.md has the sources and how sure we are of each):

- ``v1``: the entity's own fields at the top level, plus ``__eventInfo``
  ``{webhookType: "JobScheduled", eventId: "<timestamp>"}`` (captured deliveries).
- ``v2``: ``{eventId, eventType: "InvoiceCreated", entity: {type, id}, data}``; the V2 envelope is
  not public, so this is our guess, accepted loosely (``entity`` or a PascalCase ``eventType`` with
  ``data``).
- ``current``: ``{eventId: uuid, eventType: "invoice.created", data: {...}}`` (what fieldledger and
  its simulator used first).

The hint is normalised: ``entity`` is lower case without separators (``invoice``,
``inventorybill``), ``source_id`` the ServiceTitan id as text, ``event`` the name as sent. Every text
field is safe for a PostgreSQL ``text`` column (no NUL, bounded length). JSON nested too deep for
the decoder (it stops at the recursion limit) is unrecognised, never an unhandled RecursionError.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT = 200  # longest event id / name / entity / id kept in a text column
UNRECOGNISED = "unrecognised"
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+")
_V1_ROUTING = ("__eventInfo", "__tenantInfo", "eventId", "webhookId")


class NotJson(ValueError):
    """The body is not a JSON object we can read; the message says what is wrong (for a 400)."""


class TooDeep(ValueError):
    """Valid-looking JSON nested too deep to parse safely (kept as unrecognised when authentic)."""


@dataclass(frozen=True)
class Hint:
    """What one delivery says happened. Only ``entity`` and ``source_id`` are meant to be used:
    dates and amounts in ``record`` are the sender's copy and are never trusted for posting."""

    shape: str  # "v1", "v2", "current" or "unrecognised"
    event_id: str  # the sender's id, or "sha256:<body hash>" when it gave no usable one
    event: str  # the event name as sent ("invoice.created", "InvoiceCreated"), or "unrecognised"
    entity: str | None = None  # "invoice", "payment", "inventorybill", "customer", ...
    source_id: str | None = None  # the ServiceTitan id of the record, as text
    record: dict = field(default_factory=dict, repr=False)  # the entity fields as sent
    reason: str | None = None  # why a body is unrecognised

    @property
    def recognised(self) -> bool:
        return self.shape != UNRECOGNISED


def body_id(body: bytes) -> str:
    """The dedupe id of a delivery without a usable event id: the same body is the same event."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def load(body: bytes) -> Any:
    """The JSON value of ``body``; raises NotJson, or TooDeep for JSON nested beyond the decoder's limit."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NotJson("The body is not UTF-8 text. Send the event as a UTF-8 JSON object.") from None
    try:
        return json.loads(text)
    except RecursionError:  # the C decoder stops cleanly at the interpreter's recursion limit
        raise TooDeep("The JSON nests deeper than the parser's limit (about 1,000 levels); "
                      "no webhook envelope does.") from None
    except ValueError:
        raise NotJson("The body is not valid JSON. Send the event as a UTF-8 JSON object.") from None


def clean_text(value: Any) -> str | None:
    """``value`` as text safe for a text column and a log line: a string or integer, without
    control characters, at most MAX_TEXT long; None when it is not usable as such."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if not text or len(text) > MAX_TEXT or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return None
    return text


def entity_of(name: str) -> str | None:
    """Normalised entity kind of an event or type name: ``invoice.created`` -> ``invoice``,
    ``InventoryBillCreated`` -> ``inventorybill``, ``InventoryBill`` (a type) -> ``inventorybill``."""
    if "." in name:
        return name.split(".", 1)[0].strip().lower() or None
    words = _WORDS.findall(name)
    if not words:
        return None
    return "".join(words[:-1] if len(words) > 1 else words).lower()


def _type_entity(name: Any) -> str | None:
    """``InventoryBill`` / ``inventory_bill`` / ``invoice`` -> ``inventorybill`` / ``invoice``."""
    text = clean_text(name)
    if text is None:
        return None
    return "".join(_WORDS.findall(text)).lower() or None


def parse(body: bytes) -> Hint:
    """The hint of one delivery body. Raises NotJson only when the body is not JSON."""
    try:
        payload = load(body)
    except TooDeep as exc:
        return _unrecognised(body, str(exc))
    if not isinstance(payload, dict):
        return _unrecognised(body, f"the body is a JSON {type(payload).__name__}, not an object")
    for parser in (_v1, _v2_or_current):
        hint = parser(body, payload)
        if hint is not None:
            return hint
    keys = ", ".join(sorted(str(k) for k in payload)[:10]) or "none"
    return _unrecognised(body, f"no known envelope (V1 __eventInfo, V2 entity, or eventType with data); "
                               f"top-level keys: {clean_text(keys[:MAX_TEXT]) or '(unprintable)'}")


def _unrecognised(body: bytes, reason: str) -> Hint:
    return Hint(UNRECOGNISED, body_id(body), UNRECOGNISED, reason=reason)


def _event_id(body: bytes, *candidates: Any) -> str:
    for candidate in candidates:
        usable = clean_text(candidate)
        if usable:
            return usable
    return body_id(body)


def _v1(body: bytes, payload: dict) -> Hint | None:
    info = payload.get("__eventInfo")
    if not isinstance(info, dict):
        return None
    event = clean_text(info.get("webhookType"))
    if event is None:
        return _unrecognised(body, "__eventInfo has no webhookType (a short string)")
    record = {k: v for k, v in payload.items() if k not in _V1_ROUTING}
    return Hint("v1", _event_id(body, info.get("eventId"), payload.get("eventId")), event, entity_of(event),
                clean_text(record.get("id")), record)


def _v2_or_current(body: bytes, payload: dict) -> Hint | None:
    raw_event, entity, data = payload.get("eventType"), payload.get("entity"), payload.get("data")
    if raw_event is None or not (isinstance(entity, dict) or isinstance(data, dict)):
        return None
    event = clean_text(raw_event)
    if event is None:
        return _unrecognised(body, "eventType is not a short string without control characters")
    record = data if isinstance(data, dict) else {}
    event_id = _event_id(body, payload.get("eventId"))
    if isinstance(entity, dict):
        kind = _type_entity(entity.get("type")) or entity_of(event)
        return Hint("v2", event_id, event, kind, clean_text(entity.get("id")) or clean_text(record.get("id")), record)
    shape = "current" if "." in event else "v2"
    return Hint(shape, event_id, event, entity_of(event), clean_text(record.get("id")), record)
