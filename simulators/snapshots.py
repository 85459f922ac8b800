"""Opt-in persistence for the simulators, so `make demo` can stop and resume (issue 8).

Each simulator that is given a state directory keeps one file, ``<dir>/<name>.snapshot``: a
pickled header (format, version, simulator, identity: the seed and data options the state was
generated with) followed by the pickled state. It is loaded at start when it exists and written

- before the answer to every request that may change state (POST, PUT, PATCH, DELETE) is sent,
  so whatever a client was told was saved survives a hard kill (concurrent writers share one
  write: group commit),
- by the simulator itself before it announces a change (the ServiceTitan simulator's webhooks),
- every ``snapshot_seconds`` (30 s by default) for what changes on its own (clocks, releases),
- and once more, marked clean, on an orderly stop.

Writes are atomic: temporary file, fsync, rename, fsync of the directory. The files are written
0600 and only ever read back from the same state folder, which is why pickle is acceptable here.
A snapshot of another format version or of differently generated data is refused with a
``SnapshotError`` that says how to start over.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FORMAT = "fieldledger-simulator-snapshot"
VERSION = 1
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
START_OVER = "start over with `fieldledger demo --fresh` (or delete {path})"

log = logging.getLogger("simulators.snapshots")


class SnapshotError(RuntimeError):
    """A snapshot that cannot be used; the message names the file and how to start over."""


def frozen(value: Any) -> bytes:
    """Serialize now (call it under the lock that guards ``value``): the bytes cannot change later."""
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def thawed(blob: bytes) -> Any:
    return pickle.loads(blob)  # noqa: S301 - our own file in the state folder


def snapshot_path(directory: Path, name: str) -> Path:
    return Path(directory) / f"{name}.snapshot"


@dataclass
class Saved:
    """A loaded snapshot: the simulator's state and whether it was written by an orderly stop."""

    state: Any
    clean: bool
    saved_at: datetime


def read_header(path: Path, name: str, identity: dict) -> dict | None:
    """The header of ``path`` after checking it fits this simulator; None when there is no file."""
    if not path.exists():
        return None
    with open(path, "rb") as handle:
        return _checked_header(handle, path, name, identity)


