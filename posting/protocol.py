"""The posting protocol: the one place that decides whether a document is posted, skipped,
updated or held for review, for every ERP (design.md section 3, "Exactly once").

For each claimed record version:
1. posted before with this content hash -> nothing to do (the claim never returns it);
2. another version was posted before (edited in ServiceTitan) -> update the ERP document while
   it is still editable, otherwise hold it as ``needs_review`` (class ``conflict``);
3. look the document up in the ERP by its external reference, right before posting it (small
   groups, ``lookup_group``) -> found: record its key, done (covers a crash between the ERP's
   answer and our write, and a post by a run whose claim lapsed);
4. otherwise post, then record the target key and the audit row in one transaction once the ERP
   has confirmed the post (``settle``: Acumatica finishes releases in the background, confirmed
   for a whole stage at once); a post that failed there fails its record instead.
A write whose answer was lost (AnswerLost: the HTTP layer never resends it) is followed by a
look-up, never by a second post: found, it is recorded (or finished); not found, the record
fails as transient and its next attempt looks again before posting.
Claims are fenced: each post is preceded by ``store.hold`` (this worker still holds the
document's claim, lease renewed) and each outcome is written only under that claim; a worker
whose claim lapsed leaves the document to its new holder.
Parties are posted before the documents that reference them; invoices before the payments
applied to them. Errors are classified, kept with the record and retried only when transient.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from mappings.canonical import Party, document_from_json
from posting.adapter import ErpAdapter, Existing
from posting.parties import note_creating, renamed, resolve_parties
from posting.text_limits import clipped_fields, reference_problem
from resources.http import (
    AnswerLost,
    AuthError,
    ConflictError,
    NotFoundError,
    RemoteError,
    TransientError,
    ValidationError,
)
from resources.redaction import redact
from resources.store import ClaimLost, Record, SyncStore

log = logging.getLogger("fieldledger.posting")

ORDER = {"customer": 0, "vendor": 0, "invoice": 1, "bill": 1, "payment": 2}
ID_MAP_ENTITY = {"customer": "customer", "vendor": "vendor", "invoice": "invoice", "payment": "payment", "bill": "bill"}
MAX_AUTOMATIC_ATTEMPTS = 8
# Documents looked up in the ERP together right before they are posted: small enough that the
# answer is fresh when each is posted, large enough that a look-up costs a fraction of a post.
LOOKUP_GROUP = 10

FIXES = {
    "transient": "nothing: it is retried automatically with backoff; if it keeps failing, check the ERP's health",
    "auth": "check the connection's credentials (`fieldledger ping --connection C`), then replay",
    "mapping": "fix the connection's mapping or the record in ServiceTitan, then `fieldledger replay`",
    "erp_validation": "correct the record (or the ERP setup the message names), then `fieldledger replay`",
    "conflict": "the document was edited in ServiceTitan after it was released in the ERP: adjust it in the "
                "ERP by hand (credit memo / reversal), then `fieldledger errors resolve {record_id} --note ...`",
    "dependency": "fix the record it depends on; this one is retried automatically afterwards",
}


def fix_for(error_class: str | None, record_id: int | None = None) -> str:
    """What to do about a failure of this class, naming the record's own id where the fix needs it."""
    text = FIXES.get(error_class or "", "")
    return text.replace("{record_id}", str(record_id) if record_id is not None else "RECORD_ID")


class DependencyMissing(Exception):
    """A document points at a record not yet in the ERP (a quarantined customer or invoice)."""

    error_class = "dependency"


@dataclass
class PostingSummary:
    counts: Counter = field(default_factory=Counter)
    failures: list[dict] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def add_failure(self, record: Record, error_class: str, message: str) -> None:
        with self._lock:
            self.failures.append({"record": f"{record.source_type} {record.source_id}", "class": error_class,
                                  "message": message, "fix": fix_for(error_class, record.id)})


