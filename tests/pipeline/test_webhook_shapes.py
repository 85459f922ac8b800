"""Every webhook shape and both authentication modes, end to end: the ServiceTitan simulator sends
V1, V2 (our guess), the current envelope or a layout nobody parses, HMAC-signed (header and
encoding per connection) or unsigned to a secret path-token URL; the real receiver keeps each
authentic delivery; the inbox sensor reads each named record by id (a payload's dates are never
used) or asks for the catch-up; the runs post to Acumatica. Duplicated and reordered deliveries
create nothing twice, dropped ones are caught up from the export feeds, and every invoice reaches
the ERP exactly once."""

from __future__ import annotations

import os
import secrets
import time
from collections import Counter
from datetime import UTC, datetime

import dagster as dg
import httpx
import pytest
import yaml

from fieldledger import settings
from fieldledger.instance import get_instance
from pipelines.definitions import defs
from pipelines.resources import FieldledgerResource
from pipelines.servicetitan.schedules import catch_up_requests
from pipelines.servicetitan.sensors import webhook_inbox_sensor
from receiver.envelopes import entity_of
from receiver.server import ThreadedReceiver
from resources.acumatica import AcumaticaClient
from resources.vault import Vault

pytestmark = pytest.mark.slow
CONNECTION = "cascade-hvac"  # posts to Acumatica


@pytest.fixture(scope="module")
def wired(stack):
    receiver = ThreadedReceiver(os.environ["FIELDLEDGER_DATABASE_URL"], secret_ttl=0).start()
    sim = httpx.Client(base_url=stack.info["servicetitan"]["base_url"], timeout=30)
    for reg in sim.get("/_sim/webhooks").json():  # the placeholder registrations made by the fixture
        sim.delete(f"/_sim/webhooks/{reg['id']}")
    # the seed's own recent changes are not what these tests are about: move the export tokens to
    # the feeds' ends, so a catch-up below names only the days the tests changed
    catch_up_requests(resource(), datetime.now(UTC))
    yield sim, receiver
    sim.close()
    receiver.stop()


def resource() -> FieldledgerResource:
    return FieldledgerResource(database_url=os.environ["FIELDLEDGER_DATABASE_URL"])


def connect(stack, sim, receiver, *, shape: str, auth: str, header: str = "X-ServiceTitan-Signature",
            encoding: str = "base64") -> dict:
    """Set the connection up for one mode (its file and vault, as `fieldledger` would) and register
    the matching webhook in the simulator (as the developer portal would)."""
    tenant = int(stack.info["servicetitan"]["tenants"][CONNECTION]["tenant"])
    path = settings.connections_dir() / f"{CONNECTION}.yaml"
    document = yaml.safe_load(path.read_text())
    webhook = {"auth": "path_token"} if auth == "token" else {
        "auth": "hmac", "signature_header": header, "signature_encoding": encoding}
    document["servicetitan"]["webhook"] = webhook
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    url = f"{receiver.base_url}/webhooks/servicetitan/{CONNECTION}"
    registration = {"tenant": tenant, "shape": shape}
    if auth == "token":
        token = secrets.token_urlsafe(24)  # 192 bits
        Vault(stack.store).set(CONNECTION, "st_webhook_token", token)
        registration.update(url=f"{url}/{token}", signing="none")
    else:
        registration.update(url=url, signing="hmac", header=header, encoding=encoding,
                             secret=stack.info["servicetitan"]["tenants"][CONNECTION]["webhook_secret"])
    for reg in sim.get("/_sim/webhooks").json():
        sim.delete(f"/_sim/webhooks/{reg['id']}")
    answer = sim.post("/_sim/webhooks", json=registration)
    assert answer.status_code == 201, answer.text
    return {"tenant": tenant, **answer.json()}


