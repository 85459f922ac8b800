"""servicepytan (PyPI), a ServiceTitan client written by others, against the simulator over real
sockets: if the simulator's shapes, paging, export continuation or auth drifted from what real
clients are built for, this canary notices where our own client (built with the simulator) cannot.

servicepytan is pointed at the simulator by its own configuration: the connection dict that
``servicepytan_connect`` returns carries ``auth_root`` and ``api_root``.

The client's own assumption, asserted as it is: servicepytan 0.4.2 does not cache its token.
``utils.request_json`` builds headers with ``auth.get_auth_headers``, which posts to
``/connect/token`` before every request, though ServiceTitan's documentation says the token "must
be cached and reused during its lifetime" (reference/servicetitan-api.md). So instead of one token
request for several calls, the test asserts one per call (when a release caches, that assertion
fails and should become one in all), and that the simulator's token limit stops such a client with
a 429, as the real one does. servicepytan also sends the token without ``Bearer `` (as ServiceTitan's
own curl example does); the simulator accepts both.
"""

from __future__ import annotations

import pytest
import requests
import servicepytan  # in the test extra and the lock: missing, the canary fails (never skips)
from servicepytan.requests import Endpoint


def connect(st) -> dict:
    creds = st.creds()
    conn = servicepytan.auth.servicepytan_connect(app_key=creds["app_key"], tenant_id=str(creds["tenant"]),
                                                  client_id=creds["client_id"], client_secret=creds["client_secret"])
    conn.update(auth_root=st.info["auth_url"], api_root=st.base_url)  # its own settings: hosts for the simulator
    return conn


def token_requests(st) -> int:
    return st.control().get("/_sim/stats").json()["tokens"]["issued"]


def test_servicepytan_lists_pages_and_exports_what_the_simulator_holds(st):
    conn = connect(st)
    invoices = Endpoint("accounting", "invoices", conn)
    before = token_requests(st)

    page = invoices.get_many({"pageSize": 7})
    assert len(page["data"]) == 7 and page["hasMore"] is True and page["page"] == 1
    listed = invoices.get_all({"pageSize": 40})  # follows hasMore page by page
    exported = Endpoint("accounting", "export", conn).export_all("invoices")  # follows continueFrom
    calls = 1 + -(-len(listed) // 40) + 1  # one list page, the pages of get_all, at least one export page

    with st.client() as ours:
        # lists hold active records unless asked (active=Any), as ServiceTitan's do
        assert sorted(r["id"] for r in listed) == sorted(i.id for i in ours.invoices(include_inactive=False))
        feed = ours.export_pages("invoices", include_recent_changes=False)  # servicepytan's default
        assert sorted(r["id"] for r in exported) == sorted(row["id"] for page in feed for row in page.records)
        assert all(r["referenceNumber"] and "items" in r for r in listed)

    # servicepytan's own assumption: a token per call (see the module docstring)
    assert token_requests(st) - before >= calls


def test_a_client_that_never_caches_its_token_is_stopped_by_the_token_limit(st_factory):
    """Token requests are limited per client id (30 a minute here); servicepytan's token-per-call
    habit runs into the limit as it would against ServiceTitan: a 429 from /connect/token, raised."""
    st = st_factory(token_requests_per_minute=30)
    conn = connect(st)
    customers = Endpoint("crm", "customers", conn)
    with pytest.raises(requests.HTTPError) as refused:
        for _ in range(31):
            customers.get_many({"pageSize": 1})
    assert refused.value.response.status_code == 429 and "/connect/token" in refused.value.response.url