class StoreReferences:
    """Resolves ServiceTitan ids to ERP keys through the id map, saying why when one is missing."""

    def __init__(self, store: SyncStore, connection: str):
        self.store = store
        self.connection = connection

    def _get(self, entity: str, source_id: str) -> str:
        key = self.store.lookup(self.connection, entity, source_id)
        if key:
            return key
        versions = self.store.records(self.connection, source_type=entity, source_id=source_id)
        if versions:
            latest = versions[-1]
            why = f"its record is {latest.status}"
            if latest.error_message:
                why += f": {latest.error_message}"
        else:
            why = "it has not been extracted yet"
        raise DependencyMissing(f"{entity} {source_id} is not in the ERP yet ({why})")

    def customer(self, source_id: str) -> str:
        return self._get("customer", source_id)

    def vendor(self, source_id: str) -> str:
        return self._get("vendor", source_id)

    def invoice(self, source_id: str) -> str:
        return self._get("invoice", source_id)


def classify(exc: Exception) -> str:
    if isinstance(exc, DependencyMissing):
        return "dependency"
    if isinstance(exc, TransientError):
        return "transient"
    if isinstance(exc, AuthError):
        return "auth"
    if isinstance(exc, ConflictError):
        return "conflict"
    if isinstance(exc, ValidationError | NotFoundError):
        return "erp_validation"
    if isinstance(exc, RemoteError):
        return exc.error_class
    return "erp_validation"


def retry_delay(attempts: int, rng: random.Random = random.Random()) -> float:  # noqa: B008 - one shared rng
    """Record-level backoff with full jitter: up to 5 s, 10 s, 20 s … capped at 10 minutes."""
    return rng.uniform(1.0, min(600.0, 5.0 * 2 ** max(0, attempts)))


