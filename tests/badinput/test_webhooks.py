"""Bad webhook deliveries, against the real receiver over a socket and (where a run follows) the
real inbox sensor and sync job.

Already in the catalogue elsewhere, each asserting the status, the JSON ``{"error", "message"}`` the
sender sees, that no secret or signature is echoed, and that nothing was stored:
- bad signature (wrong key, tampered body, wrong encoding) and missing signature -> 401
  ``bad_signature`` / ``missing_signature``: tests/receiver/test_receiver_http.py
  ``test_missing_and_bad_signatures_are_refused_401``;
- unknown connection -> 404 ``unknown_connection`` ("Check the callback URL ..."):
  ``test_unknown_connection_is_refused_404``;
- oversized body -> 413 ``too_large``, declared or streamed, the connection closed:
  ``test_declared_oversize_body_is_refused_413_without_reading_it``,
  ``test_streamed_oversize_body_is_refused_413_at_the_limit``;
- malformed JSON / no eventType or data -> 400 ``invalid_json`` / ``missing_event_fields``:
  ``test_not_json_or_missing_event_fields_is_refused_400``;
- an authentic JSON body with another Content-Type is kept (200); paused connection or no secret yet ->
  503 with Retry-After;
- a burst beyond the in-flight limit -> 503 ``busy`` with Retry-After: tests/badinput/test_receiver_burst.py.

Added here: an event type fieldledger does not sync, an event whose record was deleted in
ServiceTitan before the run read it, and an event for a connection the running code location has
no partitions for (issue 22, break 8).
"""

from __future__ import annotations

import os
import uuid
from decimal import Decimal

import dagster as dg
import httpx
import pytest

from fieldledger.instance import get_instance
from pipelines.definitions import defs
from pipelines.partitions import CONNECTION_NAMES
from pipelines.resources import FieldledgerResource
from pipelines.servicetitan import extract
from pipelines.servicetitan.sensors import webhook_inbox_sensor
from receiver.server import ThreadedReceiver
from resources.vault import Vault
from tests.badinput.scenario import StControl, busy_day, st_client
from tests.badinput.test_records_acumatica import AcumaticaView
from tests.receiver.webhook_deliveries import encode, signed_headers

pytestmark = pytest.mark.slow
CONNECTION = "cascade-hvac"


@pytest.fixture(scope="module")
def receiver(stack):
    served = ThreadedReceiver(os.environ["FIELDLEDGER_DATABASE_URL"]).start()
    yield served
    served.stop()


def deliver(stack, receiver, event: dict, connection: str = CONNECTION, secret: str | None = None) -> httpx.Response:
    """Sign and post an event the way ServiceTitan does for this connection."""
    secret = secret or stack.info["servicetitan"]["tenants"][CONNECTION]["webhook_secret"]
    body = encode(event)
    return httpx.post(f"{receiver.base_url}/webhooks/servicetitan/{connection}", content=body,
                      headers=signed_headers(secret, body), timeout=15)


def evaluate_sensor() -> list:
    """One evaluation of the inbox sensor: the run requests it returns."""
    resource = FieldledgerResource(database_url=os.environ["FIELDLEDGER_DATABASE_URL"])
    with dg.build_sensor_context(instance=get_instance(), resources={"fieldledger": resource}) as ctx:
        result = webhook_inbox_sensor(ctx)
    return list(getattr(result, "run_requests", None) or [])


def execute(requests: list) -> None:
    """The requested runs executed as the daemon would (an unknown partition key raises)."""
    job = defs.resolve_job_def("sync")
    for request in requests:
        outcome = job.execute_in_process(partition_key=request.partition_key, instance=get_instance(),
                                         tags=request.tags, raise_on_error=False)
        assert outcome.success, request.partition_key


def run_sensor() -> list:
    """One evaluation of the inbox sensor, and the runs it requests executed as the daemon would."""
    requests = evaluate_sensor()
    execute(requests)
    return requests