def _checked_header(handle, path: Path, name: str, identity: dict) -> dict:
    how = START_OVER.format(path=path)
    try:
        header = pickle.load(handle)  # noqa: S301
    except Exception as exc:
        raise SnapshotError(f"{path} is not a simulator snapshot fieldledger can read ({exc}); {how}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SnapshotError(f"{path} is not a simulator snapshot; {how}")
    if header.get("version") != VERSION:
        raise SnapshotError(f"{path} was written in snapshot format version {header.get('version')}, this "
                            f"fieldledger reads version {VERSION}; {how}")
    if header.get("simulator") != name:
        raise SnapshotError(f"{path} holds the {header.get('simulator')} simulator, not {name}; {how}")
    if header.get("identity") != identity:
        differ = sorted(k for k in set(identity) | set(header.get("identity") or {})
                        if identity.get(k) != (header.get("identity") or {}).get(k))
        raise SnapshotError(f"{path} was generated with other settings ({', '.join(differ)} differ: saved "
                            f"{ {k: (header.get('identity') or {}).get(k) for k in differ} }, asked "
                            f"{ {k: identity.get(k) for k in differ} }); start the simulators with the same "
                            f"settings, or {how}")
    return header


def check_directory(directory: Path) -> list[Path]:
    """The snapshots in ``directory`` whose header cannot be read (SnapshotError), else the files found.
    Identity is checked by each simulator at start; this is the cheap early check the demo makes."""
    found = sorted(Path(directory).glob("*.snapshot")) if Path(directory).exists() else []
    for path in found:
        with open(path, "rb") as handle:
            try:
                header = pickle.load(handle)  # noqa: S301
            except Exception as exc:
                raise SnapshotError(f"{path} is not a simulator snapshot fieldledger can read ({exc}); "
                                    f"{START_OVER.format(path=path)}") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("version") != VERSION:
            version = header.get("version") if isinstance(header, dict) else None
            raise SnapshotError(f"{path} was written in snapshot format version {version}, this fieldledger "
                                f"reads version {VERSION}; {START_OVER.format(path=path)}")
    return found


def write_atomic(path: Path, header: dict, state: Any) -> int:
    """temp + fsync + rename + fsync(dir): the file is the old snapshot or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        pickle.dump(header, handle, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)
        handle.flush()
        os.fsync(handle.fileno())
        size = handle.tell()
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return size


class Persistence:
    """One simulator's snapshot file: load at start, group-committed writes, a periodic writer.

    ``capture()`` returns the state to save; it must serialize mutable parts under the
    simulator's own locks (see ``frozen``) so the write itself can run outside them."""

    def __init__(self, directory: Path, name: str, identity: dict, capture: Callable[[], Any],
                 interval: float = 30.0):
        self.path = snapshot_path(directory, name)
        self.name = name
        self.identity = identity
        self.capture = capture
        self.interval = interval
        self._generation = 0  # bumped by every change a client may have seen
        self._durable = -1  # generation covered by the file
        self._gen_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.writes = 0
        self.last_bytes = 0

    # --- load -----------------------------------------------------------------------------------
    def load(self) -> Saved | None:
        if not self.path.exists():
            return None
        with open(self.path, "rb") as handle:
            header = _checked_header(handle, self.path, self.name, self.identity)
            try:
                state = pickle.load(handle)  # noqa: S301
            except Exception as exc:
                raise SnapshotError(f"{self.path} could not be read ({type(exc).__name__}: {exc}); "
                                    f"{START_OVER.format(path=self.path)}") from None
        log.info("%s: resumed from %s (saved %s, %s)", self.name, self.path, header["saved_at"],
                 "clean stop" if header.get("clean") else "after a hard stop")
        return Saved(state, bool(header.get("clean")), header["saved_at"])

    # --- write ----------------------------------------------------------------------------------
    def mark(self) -> int:
        """Note a change; returns its generation (pass it to ``flush``)."""
        with self._gen_lock:
            self._generation += 1
            return self._generation

    def flush(self, upto: int | None = None, clean: bool = False) -> None:
        """Make sure the file covers generation ``upto`` (default: every change marked so far).
        A caller whose change another writer already covered returns at once."""
        with self._gen_lock:
            wanted = self._generation if upto is None else upto
        with self._write_lock:
            if self._durable >= wanted and not clean:
                return
            with self._gen_lock:
                covers = self._generation  # read before capturing: the capture includes all of it
            header = {"format": FORMAT, "version": VERSION, "simulator": self.name, "identity": self.identity,
                      "saved_at": datetime.now(UTC), "clean": clean}
            self.last_bytes = write_atomic(self.path, header, self.capture())
            self.writes += 1
            self._durable = covers

    def _periodic(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush(self.mark())
            except Exception:  # keep serving; the next write tries again
                log.exception("%s: writing %s failed", self.name, self.path)

    def start(self) -> Persistence:
        """Call once the state is built (generated or restored): it is written at once, so a kill
        right after the first start still resumes the same generated data."""
        self.flush(self.mark())
        if self._thread is None and self.interval > 0:
            self._thread = threading.Thread(target=self._periodic, name=f"{self.name}-snapshots", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """The orderly stop: the periodic writer ends and a clean snapshot is written."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush(self.mark(), clean=True)

    # --- ASGI -----------------------------------------------------------------------------------
    def durable_writes(self, app: Callable) -> Callable:
        """Wrap an ASGI app: the answer to a request that may change state is held back until a
        snapshot covering it is on disk, so nothing a client was told about is lost by a kill."""
        from starlette.concurrency import run_in_threadpool

        async def wrapped(scope, receive, send):
            if scope["type"] != "http" or scope.get("method") not in WRITE_METHODS:
                await app(scope, receive, send)
                return
            held: list[dict] = []

            async def hold(message):
                held.append(message)

            try:
                await app(scope, receive, hold)
            finally:
                generation = self.mark()
                try:
                    await run_in_threadpool(self.flush, generation)
                except Exception:
                    log.exception("%s: writing %s failed", self.name, self.path)
                    held = [{"type": "http.response.start", "status": 500,
                             "headers": [(b"content-type", b"application/json")]},
                            {"type": "http.response.body",
                             "body": b'{"message":"The simulator could not save its state."}'}]
                for message in held:
                    await send(message)

        wrapped.persistence = self
        return wrapped


def persistence_for(options, name: str, identity: dict,
                    capture: Callable[[], Any]) -> tuple[Persistence | None, Saved | None]:
    """(None, None) without a state directory (the default: memory only); else the simulator's
    Persistence and its loaded snapshot (None on a first start). ``options`` is a SimOptions."""
    directory = options.state_path()
    if directory is None:
        return None, None
    persistence = Persistence(directory, name, identity, capture, options.snapshot_seconds())
    return persistence, persistence.load()


def resumed_clock(options, saved: Saved | None):
    """The simulator's clock: continued from the snapshot's ``clock`` position, or new."""
    from simulators.runtime import SimClock

    if saved is None:
        return SimClock(options.time_factor)
    return SimClock.resumed(options.time_factor, saved.state["clock"])
