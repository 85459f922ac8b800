"""Serving the webhook receiver: ``run`` in the foreground (the CLI's ``fieldledger receiver run``;
blocks until SIGINT/SIGTERM, then lets in-flight requests finish), or ``ThreadedReceiver`` on a
loopback port in a background thread (tests, benchmarks).

``python -m receiver.server --port 8800 [--database-url URL]`` runs it without the CLI.
"""

from __future__ import annotations

import argparse
import logging
import socket
import threading
import time

import psycopg
import uvicorn
from psycopg.conninfo import conninfo_to_dict

from receiver.app import BODY_TIMEOUT_SECONDS, MAX_IN_FLIGHT, MAX_IN_FLIGHT_PER_CONNECTION, create_app
from resources.redaction import install_log_redaction
from resources.store import SyncStore
from resources.vault import Vault, VaultError

GRACEFUL_SHUTDOWN_SECONDS = 30


class ReceiverStartError(RuntimeError):
    """The receiver cannot start; the message says why and what to do."""


def _prepare_store(database_url: str | None) -> str:
    """Fail fast, with a clear message, when the store or the vault key is unusable; migrate."""
    if database_url is None:
        from resources.database import database_url as default_url

        database_url = default_url("fieldledger")
    try:
        psycopg.connect(database_url, connect_timeout=5).close()
    except psycopg.Error as exc:
        where = conninfo_to_dict(database_url)
        raise ReceiverStartError(
            f"Cannot reach the sync store database {where.get('dbname')!r} on {where.get('host')}:{where.get('port')} "
            f"({str(exc).strip().splitlines()[-1].strip() if str(exc).strip() else exc.__class__.__name__}). Start it or fix "
            "FIELDLEDGER_DATABASE_URL / --database-url."
        ) from None
    with SyncStore.open(database_url, migrate=True, max_size=1) as store:
        Vault(store)  # raises VaultKeyError (with the fix) when there is no master key
    return database_url


def _config(app, host: str, port: int, **kw) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, lifespan="on", access_log=False, log_config=None, http="httptools",
        loop="uvloop", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS, timeout_keep_alive=30,
        server_header=False, **kw,
    )


def run(host: str = "127.0.0.1", port: int = 8800, database_url: str | None = None, **app_options) -> None:
    """Serve the receiver until SIGINT/SIGTERM. On a signal it stops accepting connections, waits
    for in-flight deliveries (each answered only after its commit), then closes the store.
    ``app_options`` are ``create_app``'s tuning knobs (writers, max_batch, secret_ttl, ...)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    url = _prepare_store(database_url)
    logging.getLogger("fieldledger.receiver").info("webhook receiver listening on http://%s:%d", host, port)
    uvicorn.Server(_config(create_app(url, **app_options), host, port)).run()


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ThreadedReceiver:
    """The receiver served by uvicorn in a daemon thread on a loopback port."""

    def __init__(self, database_url: str, host: str = "127.0.0.1", port: int = 0, **app_options):
        self.host = host
        self.port = port or _free_port(host)
        self.app = create_app(database_url, **app_options)
        self.server = uvicorn.Server(_config(self.app, host, self.port))
        self._thread = threading.Thread(target=self.server.run, name=f"receiver-{self.port}", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def metrics(self):
        return self.app.state.receiver.metrics

    def start(self, timeout: float = 20.0) -> ThreadedReceiver:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the receiver on port {self.port} did not start; see the log above")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=GRACEFUL_SHUTDOWN_SECONDS + 5)

    def __enter__(self) -> ThreadedReceiver:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fieldledger webhook receiver.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--database-url", default=None, help="sync store URL (default: the configured store)")
    parser.add_argument("--writers", type=int, default=2, help="concurrent inbox writer transactions")
    parser.add_argument("--max-batch", type=int, default=500, help="most deliveries per commit (1 = no group commit)")
    parser.add_argument("--max-in-flight", type=int, default=MAX_IN_FLIGHT,
                        help="concurrent deliveries before answering 503 + Retry-After")
    parser.add_argument("--max-in-flight-per-connection", type=int, default=MAX_IN_FLIGHT_PER_CONNECTION,
                        help="concurrent deliveries for one connection before answering it 503 + Retry-After")
    parser.add_argument("--body-timeout", type=float, default=BODY_TIMEOUT_SECONDS,
                        help="seconds a sender has to send the whole body (then 408, connection closed)")
    args = parser.parse_args(argv)
    try:
        run(args.host, args.port, args.database_url, writers=args.writers, max_batch=args.max_batch,
            max_in_flight=args.max_in_flight, max_in_flight_per_connection=args.max_in_flight_per_connection,
            body_timeout=args.body_timeout)
    except (ReceiverStartError, VaultError) as exc:
        raise SystemExit(f"fieldledger receiver: {exc}") from None


if __name__ == "__main__":
    main()