def inbox_row(store, event_id: str, connection: str = CONNECTION) -> dict:
    with store.transaction() as conn:
        return conn.execute("SELECT * FROM inbox WHERE connection = %s AND event_id = %s",
                            (connection, event_id)).fetchone()


def test_unknown_event_type_is_acknowledged_then_ignored_with_the_reason(stack, receiver):
    """Input: a correctly signed event of a type fieldledger does not sync ("technician.shift.updated").
    Expected: 200 ``stored`` (a refusal would only make ServiceTitan redeliver it at 10/30/60/300 s
    and list it as a failed event), then the inbox sensor marks it ``ignored`` with "event type
    'technician.shift.updated' does not name a document date"; no run is requested, nothing posted."""
    event = {"eventId": str(uuid.uuid4()), "eventType": "technician.shift.updated", "tenantId": 1000001,
             "createdOn": "2026-11-03T14:05:00Z", "data": {"id": 4242, "name": "Day shift"}}
    answer = deliver(stack, receiver, event)
    assert answer.status_code == 200 and answer.json() == {"status": "stored", "eventId": event["eventId"]}
    assert run_sensor() == []
    row = inbox_row(stack.store, event["eventId"])
    assert (row["state"], row["detail"]) == ("ignored", "event type 'technician.shift.updated' does not name "
                                                        "a document date")
    assert stack.store.records(CONNECTION) == []


def test_event_for_a_record_deleted_before_the_run_posts_nothing_and_does_not_retry(stack, receiver):
    """Input: "invoice.created" for an invoice that is deleted in ServiceTitan after the sensor read
    it by id (and requested its day) and before the run reads the day. Expected: the run requested for that day succeeds and posts the
    day's other invoices; the deleted one never enters the sync store (no failed record, so no
    retry loop) and is not in the ERP; the inbox event is ``processed`` ("run requested").
    Not yet: a line in the run naming the invoice as gone. The run reads the day, not the event, so
    it cannot tell "deleted" from "never existed"; that needs the sensor to hand the event's record
    ids to the run (pipelines/, outside this catalogue)."""
    day = busy_day(stack.info, CONNECTION)
    with st_client(stack.info, CONNECTION) as client:
        invoices = [i for i in extract.day_records(client, "invoice", day) if Decimal(i["total"]) > 0]
    # the victim must be unpaid: a payment applied to a deleted invoice is a failure of its own
    victim = next(i for i in invoices if Decimal(str(i["balance"])) == Decimal(str(i["total"])))
    other = next(i for i in invoices if i["id"] != victim["id"])
    event = {"eventId": str(uuid.uuid4()), "eventType": "invoice.created", "tenantId": 1000001,
             "createdOn": f"{day}T15:00:00Z",
             "data": {"id": victim["id"], "referenceNumber": victim["referenceNumber"], "total": victim["total"],
                      "invoiceDate": victim["invoiceDate"]}}
    assert deliver(stack, receiver, event).status_code == 200

    requests = evaluate_sensor()  # the sensor reads the invoice by id: it exists, its day is requested
    StControl(stack.info, CONNECTION).delete("invoices", victim["id"])  # gone before the run reads it
    execute(requests)
    assert [str(r.partition_key) for r in requests] == [f"{CONNECTION}|{day}"]
    row = inbox_row(stack.store, event["eventId"])
    assert (row["state"], row["detail"]) == ("processed", "run requested")
    assert stack.store.records(CONNECTION, source_type="invoice", source_id=str(victim["id"])) == []
    erp = AcumaticaView(stack.info)
    assert erp.invoice(victim["referenceNumber"]) is None
    assert erp.invoices([other["referenceNumber"]]) == {other["referenceNumber"]: 1}
    assert stack.store.records(CONNECTION, statuses=["failed"]) == []  # nothing left to retry


