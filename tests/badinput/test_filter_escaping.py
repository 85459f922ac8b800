"""Filter values built from ServiceTitan data cannot widen an ERP query.

Acumatica: OData ``$filter`` string literals are quoted with ' doubled (resources/acumatica.py
``odata_string``). Vantagepoint: every filterHash value is its own URL-encoded query parameter and
only comparison operators are allowed (``VantagepointClient.filters``), so no value can add a
condition. Each is checked twice: (a) the text/parameters built for a hostile name, read back with
the simulators' own parsers; (b) over sockets, where the same query built *without* escaping does
widen the result (so these tests can fail), while fieldledger's lookup finds exactly the one
customer, and creating it twice leaves one ERP customer. (The whole path, a hostile name synced from
ServiceTitan, is ``test_hostile_name_creates_exactly_one_customer`` in record_cases.py.)
"""

from __future__ import annotations

from contextlib import closing
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from mappings.canonical import Party
from mappings.connection import load_connection
from posting.acumatica import or_filters
from posting.parties import plain_matches
from posting.registry import open_adapter
from resources.acumatica import AcumaticaClient, odata_string
from resources.http import ValidationError
from resources.vantagepoint import VantagepointClient
from resources.vault import Vault
from simulators.acumatica.odata import tokenize
from simulators.vantagepoint.query import parse_list_query, parse_odata_filter

HOSTILE = "O'Brien) or (1 eq 1"
# Unescaped, this one is still valid OData: it turns "name equals" into "any customer".
WIDENING = "Nobody' or CustomerID ne '"
# Pasted unencoded into a query string, this one adds an OR-ed filterHash condition matching every firm.
WIDENING_VP = "Nobody&filterHash[1][name]=Name&filterHash[1][opp]=!=&filterHash[1][value]=Nobody&" \
              "filterHash[1][condition]=OR"


# --- (a) the filter text fieldledger builds ------------------------------------------------------

@pytest.mark.parametrize("name", [HOSTILE, WIDENING, "''", "a'b''c"])
def test_odata_literal_is_one_quoted_string(name):
    """Input: a hostile customer name. Expected: the $filter text for it has ' doubled and reads back
    as exactly `CustomerName eq <that name>`: one field, one operator, one string literal."""
    [text] = list(or_filters([f"CustomerName eq {odata_string(name)}"], 25))
    assert text == "CustomerName eq '" + name.replace("'", "''") + "'"
    tokens = tokenize(text)
    assert [(t.kind, t.value) for t in tokens] == [("name", "CustomerName"), ("op", "eq"), ("string", name),
                                                   ("end", None)]


@pytest.mark.parametrize("name", [HOSTILE, WIDENING_VP])
def test_vantagepoint_filter_value_is_one_parameter(name):
    """Input: a hostile firm name. Expected: one filterHash condition `Name = <name>` whose value
    survives URL encoding unchanged; `like`/`in` (which give meaning to characters in a value) are
    refused outright."""
    params = VantagepointClient.filters_any("Name", [name])
    url = str(httpx.URL("http://vp/api/firm", params=params))
    query = parse_list_query(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    assert [(c.name, c.opp, c.value) for c in query.conditions] == [("Name", "eq", name)]
    for operator in ("like", "in"):
        with pytest.raises(ValueError, match="not allowed"):
            VantagepointClient.filters(("Name", operator, name))
    [condition] = parse_odata_filter("Name eq " + odata_string(name))  # the simulator's $filter, too
    assert condition.value == name


# --- (b) over sockets ---------------------------------------------------------------------------

def party(name: str, source_id: str) -> Party:
    return Party(source_type="customer", source_id=source_id, name=name, erp_id=f"ST{source_id}",
                 match_by_name=True)


@pytest.mark.slow
def test_acumatica_lookup_of_a_hostile_name_finds_exactly_that_customer(stack):
    """Input: customers named "O'Brien) or (1 eq 1" and "Nobody' or CustomerID ne '". Expected: the
    unescaped filter widens to every customer (or is refused, 400) in the simulator, as in Acumatica;
    fieldledger's lookup finds nothing before the customer exists and exactly it afterwards;
    creating it again (a replay) leaves one customer with that name."""
    a = stack.info["acumatica"]
    with AcumaticaClient(a["base_url"], a["tenant"], a["client_id"], a["client_secret"], a["username"],
                         a["password"]) as acu:
        everyone = len(acu.list("Customer", select="CustomerID"))
        assert everyone > 2
        raw = acu.list("Customer", filter=f"CustomerName eq '{WIDENING}'", select="CustomerID")
        assert len(raw) == everyone  # what an unescaped value would do
        with pytest.raises(ValidationError):
            acu.list("Customer", filter=f"CustomerName eq '{HOSTILE}'")
        conn = load_connection("cascade-hvac")
        with closing(open_adapter(conn, Vault(stack.store))) as adapter:
            for n, name in enumerate((HOSTILE, WIDENING)):
                customer = party(name, f"99000{n}")
                assert plain_matches(adapter, [customer]) == {}
                key = adapter.create_party(customer)
                assert plain_matches(adapter, [customer]) == {customer.source_id: key}
                again = party(name, f"99100{n}")  # same name, no derived key of its own: found by name
                again = again.model_copy(update={"erp_id": None})
                assert plain_matches(adapter, [again]) == {again.source_id: key}
                named = acu.list("Customer", filter=f"CustomerName eq {odata_string(name)}", select="CustomerID")
                assert [c["CustomerID"] for c in named] == [key]


@pytest.mark.slow
def test_vantagepoint_lookup_of_a_hostile_name_finds_exactly_that_firm(stack):
    """Input: firms named "O'Brien) or (1 eq 1" and one that smuggles "&filterHash[1]..." into a query
    string. Expected: pasted unencoded, the second widens the simulator's firm search to every firm;
    fieldledger's lookup finds nothing before the firm exists and exactly it afterwards; creating it
    again leaves one firm with that name."""
    v = stack.info["vantagepoint"]
    with VantagepointClient(v["base_url"], v["database"], v["client_id"], v["client_secret"], v["username"],
                            v["password"], rate_per_second=200) as vp:
        root = v["base_url"].rstrip("/")
        everyone = httpx.get(f"{root}/firm", params={"pageSize": 5000}, headers=vp.auth.headers()).json()
        raw = httpx.get(f"{root}/firm?pageSize=5000&filterHash[0][name]=Name&filterHash[0][opp]==&"
                        f"filterHash[0][value]={WIDENING_VP}", headers=vp.auth.headers())
        assert raw.status_code == 200 and len(raw.json()) == len(everyone) > 2  # what an unencoded value does
        conn = load_connection("summit-mechanical")
        with closing(open_adapter(conn, Vault(stack.store))) as adapter:
            for n, name in enumerate((HOSTILE, WIDENING_VP)):
                customer = party(name, f"99000{n}")
                assert plain_matches(adapter, [customer]) == {}
                key = adapter.create_party(customer)
                assert plain_matches(adapter, [customer]) == {customer.source_id: key}
                # a replay looks first and finds it (create_party is only called for a party nobody has;
                # posting/parties.py), so none is added
                assert plain_matches(adapter, [party(name, f"99100{n}")]) == {f"99100{n}": key}
                firms = [f for f in vp.find_firms_where("Name", [name]) if f.Name == name]
                assert [f.ClientID for f in firms] == [key]
