"""Text longer than an ERP column, handled the same way for every ERP: cut on a whole character
(ERPs count nvarchar lengths in UTF-16 code units, so a character outside the BMP counts two and is
never split), and say what was cut. The posting protocol writes ``clipped_fields`` into the
"posted" audit row, full text included, so nothing a person typed in ServiceTitan is lost.

References (invoice numbers, payment references) are never cut: a clipped reference could match
another document. A reference longer than the ERP keeps fails before anything is sent, with the
same message for every ERP (``reference_problem``).

Each adapter declares ``text_limits``: the column width for each canonical text field below, and
for ``<source type>_reference``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

# canonical field -> where it sits on a document ("line" is every line's description)
TEXT_FIELDS = ("name", "address_line", "city", "state", "postal_code", "email", "description", "memo", "line")


def utf16_units(text: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def clip(text: str | None, limit: int) -> str | None:
    """At most ``limit`` UTF-16 code units, never splitting a character; any Unicode passes through."""
    if text is None:
        return None
    used, end = 0, 0
    for ch in text:
        width = 2 if ord(ch) > 0xFFFF else 1
        if used + width > limit:
            break
        used += width
        end += 1
    return text[:end]


def _texts(doc) -> Iterator[tuple[str, str, str]]:
    """(path for people, canonical field, text) of every source text a document carries."""
    for name in TEXT_FIELDS[:-1]:
        value = getattr(doc, name, None)
        if isinstance(value, str) and value:
            yield name, name, value
    for i, line in enumerate(getattr(doc, "lines", ()) or ()):
        yield f"lines[{i}].description", "line", line.description


def clipped_fields(doc, limits: Mapping[str, int]) -> list[dict]:
    """Every text of ``doc`` longer than the ERP keeps: path, length, what is kept and the full text."""
    out = []
    for path, kind, text in _texts(doc):
        limit = limits.get(kind)
        if limit is not None and utf16_units(text) > limit:
            out.append({"field": path, "length": utf16_units(text), "kept": limit, "full_text": text})
    return out


def reference_problem(doc, limits: Mapping[str, int], erp_kind: str) -> str | None:
    """Why ``doc``'s external reference cannot go to the ERP as it is, or None."""
    reference = getattr(doc, "external_ref", None)
    limit = limits.get(f"{doc.source_type}_reference")
    if not reference or limit is None or utf16_units(reference) <= limit:
        return None
    return (f"{doc.source_type} {doc.source_id}: its reference {reference!r} is {utf16_units(reference)} characters; "
            f"{erp_kind} keeps at most {limit} and a reference is never cut (a cut one could match another "
            "document). Fix: shorten it in ServiceTitan, then `fieldledger replay`")
