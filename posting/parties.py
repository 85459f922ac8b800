"""Which ERP party a ServiceTitan customer or vendor posts to: the id map first, then the ERP's
own keys, and a name only when it cannot be anyone else's. Never a guess.

Names are not identities: two ServiceTitan customers can share a name (different people in
different cities), and a customer can be renamed after it was posted. So:
- a party already in the id map keeps its ERP key whatever its name is now (a rename renames
  the ERP party where the ERP allows it; it never creates a second one);
- a party the ERP holds under our key for it (a derived id, or our external id in a field the
  ERP keeps for it) is that party;
- otherwise an ERP party with the same name is taken only when it is the only one with that
  name and no other ServiceTitan party is linked to it. ERP parties with that name that all
  belong to other ServiceTitan parties leave nothing to match: a party of its own is created.
  Anything else (two or more candidates, or one free candidate beside others already taken)
  is ambiguous: the record is quarantined (class ``mapping``) with the candidates and the fix.

A create whose answer is lost may still have happened, and an ERP that autonumbers its parties
(Vantagepoint's client firms) keeps nothing of ours on them to find it by. So before creating,
the protocol notes the namesakes the ERP already holds (a 'creating' audit row); on a later
attempt the one free namesake that was not among them is the party that create made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mappings.canonical import Party


@dataclass(frozen=True)
class Candidate:
    """An ERP party carrying a ServiceTitan party's exact name."""

    key: str
    name: str
    detail: str = ""  # what tells it apart for a person (city, external id)
    owner: str | None = None  # the ServiceTitan id the ERP party's own external reference names


@dataclass
class Matches:
    """What the ERP holds for one ServiceTitan party: the party under our own key for it (a
    derived id or our external id), and the parties carrying its exact name."""

    own: str | None = None
    named: list[Candidate] = field(default_factory=list)


def plain_matches(adapter, parties: list[Party]) -> dict[str, str]:
    """source_id -> ERP key from the ERP alone: the party under our own key for it, or the only
    ERP party with its name. What the ERP side of a decision looks like, without the id map
    (which resolve_parties consults first); adapter tests read their look-ups through it."""
    found = {}
    for source_id, matches in adapter.party_matches(parties).items():
        if matches.own or len(matches.named) == 1:
            found[source_id] = matches.own or matches.named[0].key
    return found


@dataclass(frozen=True)
class Resolution:
    action: Literal["linked", "found", "create", "ambiguous"]
    key: str | None = None
    message: str = ""
    namesakes: tuple[str, ...] = ()  # for "create": the ERP keys that already carry the name
    recovered: bool = False  # "found": the party an earlier create made although its answer was lost


def external_id(party: Party) -> str:
    """The reference fieldledger writes on an ERP party it creates (where the ERP has a field
    for one), so the party can be told apart from a namesake: 'ST customer 1010000180'."""
    return f"ST {party.source_type} {party.source_id}"


def resolve(party: Party, linked_key: str | None, matches: Matches, owners: dict[str, str],
            connection: str, created_beside: frozenset[str] | None = None) -> Resolution:
    """Decide for one party. ``linked_key``: its id-map entry; ``owners``: ERP key (casefolded)
    -> the ServiceTitan id already linked to it, for the candidates' keys; ``created_beside``: when
    an earlier attempt set out to create this party, the namesakes the ERP held then."""
    if linked_key:
        return Resolution("linked", linked_key)
    if matches.own:
        return Resolution("found", matches.own)
    if created_beside is not None:  # a create was sent: did it happen although its answer was lost?
        new = [c for c in matches.named if c.key.casefold() not in created_beside
               and owner_of(c, owners) in (None, party.source_id)]
        if len(new) == 1:
            return Resolution("found", new[0].key, recovered=True)
        if len(new) > 1:
            return Resolution("ambiguous", message=ambiguous_message(party, new, owners, connection))
    namesakes = tuple(c.key for c in matches.named)
    if not party.match_by_name or not matches.named:
        return Resolution("create", namesakes=namesakes)
    free = [c for c in matches.named if owner_of(c, owners) in (None, party.source_id)]
    if not free:
        return Resolution("create", namesakes=namesakes)
    if len(matches.named) == 1:
        return Resolution("found", free[0].key)
    return Resolution("ambiguous", message=ambiguous_message(party, matches.named, owners, connection))


def owner_of(candidate: Candidate, owners: dict[str, str]) -> str | None:
    return owners.get(candidate.key.casefold()) or candidate.owner


