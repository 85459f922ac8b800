"""The demo's choice at start, against a real sync store: resume when the simulators kept their
state, start the books over when they did not or when asked (--fresh), and stop with the way out
when a snapshot cannot be read."""

from __future__ import annotations

import pickle
from datetime import date

import pytest

from fieldledger.demo import resume_or_start_over
from simulators.snapshots import FORMAT


def records(store) -> int:
    with store.transaction() as conn:
        return conn.execute("SELECT count(*) AS n FROM records").fetchone()["n"]


@pytest.fixture
def books(store):
    store.upsert_version("cascade-hvac", "invoice", "1001", "h1", date(2026, 1, 5), {"id": 1001})
    return store


def test_resumes_when_the_simulators_kept_their_state(books, start_sims, tmp_path, capsys):
    start_sims("acumatica").stop()
    assert resume_or_start_over(books, tmp_path / "sims", fresh=False) is True
    assert records(books) == 1
    assert "resuming" in capsys.readouterr().out


def test_starts_over_without_snapshots_or_when_fresh(books, start_sims, tmp_path, capsys):
    assert resume_or_start_over(books, tmp_path / "none-yet", fresh=False) is False
    assert records(books) == 0
    assert "the simulators start fresh: the books start over (1 old records cleared)" in capsys.readouterr().out

    books.upsert_version("cascade-hvac", "invoice", "1002", "h2", date(2026, 1, 5), {"id": 1002})
    start_sims("acumatica").stop()
    assert resume_or_start_over(books, tmp_path / "sims", fresh=True) is False
    assert not (tmp_path / "sims").exists() and records(books) == 0


def test_an_unreadable_snapshot_stops_the_demo_with_the_way_out(books, tmp_path):
    folder = tmp_path / "sims"
    folder.mkdir()
    with open(folder / "vantagepoint.snapshot", "wb") as handle:
        pickle.dump({"format": FORMAT, "version": 99, "simulator": "vantagepoint"}, handle)
    with pytest.raises(SystemExit, match=r"version 99.*fieldledger demo --fresh"):
        resume_or_start_over(books, folder, fresh=False)
    assert records(books) == 1  # nothing thrown away
