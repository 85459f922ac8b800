"""Webhook events are hints: which (connection, day) partitions they name, learned from ServiceTitan.

A delivery says only "record X of entity E changed". Its dates may be absent, stale, in another
version's field names or simply wrong, so the business day comes from the record itself, read by
id from the API (one list call per connection and entity, ids in batches of 50). An event that names
no usable id, or a record the API no longer returns by id, asks for the connection's catch-up (the
export feeds) instead. Party events (customers, vendors) name no day: they are synced with the
documents that use them. Pure planning (``plan``) is separate from the reads (``ApiDates``) so the
rules are testable without a server and the sensor stays small.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

log = logging.getLogger("fieldledger.sensors")
DOCUMENT_ENTITIES = {"invoice": "invoice", "payment": "payment", "inventorybill": "bill", "bill": "bill"}
PARTY_ENTITIES = ("customer", "vendor", "location")
_ONE_DAY = timedelta(days=1)  # a contractor ahead of UTC is already in its next business day


@dataclass(frozen=True)
class InboxHint:
    """What one stored event names: its inbox id, connection, entity (lower case, e.g. ``invoice``,
    ``inventorybill``; None when the body named none), record id (None when unusable) and the event
    name as sent (for messages)."""

    inbox_id: int
    connection: str
    entity: str | None
    record_id: int | str | None
    event: str = ""


def inbox_hint(event) -> InboxHint:
    """The hint of a stored inbox event, from the receiver's envelope parsers (the one place that
    knows the shapes); a body they cannot read names nothing, so it asks for the catch-up."""
    from receiver.envelopes import NotJson, parse

    try:
        parsed = parse(bytes(event.body))
    except NotJson:
        return InboxHint(event.id, event.connection, None, None, event.event_type)
    return InboxHint(event.id, event.connection, parsed.entity, parsed.source_id, parsed.event)


@dataclass
class Plan:
    partitions: dict[tuple[str, date], int] = field(default_factory=dict)  # (connection, day) -> last inbox id
    catch_up: dict[str, int] = field(default_factory=dict)  # connection -> last inbox id asking for it
    ignored: list[tuple[int, str]] = field(default_factory=list)  # (inbox id, why)
    handled: list[int] = field(default_factory=list)  # inbox ids whose partition run was requested
    caught_up: list[tuple[int, str]] = field(default_factory=list)  # (inbox id, why) left to the catch-up
    catch_up_failed: dict[str, str] = field(default_factory=dict)  # connection -> why no catch-up was requested


# (connection, source type, ids) -> {id: business day} for the ids the API returned
DayReader = Callable[[str, str, list[int]], dict[int, date]]


def usable_id(value) -> int | None:
    """A record id as ServiceTitan uses them (a positive integer, possibly sent as text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if number > 0 else None
    return None


def plan(hints: Iterable[InboxHint], read_days: DayReader, first_day: date, last_day: date) -> Plan:
    """Partitions (and catch-ups) for ``hints``; days outside [first_day, last_day] are ignored."""
    out = Plan()
    wanted: dict[tuple[str, str], dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for hint in hints:
        entity = (hint.entity or "").lower()
        source_type = DOCUMENT_ENTITIES.get(entity)
        if entity in PARTY_ENTITIES:
            out.ignored.append((hint.inbox_id, "customer/vendor changes are synced with the documents that use them"))
        elif entity and source_type is None:
            out.ignored.append((hint.inbox_id, f"event type {hint.event or entity!r} does not name a document date"))
        elif source_type is None or usable_id(hint.record_id) is None:
            _catch_up(out, hint, "the event names no document and id: the connection's catch-up reads the feeds")
        else:
            wanted[(hint.connection, source_type)][usable_id(hint.record_id)].append(hint.inbox_id)
    for (connection, source_type), by_id in wanted.items():
        try:
            days = read_days(connection, source_type, sorted(by_id))
        except Exception as exc:  # noqa: BLE001 - one connection's outage must not hold the others' events
            why = (f"reading {source_type} records by id from ServiceTitan failed ({exc.__class__.__name__}); "
                   "the catch-up schedule syncs them from the export feeds")
            out.ignored += [(i, why) for ids in by_id.values() for i in ids]
            continue
        for record_id, inbox_ids in by_id.items():
            day = days.get(record_id)
            for inbox_id in inbox_ids:
                hint = InboxHint(inbox_id, connection, source_type, record_id)
                if day is None:
                    _catch_up(out, hint, f"{source_type} {record_id} is not returned by id (deleted or not yet "
                                         "visible): the connection's catch-up reads the feeds")
                elif not first_day <= day <= last_day:
                    out.ignored.append((inbox_id, f"{source_type} {record_id} is dated {day}, outside the synced "
                                                  f"range {first_day}..{last_day}"))
                else:
                    key = (connection, day)
                    out.partitions[key] = max(out.partitions.get(key, 0), inbox_id)
                    out.handled.append(inbox_id)
    return out


def _catch_up(out: Plan, hint: InboxHint, why: str) -> None:
    out.catch_up[hint.connection] = max(out.catch_up.get(hint.connection, 0), hint.inbox_id)
    out.caught_up.append((hint.inbox_id, why))


class ApiDates:
    """A ``DayReader`` over ServiceTitan: reads records by id and returns their business day
    (invoice date, payment date, bill date), one client per connection from the resource."""

    def __init__(self, fieldledger):
        self.fieldledger = fieldledger

    def __call__(self, connection: str, source_type: str, ids: list[int]) -> dict[int, date]:
        from pipelines.servicetitan.extract import DATE_FIELD, by_ids

        conn = self.fieldledger.connection(connection)
        with self.fieldledger.servicetitan(conn) as client:
            records = by_ids(client, source_type, ids)
        days = {}
        for record in records:
            value = record.get(DATE_FIELD[source_type])
            if record.get("id") is not None and value:
                days[int(record["id"])] = date.fromisoformat(str(value)[:10])
        return days



def run_requests(fieldledger, hints: list[InboxHint], today: date, instance=None, now=None) -> tuple[list, Plan]:
    """The sensor's run requests for ``hints``: one per (connection, day) a record is dated (run
    key ``inbox-<last event id>-…``, so a later replay is never blocked), plus the catch-up of each
    connection an event could not be placed for (``inbox-catchup-<id>-…``). Partitions with a run
    not yet started are left out: that run reads the change too."""
    import dagster as dg

    from mappings.connection import ConnectionFileError, load_connection
    from pipelines.jobs import run_tags
    from pipelines.partitions import START_DATE, partition_key
    from pipelines.servicetitan.schedules import connection_catch_up
    from pipelines.servicetitan.sensors import queued_partitions

    result = plan(hints, ApiDates(fieldledger), date.fromisoformat(START_DATE), today + _ONE_DAY)
    waiting = queued_partitions(instance)
    by_connection = defaultdict(list)
    for conn, day in result.partitions:
        by_connection[conn].append(day)
    for conn, days in by_connection.items():  # wanted until a run reads them (store.want_sync)
        fieldledger.store.want_sync(conn, days)
    requests = [dg.RunRequest(partition_key=partition_key(conn, day), run_key=f"inbox-{last_id}-{conn}-{day}",
                              tags=run_tags(conn, "webhook"))
                for (conn, day), last_id in sorted(result.partitions.items())
                if str(partition_key(conn, day)) not in waiting]
    moment = now or datetime.now(UTC)
    for conn_name, last_id in sorted(result.catch_up.items()):
        try:
            conn = load_connection(conn_name)
        except ConnectionFileError as exc:
            result.catch_up_failed[conn_name] = f"no catch-up was requested: the connection file is unusable ({exc})"
            continue
        if conn.paused:
            result.catch_up_failed[conn_name] = "no catch-up was requested: the connection is paused"
            continue
        try:
            requests += connection_catch_up(fieldledger, conn, moment, waiting, f"inbox-catchup-{last_id}")
        except Exception as exc:  # noqa: BLE001 - ServiceTitan unreachable: the catch-up schedule tries again
            log.warning("catch-up of %s asked for by inbox event %d failed (%s); the catch-up schedule retries",
                        conn_name, last_id, exc.__class__.__name__)
            result.catch_up_failed[conn_name] = (f"the catch-up request failed ({exc.__class__.__name__}); the "
                                                 "catch-up schedule reads the change from the export feeds")
    return requests, result