def test_event_for_a_connection_without_a_partition_fails_alone_and_the_batch_gets_its_runs(stack, receiver):
    """Input: a connection added after the code location loaded (its file, a copy of cascade-hvac's
    for the same tenant, and its secrets exist; its partitions do not), and in one sensor
    batch: an invoice event for it, an invoice event for cascade-hvac, and an unrecognised body for
    it. Expected: the newcomer's events are ``failed`` with "has no partitions ... reload the code
    location"; cascade-hvac's event gets its run (executed here as the daemon would) and is
    ``processed``; every requested partition key exists. Before: the newcomer's invoice became a
    run request for a partition that does not exist, which fails the daemon's tick (executing it
    raises), after the whole batch had been marked processed, so cascade-hvac's event never got
    its run."""
    newcomer = "alpine-newcomer"
    assert newcomer not in CONNECTION_NAMES
    folder = stack.home / "connections"
    text = (folder / f"{CONNECTION}.yaml").read_text().replace(f"name: {CONNECTION}", f"name: {newcomer}")
    (folder / f"{newcomer}.yaml").write_text(text)
    secret = stack.info["servicetitan"]["tenants"][CONNECTION]["webhook_secret"]
    vault = Vault(stack.store)
    for name in ("st_client_id", "st_client_secret", "st_app_key", "st_webhook_secret"):
        vault.set(newcomer, name, vault.get(CONNECTION, name))  # a fully set-up connection
    try:
        day = busy_day(stack.info, CONNECTION)
        with st_client(stack.info, CONNECTION) as client:
            invoice = next(i for i in extract.day_records(client, "invoice", day) if Decimal(i["total"]) > 0)
        events = {name: {"eventId": str(uuid.uuid4()), "eventType": "invoice.created", "tenantId": 1000001,
                         "createdOn": f"{day}T15:00:00Z", "data": {"id": invoice["id"]}}
                  for name in (newcomer, CONNECTION)}
        for name, event in events.items():
            assert deliver(stack, receiver, event, name, secret).status_code == 200
        unrecognised = {"something": "else"}
        assert deliver(stack, receiver, unrecognised, newcomer, secret).json()["status"] == "stored"

        requests = run_sensor()  # raises on a partition that does not exist
        assert [str(r.partition_key) for r in requests] == [f"{CONNECTION}|{day}"]
        assert (inbox_row(stack.store, events[CONNECTION]["eventId"])["state"]) == "processed"
        with stack.store.transaction() as conn:
            rows = conn.execute("SELECT state, detail FROM inbox WHERE connection = %s", (newcomer,)).fetchall()
        assert len(rows) == 2
        for row in rows:
            assert row["state"] == "failed"
            assert f"connection '{newcomer}' has no partitions" in row["detail"]
            assert "reload the code location" in row["detail"]
    finally:
        (folder / f"{newcomer}.yaml").unlink()


def test_events_whose_catch_up_was_not_requested_fail_with_the_reason(stack, receiver):
    """Input: an unrecognised (authentic) body stored for summit-mechanical, whose connection file
    is then paused, so the catch-up the event asks for is not requested. Expected: no run request
    for summit-mechanical; the event is ``failed`` with "no catch-up was requested: the connection
    is paused", not ``processed``. Before: it was marked processed although nothing would ever read
    the change it announced until the schedule's next tick."""
    other = "summit-mechanical"
    secret = stack.info["servicetitan"]["tenants"][other]["webhook_secret"]
    event = {"unknownEnvelope": True, "n": str(uuid.uuid4())}
    answer = deliver(stack, receiver, event, other, secret)
    assert answer.status_code == 200, answer.text
    path = stack.home / "connections" / f"{other}.yaml"
    original = path.read_text()
    path.write_text(original + "paused: true\n")
    try:
        requests = evaluate_sensor()
    finally:
        path.write_text(original)
    assert not [r for r in requests if str(r.partition_key).startswith(other)]
    row = inbox_row(stack.store, answer.json()["eventId"], other)
    assert (row["state"], row["detail"]) == ("failed", "no catch-up was requested: the connection is paused")
