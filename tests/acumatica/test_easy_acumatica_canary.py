"""Canary (issue 17): easy-acumatica (PyPI), a third-party client that builds its models and
services from the instance's own swagger.json, run against the simulator over a real socket:
cookie log-in, discovery, list, ``put_entity`` with a plain dict, an action, log-out.

The client's own assumptions, not the simulator's:
- ``put_entity`` sends a plain dict as it is: the dict must already be in Acumatica's wire form
  ({"value": ...} per field); an unwrapped dict is refused with 400, as Acumatica refuses it.
- it asks OData (/t/{tenant}/api/odata/gi/$metadata) for generic inquiries, which the simulator
  does not serve; the client logs a warning and carries on.
- its generated models hold the contract fields only, not the system field ``id`` (Acumatica's
  own documents declare ``id`` on the Entity base the client does not read), so an action names
  the document by its keys.
- it does not poll a 202 action: it returns None, so the test polls the document's Status itself."""

from __future__ import annotations

import time

import easy_acumatica  # in the test extra and the lock: missing, the canary fails (never skips)
import pytest
from easy_acumatica.odata import QueryOptions


@pytest.fixture
def easy(sim, tmp_path):
    i = sim.info
    client = easy_acumatica.AcumaticaClient(
        base_url=i["base_url"], username=i["username"], password=i["password"], tenant=i["tenant"],
        auto_load_env=False, cache_methods=False, cache_dir=tmp_path, rate_limit_calls_per_second=1000,
        timeout=30)
    yield client
    client.logout()


def test_easy_acumatica_lists_writes_and_releases(easy, sim):
    assert easy.endpoint_version == "24.200.001"  # the newest served version, from GET /entity
    assert sim.seats()["in_use"] == 1 and sim.seats()["sessions"][0]["kind"] == "cookie"
    accounts = easy.account.get_list()
    assert {a["AccountCD"]["value"] for a in accounts} >= {"40100", "12000"}
    customers = easy.customer.get_list(options=QueryOptions(filter="CustomerID eq 'C000101'"))
    assert [c["CustomerID"]["value"] for c in customers] == ["C000101"]

    saved = easy.invoice.put_entity({
        "Customer": {"value": "C000101"}, "CustomerOrder": {"value": "EASY-1"}, "Hold": {"value": False},
        "Details": [{"Account": {"value": "40100"}, "Subaccount": {"value": "SEA-HVC"},
                     "Branch": {"value": "SEATTLE"}, "Qty": {"value": 2}, "UnitPrice": {"value": 12.5}}]})
    assert saved["Status"]["value"] == "Balanced" and saved["Amount"]["value"] == 25.0
    with pytest.raises(Exception, match="400|invalid|Error converting"):
        easy.invoice.put_entity({"Customer": "C000101", "CustomerOrder": "EASY-2"})

    # the generated models carry contract fields only (no "id"): the keys name the document
    keys = easy.models.Invoice(Type="Invoice", ReferenceNbr=saved["ReferenceNbr"]["value"])
    invocation = easy.models.ReleaseInvoice(entity=keys)
    easy.invoice.invoke_action_release_invoice(invocation)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        again = easy.invoice.get_by_id(saved["id"])
        if again["Status"]["value"] == "Open":
            break
        time.sleep(0.1)
    assert again["Status"]["value"] == "Open"
    schema = easy.invoice.get_ad_hoc_schema()
    assert schema["custom"] == {} and "CustomerOrder" in schema