def settle(sim, timeout: float = 60.0) -> dict:
    """The simulator's delivery counts once every delivery is answered (none queued, held or on the wire)."""
    deadline = time.monotonic() + timeout
    while True:
        counts = sim.get("/_sim/webhooks/deliveries").json()
        if counts["pending"] == 0:
            return counts
        assert time.monotonic() < deadline, counts
        time.sleep(0.1)


def inbox(store, after: int) -> list[dict]:
    with store.transaction() as conn:
        return conn.execute("SELECT id, event_type, state, detail FROM inbox WHERE connection = %s AND id > %s "
                            "ORDER BY id", (CONNECTION, after)).fetchall()


def last_inbox_id(store) -> int:
    with store.transaction() as conn:
        return conn.execute("SELECT coalesce(max(id), 0) AS n FROM inbox").fetchone()["n"]


def run(requests) -> None:
    """Execute requested runs the way the daemon would launch them (same job, key and tags)."""
    job = defs.resolve_job_def("sync")
    for request in requests:
        result = job.execute_in_process(partition_key=request.partition_key, instance=get_instance(),
                                        tags=request.tags, raise_on_error=False)
        assert result.success, request.partition_key


def sensor_requests() -> list:
    with dg.build_sensor_context(instance=get_instance(), resources={"fieldledger": resource()}) as ctx:
        result = webhook_inbox_sensor(ctx)
    return list(getattr(result, "run_requests", None) or [])


def invoice_numbers(sim, tenant: int, events) -> set[str]:
    numbers = set()
    for invoice_id in {e["id"] for e in events if e["eventType"] == "invoice.created"}:
        record = sim.get(f"/_sim/records/{tenant}/invoices/{invoice_id}").json()["record"]
        if record["total"] not in ("0.00", "-0.00"):  # zero invoices are skipped, not posted
            numbers.add(record["referenceNumber"])
    return numbers


def acumatica_refs(stack) -> Counter:
    a = stack.info["acumatica"]
    with AcumaticaClient(a["base_url"], a["tenant"], a["client_id"], a["client_secret"], a["username"],
                         a["password"]) as acu:
        return Counter(i["CustomerOrder"] for i in acu.iter_all("Invoice"))


def tick(sim, tenant: int, count: int) -> list[dict]:
    return sim.post("/_sim/live/tick", json={"count": count, "tenant": tenant,
                                              "eventTypes": ["invoice.created"]}).json()["events"]


CASES = [  # every shape with each mode; the HMAC cases vary the header and the encoding
    ("current", "hmac", "X-ServiceTitan-Signature", "base64"),
    ("current", "token", None, None),
    ("v1", "hmac", "X-ST-Hmac", "hex"),
    ("v1", "token", None, None),
    ("v2", "hmac", "X-ServiceTitan-Signature", "hex"),
    ("v2", "token", None, None),
]


