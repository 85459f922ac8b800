"""An in-memory ERP behind the ErpAdapter protocol, for unit tests of the posting protocol's
decisions. Integration tests use the real adapters against the simulators instead."""

from __future__ import annotations

from posting.adapter import Existing, ReferenceData
from resources.http import AuthError, ConflictError, TransientError, ValidationError


class MemoryErp:
    kind = "memory"
    coding_dimensions = ("branch", "subaccount")

    def __init__(self):
        self.parties: dict[str, dict] = {}  # key -> party
        self.documents: dict[str, dict] = {}  # key -> {ref, doc, released}
        self.fail_next: list[Exception] = []
        self.fail_release: dict[str, Exception] = {}  # external ref -> why its release fails (once)
        self.posted_elsewhere: set[str] = set()  # external refs whose update finds them posted (a conflict)
        self.unsettled: list[tuple[str, str]] = []  # (source type, key) created since the last settle
        self.calls: list[str] = []
        self._n = 0

    def _maybe_fail(self):
        if self.fail_next:
            raise self.fail_next.pop(0)

    def reference_data(self):
        return ReferenceData(accounts={"12000", "40200", "41000", "22000"}, branches={"SEATTLE"},
                             subaccounts={"SEA-PLM"})

    def party_matches(self, parties):
        from posting.parties import Candidate, Matches

        self.calls.append("find_parties")
        found = {}
        for p in parties:
            named = [Candidate(k, q["name"]) for k, q in self.parties.items() if p.match_by_name and q["name"] == p.name]
            if p.erp_id in self.parties or named:
                found[p.source_id] = Matches(own=p.erp_id if p.erp_id in self.parties else None, named=named)
        return found

    def create_party(self, party):
        self.calls.append("create_party")
        self._maybe_fail()
        self.parties[party.erp_id] = {"name": party.name}
        return party.erp_id

    def find_documents(self, docs):
        self.calls.append("find_documents")
        self._maybe_fail()
        refs = {d["ref"]: k for k, d in self.documents.items()}
        return {d.source_id: Existing(refs[d.external_ref], not self.documents[refs[d.external_ref]]["released"])
                for d in docs if d.external_ref in refs}

    def create_document(self, doc, refs):
        self.calls.append("create_document")
        if doc.source_type == "invoice":
            refs.customer(doc.customer_id)
        if doc.source_type == "payment":
            for a in doc.applications:
                refs.invoice(a.invoice_id)
        self._maybe_fail()
        self._n += 1
        key = f"D{self._n:04d}"
        failing = doc.external_ref in self.fail_release
        self.documents[key] = {"ref": doc.external_ref, "doc": doc, "released": not failing}
        self.unsettled.append((doc.source_type, key))
        return key

    def update_document(self, doc, existing, refs):
        self.calls.append("update_document")
        if doc.external_ref in self.posted_elsewhere:
            raise ConflictError(f"{doc.external_ref} is posted with other amounts; posted files cannot change",
                                system=self.kind)
        self.documents[existing.key]["doc"] = doc
        self.documents[existing.key]["released"] = doc.external_ref not in self.fail_release
        self.unsettled.append((doc.source_type, existing.key))
        return existing.key

    def settle(self):
        """Releases finish here, as Acumatica's do in the background; a failing one fails once."""
        self.calls.append("settle")
        pending, self.unsettled = self.unsettled, []
        return {(st, key): self.fail_release.pop(self.documents[key]["ref"]) for st, key in pending
                if self.documents[key]["ref"] in self.fail_release}

    def close(self):
        pass


__all__ = ["MemoryErp", "AuthError", "TransientError", "ValidationError"]
