"""Fixtures for the webhook receiver: a vault with a signing secret, the receiver on a loopback
port (a thread, or a subprocess for the kill and shutdown tests), and signed-delivery helpers."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from receiver.server import ThreadedReceiver, _free_port
from resources.vault import Vault
from tests.receiver.webhook_deliveries import CONNECTION

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def master_key(monkeypatch) -> str:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("FIELDLEDGER_MASTER_KEY", key)
    return key


@pytest.fixture
def home(database_url, tmp_path, monkeypatch) -> Path:
    """A private FIELDLEDGER_HOME (connection files) for this test, after the database exists."""
    monkeypatch.setenv("FIELDLEDGER_HOME", str(tmp_path))
    (tmp_path / "connections").mkdir()
    return tmp_path


@pytest.fixture
def vault(store, master_key, home) -> Vault:
    return Vault(store)


@pytest.fixture
def secret(vault) -> str:
    value = secrets.token_urlsafe(36)  # 48 characters, within ServiceTitan's 32-64
    vault.set(CONNECTION, "st_webhook_secret", value)
    return value


@pytest.fixture
def receiver(database_url, secret):
    with ThreadedReceiver(database_url) as served:
        yield served


@pytest.fixture
def client(receiver):
    with httpx.Client(base_url=receiver.base_url, timeout=15) as c:
        yield c


class ReceiverProcess:
    """The receiver as `python -m receiver.server` in a subprocess, output captured to a file."""

    def __init__(self, database_url: str, log_path: Path):
        self.database_url = database_url
        self.log_path = log_path
        self.port = _free_port("127.0.0.1")
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ReceiverProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed when the process is reaped
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "receiver.server", "--port", str(self.port), "--database-url", self.database_url],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ),
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"receiver exited with {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"receiver did not become healthy: {self.output()}")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 40) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def receiver_process(database_url, secret, tmp_path):
    """Starts (and restarts) receiver subprocesses on this test's database; kills leftovers."""
    started: list[ReceiverProcess] = []

    def launch() -> ReceiverProcess:
        process = ReceiverProcess(database_url, tmp_path / f"receiver-{len(started)}.log")
        started.append(process)
        return process.start()

    yield launch
    for process in started:
        process.stop()