@pytest.mark.parametrize(("shape", "auth", "header", "encoding"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_each_shape_and_mode_reaches_the_erp_once(stack, wired, shape, auth, header, encoding):
    sim, receiver = wired
    reg = connect(stack, sim, receiver, shape=shape, auth=auth, header=header or "X-ServiceTitan-Signature",
                  encoding=encoding or "base64")
    tenant, after = reg["tenant"], last_inbox_id(stack.store)

    # dropped: never delivered, found by the catch-up; then duplicated and reordered deliveries
    sim.put("/_sim/faults", json={"profile": "", "set": {"webhook_drop_rate": 1.0}}).raise_for_status()
    dropped = tick(sim, tenant, 2)
    sim.put("/_sim/faults", json={"profile": "", "set": {"webhook_duplicate_rate": 1.0,
                                                          "webhook_reorder_rate": 1.0}}).raise_for_status()
    before = sim.get("/_sim/webhooks/deliveries").json()
    delivered = tick(sim, tenant, 3)
    counts = settle(sim)
    sim.put("/_sim/faults", json={"profile": ""}).raise_for_status()
    assert counts["duplicated"] > before["duplicated"] and counts["reordered"] > before["reordered"]
    assert counts["failed"] == before["failed"], "the receiver refused an authentic delivery"

    rows = inbox(stack.store, after)
    assert len(rows) == len(delivered)  # each event once, its duplicate acknowledged and not stored again
    requests = sensor_requests()
    assert requests and all(r.tags["fieldledger/reason"] == "webhook" for r in requests)
    run(requests)
    rows = inbox(stack.store, after)
    invoice_rows = [r for r in rows if entity_of(r["event_type"]) == "invoice"]
    assert len(invoice_rows) == sum(e["eventType"] == "invoice.created" for e in delivered)
    assert all((r["state"], r["detail"]) == ("processed", "run requested") for r in invoice_rows), rows
    hooked = invoice_numbers(sim, tenant, delivered)
    refs = acumatica_refs(stack)
    assert hooked and all(refs[n] == 1 for n in hooked), {n: refs[n] for n in hooked}  # by the webhook runs

    run([r for r in catch_up_requests(resource(), datetime.now(UTC)) if CONNECTION in str(r.partition_key)])
    wanted = invoice_numbers(sim, tenant, delivered + dropped)
    refs = acumatica_refs(stack)
    assert all(refs[n] == 1 for n in wanted), {n: refs[n] for n in wanted}


def test_a_shape_nobody_parses_is_kept_and_caught_up(stack, wired):
    """An authentic body in no known envelope is stored (2xx, ServiceTitan does not retry it) and
    makes the sensor run the connection's catch-up, which posts the documents."""
    sim, receiver = wired
    reg = connect(stack, sim, receiver, shape="unlisted", auth="hmac")
    tenant, after = reg["tenant"], last_inbox_id(stack.store)
    events = tick(sim, tenant, 2)
    counts = settle(sim)
    assert counts["failed"] == 0 or counts["sent"] >= len(events)
    rows = inbox(stack.store, after)
    assert rows and all(r["event_type"] == "unrecognised" for r in rows), rows
    requests = sensor_requests()
    assert requests and all(r.tags["fieldledger/reason"] == "catch-up" for r in requests)
    assert all(r.run_key.startswith("inbox-catchup-") for r in requests)
    run(requests)
    assert {r["state"] for r in inbox(stack.store, after)} == {"processed"}
    wanted = invoice_numbers(sim, tenant, events)
    refs = acumatica_refs(stack)
    assert wanted and all(refs[n] == 1 for n in wanted), {n: refs[n] for n in wanted}


def test_a_payload_whose_dates_lie_is_synced_on_the_records_real_day(stack, wired):
    """The simulator moves every business date in the payload 40 days back (the API keeps the
    truth): the run requested is the record's real day and the invoice is posted with its real date."""
    sim, receiver = wired
    reg = connect(stack, sim, receiver, shape="v1", auth="hmac")
    sim.patch(f"/_sim/webhooks/{reg['id']}", json={"date_shift_days": -40}).raise_for_status()
    tenant = reg["tenant"]
    events = tick(sim, tenant, 2)
    settle(sim)
    ids = {e["id"] for e in events if e["eventType"] == "invoice.created"}
    real = {sim.get(f"/_sim/records/{tenant}/invoices/{i}").json()["record"]["invoiceDate"][:10] for i in ids}
    requests = sensor_requests()
    assert {str(r.partition_key) for r in requests} == {f"{CONNECTION}|{day}" for day in real}
    run(requests)
    wanted = invoice_numbers(sim, tenant, events)
    a = stack.info["acumatica"]
    with AcumaticaClient(a["base_url"], a["tenant"], a["client_id"], a["client_secret"], a["username"],
                         a["password"]) as acu:
        posted = {i["CustomerOrder"]: i for i in acu.iter_all("Invoice") if i["CustomerOrder"] in wanted}
    assert set(posted) == wanted
    assert {str(i["Date"])[:10] for i in posted.values()} <= real