def parse_external_id(value: str | None, source_type: str) -> str | None:
    """The ServiceTitan id in an external reference written by ``external_id``, else None."""
    parts = str(value or "").split()
    return parts[2] if len(parts) == 3 and parts[0] == "ST" and parts[1] == source_type else None


def ambiguous_message(party: Party, named: list[Candidate], owners: dict[str, str], connection: str) -> str:
    def describe(c: Candidate) -> str:
        owner = owner_of(c, owners)
        linked = f", linked to ServiceTitan {party.source_type} {owner}" if owner else ", not linked"
        return f"{c.key}" + (f" ({c.detail})" if c.detail else "") + linked

    listed = "; ".join(describe(c) for c in named)
    return (f"{party.source_type} {party.source_id} {party.name!r}: {len(named)} ERP {party.source_type}s carry "
            f"this name ({listed}); fieldledger does not guess which one is this {party.source_type}. Fix: in "
            f"the ERP, rename the ones that are other {party.source_type}s (or put {external_id(party)!r} in "
            f"the right one's account reference where the ERP has one), or give the {party.source_type} a "
            f"distinct name in ServiceTitan; then `fieldledger replay --connection {connection} --record "
            f"{party.source_id}`")


def resolve_parties(store, connection: str, adapter, parties: list[Party]) -> dict[str, Resolution]:
    """source_id -> Resolution for a batch of parties of one connection: the id map, then what
    the ERP holds (``adapter.party_matches``), with the ServiceTitan owners of every candidate."""
    out: dict[str, Resolution] = {}
    for source_type in ("customer", "vendor"):
        group = [p for p in parties if p.source_type == source_type]
        if not group:
            continue
        linked = store.lookup_many(connection, source_type, [p.source_id for p in group])
        unlinked = [p for p in group if p.source_id not in linked]
        matches = adapter.party_matches(unlinked) if unlinked else {}
        keys = {c.key for m in matches.values() for c in m.named}
        owners = {k.casefold(): sid for k, sid in store.linked_sources(connection, source_type, keys).items()}
        intents = store.creation_intents(connection, source_type, [p.source_id for p in unlinked])
        for party in group:
            decision = resolve(party, linked.get(party.source_id), matches.get(party.source_id, Matches()), owners,
                               connection, intents.get(party.source_id))
            if (decision.action == "found" and not decision.recovered
                    and decision.key != matches.get(party.source_id, Matches()).own):
                decision = _unless_namesakes(store, connection, party, unlinked, decision)
            out[party.source_id] = decision
    return out


def _unless_namesakes(store, connection: str, party: Party, batch: list[Party], found: Resolution) -> Resolution:
    """A lone ERP party found by name is this party's only when no other unlinked ServiceTitan
    party carries that name too (in this batch or in the store): otherwise which of them it
    belongs to would be a guess, and each of them waits for a person."""
    others = sorted({p.source_id for p in batch if p.name == party.name and p.source_id != party.source_id}
                    | {r.source_id for r in store.unlinked_records_named(connection, party.source_type, party.name)
                       if r.source_id != party.source_id})
    if not others:
        return found
    return Resolution("ambiguous", message=(
        f"{party.source_type} {party.source_id} {party.name!r}: the ERP holds one {party.source_type} with this "
        f"name ({found.key}, not linked) and ServiceTitan has other {party.source_type}s of that name "
        f"({', '.join(others)}); fieldledger does not guess which one it is. Fix: put {external_id(party)!r} in "
        f"{found.key}'s account reference where the ERP has one, or rename {found.key} in the ERP if it is "
        f"someone else, or give the {party.source_type}s distinct names in ServiceTitan; then `fieldledger replay "
        f"--connection {connection} --record {party.source_id}`"))


def note_creating(store, connection: str, party: Party, namesakes: tuple[str, ...], run_id: str | None,
                  content_hash: str | None = None) -> None:
    """Written right before a party is created (the 'creating' audit row): the namesakes the ERP
    holds now, so that after a lost answer the party the create made can be told apart."""
    store.audit(connection, party.source_type, party.source_id, "creating", "intent",
                {"namesakes": list(namesakes)}, run_id, content_hash)


def renamed(store, connection: str, party: Party) -> bool:
    """Was the party posted before under another name (so the ERP party wants renaming)?"""
    prior = store.latest_posted(connection, party.source_type, party.source_id)
    name = ((prior.payload or {}).get("document") or {}).get("name") if prior else None
    return name is not None and name != party.name
