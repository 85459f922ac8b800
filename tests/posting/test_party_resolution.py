"""posting/parties.py's decision table, without I/O (the over-the-wire cases are in
test_party_matching.py): the id map first, our own key next, a name only when it is nobody else's."""

from __future__ import annotations

from mappings.canonical import Party
from posting.parties import Candidate, Matches, parse_external_id, resolve

PARTY = Party(source_type="customer", source_id="42", name="Jordan Lee", erp_id="ST42", match_by_name=True)


def decide(linked=None, own=None, named=(), owners=None):
    return resolve(PARTY, linked, Matches(own=own, named=list(named)), owners or {}, "cascade-hvac")


def test_the_id_map_wins_over_any_name_or_key():
    assert decide(linked="C000123", own="ST42", named=[Candidate("C000999", "Jordan Lee")]).key == "C000123"
    assert decide(linked="C000123").action == "linked"


def test_our_own_key_is_this_party_whatever_its_namesakes():
    assert (decide(own="ST42", named=[Candidate("C1", "Jordan Lee"), Candidate("C2", "Jordan Lee")]).key) == "ST42"


def test_one_free_namesake_is_taken_one_belonging_to_another_party_is_not():
    assert (decide(named=[Candidate("C1", "Jordan Lee")]).action, decide(named=[Candidate("C1", "Jordan Lee")]).key) \
        == ("found", "C1")
    taken = decide(named=[Candidate("C1", "Jordan Lee")], owners={"c1": "41"})
    assert taken.action == "create"
    marked = decide(named=[Candidate("C1", "Jordan Lee", owner="41")])  # its AccountRef names customer 41
    assert marked.action == "create"


def test_several_namesakes_are_ambiguous_and_the_message_names_them_and_the_fix():
    out = decide(named=[Candidate("C1", "Jordan Lee", "AccountRef x"), Candidate("C2", "Jordan Lee")],
                 owners={"c2": "41"})
    assert out.action == "ambiguous"
    assert "C1 (AccountRef x), not linked" in out.message and "C2, linked to ServiceTitan customer 41" in out.message
    assert "'ST customer 42'" in out.message and "fieldledger replay --connection cascade-hvac --record 42" in out.message


def test_parties_keyed_by_derived_id_never_match_by_name():
    derived = PARTY.model_copy(update={"match_by_name": False})
    assert resolve(derived, None, Matches(named=[Candidate("C1", "Jordan Lee")]), {}, "c").action == "create"


def test_external_ids_parse_only_in_our_form():
    assert parse_external_id("ST customer 42", "customer") == "42"
    assert parse_external_id("ST vendor 42", "customer") is None
    assert parse_external_id("ACME-42", "customer") is None and parse_external_id(None, "customer") is None
