"""The subset of OData v3 ``$filter`` that Acumatica's contract-based API documents: eq ne gt ge lt
le, and, or, parentheses, substringof / startswith / endswith, string literals with '' escaping,
numbers (optional M/D suffix), true/false/null, datetimeoffset'…', datetime'…', date'…', guid'…',
and linked-entity paths (MainContact/Email). A recursive-descent parser that compiles the text
into a predicate over a record; anything else is a FilterError (the API answers 400)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from simulators.acumatica.schema import parse_datetime


class FilterError(ValueError):
    pass


@dataclass(frozen=True)
class Token:
    kind: str  # name, string, number, literal, op, lparen, rparen, comma, end
    value: Any
    pos: int


_TYPED_LITERAL = re.compile(r"(datetimeoffset|datetime|date|guid)'([^']*)'", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(\.\d+)?[mMdD]?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")
_COMPARISONS = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"substringof", "startswith", "endswith"}


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "(":
            tokens.append(Token("lparen", ch, i))
            i += 1
            continue
        if ch == ")":
            tokens.append(Token("rparen", ch, i))
            i += 1
            continue
        if ch == ",":
            tokens.append(Token("comma", ch, i))
            i += 1
            continue
        if ch == "'":
            j = i + 1
            buf = []
            while True:
                if j >= len(text):
                    raise FilterError(f"unterminated string literal at position {i}")
                if text[j] == "'":
                    if j + 1 < len(text) and text[j + 1] == "'":
                        buf.append("'")
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            tokens.append(Token("string", "".join(buf), i))
            i = j + 1
            continue
        m = _TYPED_LITERAL.match(text, i)
        if m:
            kind, raw = m.group(1).lower(), m.group(2)
            try:
                value: Any = raw if kind == "guid" else parse_datetime(raw)
            except ValueError as exc:
                raise FilterError(f"bad {kind} literal {raw!r}") from exc
            tokens.append(Token("literal", value, i))
            i = m.end()
            continue
        m = _NUMBER.match(text, i)
        if m and (ch.isdigit() or ch == "-"):
            raw = m.group(0).rstrip("mMdD")
            tokens.append(Token("number", Decimal(raw), i))
            i = m.end()
            continue
        m = _NAME.match(text, i)
        if m:
            word = m.group(0)
            low = word.lower()
            if low in _COMPARISONS or low in ("and", "or"):
                tokens.append(Token("op", low, i))
            elif low in ("true", "false"):
                tokens.append(Token("literal", low == "true", i))
            elif low == "null":
                tokens.append(Token("literal", None, i))
            else:
                tokens.append(Token("name", word, i))
            i = m.end()
            continue
        raise FilterError(f"unexpected character {ch!r} at position {i}")
    tokens.append(Token("end", None, len(text)))
    return tokens


Predicate = Callable[[dict], bool]
Getter = Callable[[str, dict], Any]


class _Parser:
    def __init__(self, text: str, getter: Getter, known: Callable[[str], bool]):
        self.tokens = tokenize(text)
        self.i = 0
        self.getter = getter
        self.known = known

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self, kind: str, value: Any = None) -> Token:
        tok = self.peek()
        if tok.kind != kind or (value is not None and tok.value != value):
            want = value or kind
            raise FilterError(f"expected {want} at position {tok.pos}, found {tok.value or tok.kind!r}")
        self.i += 1
        return tok

    def parse(self) -> Predicate:
        pred = self.or_expr()
        self.take("end")
        return pred

    def or_expr(self) -> Predicate:
        left = self.and_expr()
        while self.peek().kind == "op" and self.peek().value == "or":
            self.i += 1
            right = self.and_expr()
            left = (lambda a, b: lambda r: a(r) or b(r))(left, right)
        return left

    def and_expr(self) -> Predicate:
        left = self.comparison()
        while self.peek().kind == "op" and self.peek().value == "and":
            self.i += 1
            right = self.comparison()
            left = (lambda a, b: lambda r: a(r) and b(r))(left, right)
        return left

    def comparison(self) -> Predicate:
        tok = self.peek()
        if tok.kind == "lparen":
            self.i += 1
            inner = self.or_expr()
            self.take("rparen")
            return self._maybe_compare_bool(inner)
        if tok.kind == "name" and tok.value.lower() in _FUNCTIONS and self.tokens[self.i + 1].kind == "lparen":
            return self._maybe_compare_bool(self.function())
        left = self.operand()
        op = self.peek()
        if op.kind != "op" or op.value not in _COMPARISONS:
            raise FilterError(f"expected a comparison operator at position {op.pos}")
        self.i += 1
        right = self.operand()
        return _compare(op.value, left, right)

    def _maybe_compare_bool(self, pred: Predicate) -> Predicate:
        op = self.peek()
        if op.kind == "op" and op.value in ("eq", "ne"):
            self.i += 1
            lit = self.take("literal")
            if not isinstance(lit.value, bool):
                raise FilterError(f"a boolean function result compares only with true/false (position {lit.pos})")
            want = lit.value if op.value == "eq" else not lit.value
            return lambda r: pred(r) is want
        return pred

    def function(self) -> Predicate:
        name = self.take("name").value.lower()
        self.take("lparen")
        a = self.operand()
        self.take("comma")
        b = self.operand()
        self.take("rparen")

        def text(v: Any) -> str | None:
            return None if v is None else str(v).lower()

        if name == "substringof":  # substringof('needle', Field)
            return lambda r: _both(text(a(r)), text(b(r)), lambda n, h: n in h)
        if name == "startswith":  # startswith(Field, 'prefix')
            return lambda r: _both(text(b(r)), text(a(r)), lambda p, h: h.startswith(p))
        return lambda r: _both(text(b(r)), text(a(r)), lambda s, h: h.endswith(s))

    def operand(self) -> Callable[[dict], Any]:
        tok = self.peek()
        if tok.kind in ("string", "number", "literal"):
            self.i += 1
            return lambda r, v=tok.value: v
        if tok.kind == "name":
            self.i += 1
            if tok.value.lower() in _FUNCTIONS:
                raise FilterError(f"{tok.value} must be called with arguments (position {tok.pos})")
            if not self.known(tok.value):
                raise FilterError(f"unknown field {tok.value!r} at position {tok.pos}")
            return lambda r, path=tok.value: self.getter(path, r)
        raise FilterError(f"expected a field or a literal at position {tok.pos}")


def _both(a: str | None, b: str | None, fn: Callable[[str, str], bool]) -> bool:
    return a is not None and b is not None and fn(a, b)


def _normalize(v: Any) -> Any:
    if isinstance(v, str):
        return v.casefold()  # SQL Server's default collation compares case-insensitively
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return Decimal(str(v))
    if isinstance(v, datetime) and v.tzinfo is None:
        return v.replace(tzinfo=UTC)
    return v


def _compare(op: str, left: Callable, right: Callable) -> Predicate:
    def pred(record: dict) -> bool:
        a, b = _normalize(left(record)), _normalize(right(record))
        if op == "eq":
            return a == b
        if op == "ne":
            return a != b
        if a is None or b is None:
            return False
        try:
            return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]
        except TypeError:
            return False

    return pred


def compile_filter(text: str, getter: Getter, known: Callable[[str], bool]) -> Predicate:
    """``getter(path, record)`` reads a (possibly linked) field; ``known(path)`` says whether the
    entity has it. Raises FilterError with the position of the problem."""
    return _Parser(text, getter, known).parse()
