"""The rules that turn webhook hints into partitions: the day is the record's own (read by id),
never the payload's; no usable id or a record the API does not return asks for a catch-up."""

from __future__ import annotations

from datetime import date

from pipelines.servicetitan.hints import InboxHint as Hint
from pipelines.servicetitan.hints import plan, usable_id

FIRST, LAST = date(2025, 11, 1), date(2026, 12, 5)


class Reader:
    """Stands in for the by-id reads: a table of record days per (connection, source type)."""

    def __init__(self, days: dict[tuple[str, str], dict[int, date]], fail: set[str] = frozenset()):
        self.days, self.fail, self.calls = days, fail, []

    def __call__(self, connection, source_type, ids):
        self.calls.append((connection, source_type, ids))
        if connection in self.fail:
            raise ConnectionError("down")
        table = self.days.get((connection, source_type), {})
        return {i: table[i] for i in ids if i in table}


def test_the_day_comes_from_the_reader_and_ids_are_read_once_per_connection_and_entity():
    reader = Reader({("a", "invoice"): {11: date(2026, 3, 2), 12: date(2026, 3, 2)},
                     ("a", "bill"): {7: date(2026, 1, 9)}, ("b", "payment"): {5: date(2026, 2, 1)}})
    hints = [Hint(1, "a", "invoice", 11), Hint(2, "a", "invoice", 12), Hint(3, "a", "invoice", 11),
             Hint(4, "a", "inventorybill", 7), Hint(5, "b", "payment", "5")]
    result = plan(hints, reader, FIRST, LAST)
    assert result.partitions == {("a", date(2026, 3, 2)): 3, ("a", date(2026, 1, 9)): 4, ("b", date(2026, 2, 1)): 5}
    assert sorted(result.handled) == [1, 2, 3, 4, 5] and not result.ignored and not result.catch_up
    assert sorted(reader.calls) == [("a", "bill", [7]), ("a", "invoice", [11, 12]), ("b", "payment", [5])]


def test_no_usable_id_or_no_entity_or_a_record_not_returned_asks_for_the_catch_up():
    reader = Reader({("a", "invoice"): {}})
    hints = [Hint(1, "a", None, None), Hint(2, "a", "invoice", None), Hint(3, "a", "invoice", "x12"),
             Hint(4, "a", "invoice", 0), Hint(5, "b", "payment", True), Hint(6, "a", "invoice", 99)]
    result = plan(hints, reader, FIRST, LAST)
    assert result.catch_up == {"a": 6, "b": 5}
    assert sorted(i for i, _ in result.caught_up) == [1, 2, 3, 4, 5, 6]
    assert not result.partitions and not result.handled
    assert "invoice 99 is not returned by id" in dict(result.caught_up)[6]


def test_parties_and_unsynced_entities_are_ignored_with_the_reason_and_never_read():
    reader = Reader({})
    result = plan([Hint(1, "a", "customer", 4), Hint(2, "a", "vendor", 5), Hint(3, "a", "call", 6, "CallCompleted")],
                  reader, FIRST, LAST)
    assert [i for i, _ in result.ignored] == [1, 2, 3] and not reader.calls and not result.catch_up
    assert dict(result.ignored)[3] == "event type 'CallCompleted' does not name a document date"


def test_a_record_dated_outside_the_synced_range_is_ignored():
    reader = Reader({("a", "invoice"): {1: date(2020, 1, 1), 2: date(2027, 1, 1)}})
    result = plan([Hint(1, "a", "invoice", 1), Hint(2, "a", "invoice", 2)], reader, FIRST, LAST)
    assert not result.partitions and "outside the synced range" in dict(result.ignored)[2]


def test_one_connection_failing_to_read_keeps_the_others():
    reader = Reader({("b", "invoice"): {3: date(2026, 5, 5)}}, fail={"a"})
    result = plan([Hint(1, "a", "invoice", 3), Hint(2, "b", "invoice", 3)], reader, FIRST, LAST)
    assert result.partitions == {("b", date(2026, 5, 5)): 2}
    assert "ConnectionError" in dict(result.ignored)[1]


def test_usable_ids():
    assert [usable_id(v) for v in (5, "6", " 7 ", 0, -1, "a", None, 1.5, False, {"id": 1})] == [
        5, 6, 7, None, None, None, None, None, None, None]
