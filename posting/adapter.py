"""The contract every ERP adapter fulfils. An adapter renders canonical documents into its ERP's
wire format, finds documents that already exist there by external reference, and reads the
ERP's reference data. It decides nothing about whether to post: that is posting/protocol.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

from mappings.canonical import APBill, ARInvoice, CashReceipt, Coding, Party

Document = ARInvoice | CashReceipt | APBill


@dataclass(frozen=True)
class Existing:
    """A document found in the ERP: its key, whether it can still be edited (unreleased), and
    its total for reconciliation and conflict messages."""

    key: str
    updatable: bool
    total: str | None = None


@dataclass
class ReferenceData:
    """What exists in the ERP for GL coding; read before posting so nothing lands on an invalid
    account. Empty sets mean 'this ERP has no such concept' (e.g. projects in Acumatica)."""

    accounts: set[str] = field(default_factory=set)
    subaccounts: set[str] = field(default_factory=set)
    branches: set[str] = field(default_factory=set)
    projects: set[str] = field(default_factory=set)
    organizations: set[str] = field(default_factory=set)
    closed_periods: set[str] = field(default_factory=set)  # 'YYYYMM' periods that refuse postings

    def problems(self, coding: Coding, uses: tuple[str, ...]) -> list[str]:
        """What in this coding does not exist in the ERP (only the dimensions this ERP uses)."""
        out = []
        if coding.account not in self.accounts:
            out.append(f"account {coding.account}")
        checks = {"branch": (coding.branch, self.branches), "subaccount": (coding.subaccount, self.subaccounts),
                  "project": (coding.project, self.projects), "organization": (coding.organization, self.organizations)}
        for name in uses:
            value, known = checks[name]
            if value and value not in known:
                out.append(f"{name} {value}")
        return out


@dataclass(frozen=True)
class ErpChange:
    """Something a person did in the ERP after fieldledger posted, found by the catch-up poll
    (``changes_since``) or the existence check (posting/erp_changes.py). ``key`` is the ERP key
    exactly as create_document / create_party / find_* return it (what the sync store records
    as target_key and in the id map); ``name`` is the party's name for ``party_created``;
    ``detail`` says what happened in the ERP, for the person who reviews it."""

    kind: Literal["document_voided", "document_deleted", "party_created"]
    source_type: str  # invoice, payment, bill, customer, vendor
    key: str
    name: str | None = None
    detail: str = ""


class References(Protocol):
    """ERP keys of the records a document points at (filled from the id map)."""

    def customer(self, source_id: str) -> str: ...

    def vendor(self, source_id: str) -> str: ...

    def invoice(self, source_id: str) -> str: ...


class ErpAdapter(Protocol):
    kind: str
    coding_dimensions: tuple[str, ...]  # which Coding fields this ERP uses, e.g. ("branch", "subaccount")

    def reference_data(self) -> ReferenceData: ...

    def party_matches(self, parties: list[Party]) -> dict:
        """source_id -> posting.parties.Matches: the ERP party under our own key for it, and the
        ERP parties carrying its exact name (for parties matched by name). The protocol decides
        with the id map which one, if any, it is (posting/parties.py)."""

    def create_party(self, party: Party) -> str: ...

    # optional: rename_party(party, key) -> key, for a linked party renamed in ServiceTitan

    def find_documents(self, docs: list[Document]) -> dict[str, Existing]:
        """source_id -> the ERP document carrying that document's external reference."""

    def create_document(self, doc: Document, refs: References) -> str: ...

    def update_document(self, doc: Document, existing: Existing, refs: References) -> str: ...

    def settle(self) -> dict[tuple[str, str], Exception]:
        """Wait for whatever create_document / update_document left finishing in the ERP (an
        Acumatica release); returns (source_type, key) -> the error of each that failed. The
        protocol records a post only after this, and calls it before the next stage."""

    def duplicate_external_refs(self, docs: list[Document]) -> dict[str, list[str]]:
        """External reference -> ERP keys, for references that appear more than once."""

    def coding_key(self, coding: Coding) -> str:
        """The dimension reconciliation groups by: Acumatica subaccount, Vantagepoint project."""

    def ledger_totals(self, day) -> dict[tuple[str, str], Decimal]:
        """(source_type, coding key) -> total of the documents dated ``day`` in the ERP
        (invoices and bills by coding key; receipts under key '*')."""

    def changes_since(self, since: datetime) -> tuple[list[ErpChange], datetime]:
        """What changed in the ERP after ``since`` (UTC aware): documents voided (or reversed),
        parties created by a person. Returns the changes and the new high-water mark (UTC
        aware; ``since`` itself when nothing was seen). A change at the mark may be reported
        again by the next poll: applying changes is idempotent."""

    def close(self) -> None: ...