class Poster:
    """Posts claimed record versions of one connection through one adapter."""

    def __init__(self, store: SyncStore, adapter: ErpAdapter, connection: str, run_id: str | None = None,
                 on_progress: Callable[[int], None] | None = None):
        self.store = store
        self.adapter = adapter
        self.connection = connection
        self.run_id = run_id
        self.refs = StoreReferences(store, connection)
        self.on_progress = on_progress or (lambda n: None)
        # documents of one stage are independent: post them side by side, within the ERP's limits
        self.workers = max(1, int(getattr(adapter, "parallelism", 1)))
        self.lookup_group = max(1, int(getattr(adapter, "lookup_group", LOOKUP_GROUP)))

    def _each(self, records: list, post_one: Callable) -> None:
        """Run post_one for every record (or group), in parallel when the adapter allows; an
        AuthError (the connection itself is broken) is raised after the others finish."""
        if self.workers == 1 or len(records) < 2:
            for record in records:
                post_one(record)
            return
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="post") as pool:
            futures = [pool.submit(post_one, r) for r in records]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]

    def post(self, records: Iterable[Record]) -> PostingSummary:
        summary = PostingSummary()
        ordered = sorted(records, key=lambda r: (ORDER.get(r.source_type, 9), r.id))
        parties = [r for r in ordered if r.source_type in ("customer", "vendor")]
        documents = [r for r in ordered if r.source_type not in ("customer", "vendor")]
        if parties:
            self._post_parties(parties, summary)
        for stage in (1, 2):
            batch = [r for r in documents if ORDER[r.source_type] == stage]
            if batch:
                self._post_documents(batch, summary)
        return summary

    # --- parties ---------------------------------------------------------------------------

    def _post_parties(self, records: list[Record], summary: PostingSummary) -> None:
        parties = {r.id: document_from_json(r.source_type, r.payload["document"]) for r in records}
        try:  # the id map first, then the ERP; a name only when it is nobody else's (posting/parties.py)
            decided = resolve_parties(self.store, self.connection, self.adapter, list(parties.values()))
        except AuthError:
            raise
        except RemoteError as exc:
            for r in records:
                self._fail(r, exc, summary)
            return
        def post_party(record: Record) -> None:
            party: Party = parties[record.id]
            decision = decided[party.source_id]
            try:
                if decision.action == "ambiguous":
                    if self._record(record, summary, "quarantined", step="failed", outcome="ambiguous_party",
                                    error_class="mapping", error_message=decision.message, count_attempt=False):
                        summary.count("quarantined")
                        summary.add_failure(record, "mapping", decision.message)
                        self.on_progress(1)
                elif decision.action == "linked":
                    self._keep_linked(record, party, decision.key, summary)
                elif decision.action == "found":
                    self._done(record, decision.key, "found_existing", summary)
                elif self._hold(record, summary):
                    # written before the create: if its answer is lost, the next attempt tells the
                    # party it made from the namesakes that were already there (posting/parties.py)
                    note_creating(self.store, self.connection, party, decision.namesakes, self.run_id,
                                  record.content_hash)
                    try:
                        self._done(record, self.adapter.create_party(party), "created", summary, party)
                    except AnswerLost:  # ask before anything else; never create it again blindly
                        again = resolve_parties(self.store, self.connection, self.adapter, [party])[party.source_id]
                        if again.action not in ("found", "linked"):
                            raise
                        self._done(record, again.key, "found_existing", summary)
            except AuthError:
                raise
            except RemoteError as exc:
                self._fail(record, exc, summary)

        # namesakes one after the other: a create whose answer is lost is then told apart from a
        # namesake's by what was there before it (parallel creates of one name would each see two)
        by_name: dict[tuple[str, str], list[Record]] = {}
        for record in records:
            party = parties[record.id]
            by_name.setdefault((party.source_type, " ".join(party.name.split()).casefold()), []).append(record)
        self._each(list(by_name.values()), lambda group: [post_party(r) for r in group])

    def _keep_linked(self, record: Record, party: Party, key: str, summary: PostingSummary) -> None:
        """A party the id map already links keeps its ERP key; renamed in ServiceTitan, the ERP
        party is renamed where the adapter can (never a second party)."""
        how = "kept_linked"
        rename = getattr(self.adapter, "rename_party", None)
        if rename is not None and renamed(self.store, self.connection, party):
            if not self._hold(record, summary):
                return
            rename(party, key)
            how = "renamed"
        self._done(record, key, how, summary, party)

    # --- documents -------------------------------------------------------------------------

    def _post_documents(self, records: list[Record], summary: PostingSummary) -> None:
        docs = {r.id: document_from_json(r.source_type, r.payload["document"]) for r in records}
        fresh = []
        for record in records:
            prior = self.store.latest_posted(self.connection, record.source_type, record.source_id)
            if prior is not None and prior.content_hash != record.content_hash:
                self._post_edit(record, docs[record.id], prior, summary)
            else:
                fresh.append(record)
        if not fresh:
            return
        awaiting: list[tuple[Record, str, str, object]] = []  # posts the ERP has yet to confirm
        size = max(1, min(self.lookup_group, -(-len(fresh) // self.workers)))  # keep every worker busy

        def post_group(group: list[Record]) -> None:
            """Ask the ERP about these documents, then post them: the answer is seconds old."""
            try:
                found = self.adapter.find_documents([docs[r.id] for r in group])
            except AuthError:
                raise
            except RemoteError as exc:
                for r in group:
                    self._fail(r, exc, summary)
                return
            for record in group:
                self._post_document(record, docs[record.id], found.get(docs[record.id].source_id), awaiting, summary)

        try:
            self._each([fresh[i:i + size] for i in range(0, len(fresh), size)], post_group)
        finally:
            self._settle(awaiting, summary)

    def _post_document(self, record: Record, doc, existing: Existing | None, awaiting: list,
                       summary: PostingSummary) -> None:
        try:
            too_long = reference_problem(doc, getattr(self.adapter, "text_limits", {}), self.adapter.kind)
            if too_long:
                raise ValidationError(too_long, system=self.adapter.kind)
            if existing is not None and not existing.updatable:
                self._done(record, existing.key, "found_existing", summary)
                return
            if not self._hold(record, summary):
                return
            try:
                self._write(record, doc, existing, awaiting)
            except AnswerLost:
                # the ERP may hold it although its answer never came: ask, never post it again now
                again = self.adapter.find_documents([doc]).get(doc.source_id)
                if again is None:
                    raise
                if again.updatable:
                    if self._hold(record, summary):  # still ours after the look-up
                        self._write(record, doc, again, awaiting)
                else:
                    self._done(record, again.key, "found_existing", summary)
        except AuthError:
            raise
        except (RemoteError, DependencyMissing) as exc:
            self._fail(record, exc, summary)

    def _write(self, record: Record, doc, existing: Existing | None, awaiting: list) -> None:
        """Create the document, or finish the one an earlier attempt saved but never released."""
        if existing is not None:
            awaiting.append((record, self.adapter.update_document(doc, existing, self.refs), "completed_existing", doc))
        else:
            awaiting.append((record, self.adapter.create_document(doc, self.refs), "created", doc))

    def _settle(self, awaiting: list[tuple[Record, str, str, object]], summary: PostingSummary) -> None:
        """Record a stage's posts once the ERP has confirmed them (Acumatica finishes releases in the
        background): a post whose completion failed fails its record, which the next attempt finds
        unreleased and completes. Runs before the next stage, whose documents may depend on these."""
        if not awaiting:
            return
        failures = self.adapter.settle()
        for record, key, how, doc in awaiting:
            exc = failures.get((record.source_type, key))
            if exc is None:
                self._done(record, key, how, summary, doc)
            else:
                self._fail(record, exc, summary)

    def _post_edit(self, record: Record, doc, prior: Record, summary: PostingSummary) -> None:
        """The record changed in ServiceTitan after an earlier version was posted. What the ERP
        cannot change (released in Acumatica, posted in Vantagepoint) is a conflict for a person,
        whichever adapter finds that out: needs_review, closed with `fieldledger errors resolve`."""
        cannot = ""
        try:
            existing = self.adapter.find_documents([doc]).get(doc.source_id)
            if existing is None:
                existing = Existing(key=prior.target_key, updatable=False)
            if existing.updatable:
                if not self._hold(record, summary):
                    return
                try:
                    key = self.adapter.update_document(doc, existing, self.refs)
                except ConflictError as exc:  # the ERP holds it posted after all
                    cannot = f": {exc}"
                else:
                    self._settle([(record, key, "updated", doc)], summary)
                    return
        except AuthError:
            raise
        except (RemoteError, DependencyMissing) as exc:
            self._fail(record, exc, summary)
            return
        before = (prior.payload or {}).get("document", {})
        old_total = before.get("total", before.get("amount"))
        new_total = getattr(doc, "total", None)
        if new_total is None:
            new_total = getattr(doc, "amount", None)
        message = (f"edited in ServiceTitan after {existing.key} was released in the ERP "
                   f"(amount was {old_total}, now {new_total}){cannot}")
        if not self._record(record, summary, "needs_review", step="failed", outcome="conflict",
                            error_class="conflict", error_message=message,
                            detail={"previous_key": existing.key, "previous_hash": prior.content_hash}):
            return
        summary.count("needs_review")
        summary.add_failure(record, "conflict", message)

    # --- claims and outcomes ---------------------------------------------------------------

    def _hold(self, record: Record, summary: PostingSummary) -> bool:
        """Right before a write to the ERP: does this worker still hold the document's claim?"""
        if self.store.hold(record):
            return True
        self._claim_lost(record, summary)
        return False

    def _claim_lost(self, record: Record, summary: PostingSummary) -> None:
        summary.count("claim_lost")
        log.warning("%s %s: the claim lapsed or passed to another worker; left to its holder",
                    record.source_type, record.source_id)
        self.on_progress(1)

    def _record(self, record: Record, summary: PostingSummary, status: str, **kw) -> bool:
        """record_outcome under the record's claim; False (nothing written) when the claim was lost."""
        try:
            self.store.record_outcome(record.id, status, run_id=self.run_id, fence=record.fence, **kw)
        except ClaimLost:
            self._claim_lost(record, summary)
            return False
        return True

    def _done(self, record: Record, key: str, how: str, summary: PostingSummary, doc=None) -> None:
        """Posted: status, key and audit row in one step. Text the ERP could not hold in full
        (``text_limits``) is named in the audit row with its full text."""
        clipped = clipped_fields(doc, getattr(self.adapter, "text_limits", {})) if doc is not None else []
        if not self._record(record, summary, "posted", step="posted", outcome=how, target_key=key,
                            id_map_entity=ID_MAP_ENTITY[record.source_type],
                            detail={"clipped": clipped} if clipped else None):
            return
        summary.count("found_existing" if how == "found_existing" else "posted")
        self.on_progress(1)

    def _fail(self, record: Record, exc: Exception, summary: PostingSummary) -> None:
        error_class = classify(exc)
        message = redact(str(exc))[:2000]
        retry_in = None
        if error_class in ("transient", "dependency") and record.attempts + 1 < MAX_AUTOMATIC_ATTEMPTS:
            retry_in = retry_delay(record.attempts)
        if not self._record(record, summary, "failed", step="failed", outcome=error_class,
                            error_class=error_class, error_message=message, retry_in_seconds=retry_in):
            return
        summary.count("failed")
        summary.add_failure(record, error_class, message)
        log.warning("%s %s failed (%s): %s", record.source_type, record.source_id, error_class, message)
        self.on_progress(1)
