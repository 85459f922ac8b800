"""The `fieldledger` command line. Each command is thin: it parses, calls the module that owns the
work, and prints. Exit codes: 0 ok, 1 the work failed, 2 bad usage or configuration."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import typer

from fieldledger import settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="fieldledger: ServiceTitan to Acumatica / Vantagepoint, every document exactly once.")
secrets_app = typer.Typer(no_args_is_help=True, help="Connection secrets in the encrypted vault.")
sim_app = typer.Typer(no_args_is_help=True, help="The ServiceTitan, Acumatica and Vantagepoint simulators.")
receiver_app = typer.Typer(no_args_is_help=True, help="The ServiceTitan webhook receiver.")
db_app = typer.Typer(no_args_is_help=True, help="The sync store's PostgreSQL server.")
connections_app = typer.Typer(no_args_is_help=True, help="Connection files.")
errors_app = typer.Typer(no_args_is_help=True, help="Records that need attention.")
app.add_typer(secrets_app, name="secrets")
app.add_typer(sim_app, name="sim")
app.add_typer(receiver_app, name="receiver")
app.add_typer(db_app, name="db")
app.add_typer(connections_app, name="connections")
app.add_typer(errors_app, name="errors")


def fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _store():
    from resources.store import SyncStore

    return SyncStore.open()


def _vault(store=None):
    from resources.vault import Vault, VaultError

    try:
        return Vault(store or _store())
    except VaultError as exc:
        fail(str(exc), 2)


@app.command()
def init(
    demo: bool = typer.Option(False, "--demo", help="Also set up the two demo connections against the simulators."),
    info_file: Path = typer.Option(None, help="The simulators' info file (default <state>/sim.json)."),
    receiver_url: str = typer.Option("http://127.0.0.1:8800", help="Where the webhook receiver listens."),
) -> None:
    """Create the state folder, the master key file (0600), the sync store schema and an example
    connection file; with --demo, the demo connections, their secrets and webhooks."""
    from resources.vault import create_key_file

    home = settings.ensure_state_home()
    key = create_key_file()
    store = _store()
    typer.echo(f"state folder  {home}")
    typer.echo(f"master key    {key} (mode 0600; back it up: secrets cannot be read without it)")
    typer.echo(f"sync store    schema version {store.schema_version()}")
    example = home / "connection.example.yaml"
    if not example.exists():
        from fieldledger.demo_setup import TEMPLATES

        example.write_text((TEMPLATES / "cascade-hvac.yaml").read_text())
        typer.echo(f"example       {example} (copy to {settings.connections_dir()}/<name>.yaml and edit)")
    if demo:
        from fieldledger.demo_setup import init_demo

        info = info_file or settings.sim_info_path()
        if not info.exists():
            fail(f"{info} does not exist: start the simulators first (`fieldledger sim up`).", 2)
        for name in init_demo(info, _vault(store), receiver_url):
            typer.echo(f"connection    {name}: file written, secrets stored, webhook registered")
    store.close()


def _connection(name: str):
    from mappings.connection import ConnectionFileError, load_connection

    try:
        return load_connection(name)
    except ConnectionFileError as exc:
        fail(str(exc), 2)


@app.command()
def sync(
    connection: str = typer.Option(..., "--connection", "-c", help="Connection name."),
    start: str = typer.Option(..., help="First business day, YYYY-MM-DD."),
    end: str = typer.Option(..., help="Last business day, YYYY-MM-DD."),
) -> None:
    """Run the sync for every day from START to END through Dagster (visible in the UI)."""
    from datetime import date

    from fieldledger.operations import days_between, open_failures, run_partitions

    _connection(connection)
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        fail("--start and --end take dates as YYYY-MM-DD", 2)
    if last < first:
        fail("--end is before --start", 2)
    days = days_between(first, last)
    with typer.progressbar(length=len(days), label=f"syncing {connection}") as bar:
        outcome = run_partitions(connection, days, "cli-sync", on_done=lambda d, ok: bar.update(1))
    failures = open_failures(_store(), connection, first, last)
    typer.echo(f"{outcome.runs} runs, {len(outcome.failed_runs)} failed runs, {len(failures)} records need attention")
    for run in outcome.failed_runs:
        typer.echo(f"  failed run: {run}")
    for rec in failures[:20]:
        typer.echo(f"  {rec.source_type} {rec.source_id} [{rec.error_class}] {rec.error_message}")
    if outcome.failed_runs or failures:
        typer.echo("See `fieldledger errors list`, fix the cause, then `fieldledger replay --failed`.")
        raise typer.Exit(1)


@app.command()
def replay(
    connection: str = typer.Option(..., "--connection", "-c", help="Connection name."),
    failed: bool = typer.Option(False, "--failed", help="Only records that failed or were quarantined."),
    day: str = typer.Option(None, "--date", help="Only this business day, YYYY-MM-DD."),
    record: str = typer.Option(None, "--record", help="Only this ServiceTitan record id."),
) -> None:
    """Replay records: re-map quarantined ones with the current connection file, retry failed
    ones, re-run their days. Safe to repeat: nothing already posted is posted again."""
    import uuid
    from datetime import date

    from fieldledger.operations import open_failures, prepare_replay, run_partitions

    conn = _connection(connection)
    if not (failed or day or record):
        fail("say what to replay: --failed, --date YYYY-MM-DD and/or --record ID", 2)
    store = _store()
    the_day = date.fromisoformat(day) if day else None
    days = prepare_replay(store, conn, only_failed=failed, day=the_day, record=record,
                          run_id=f"replay-{uuid.uuid4().hex[:8]}")
    if not days:
        typer.echo("nothing to replay")
        return
    outcome = run_partitions(connection, sorted(days), "replay")
    left = [r for r in open_failures(store, connection) if r.business_date in days]
    typer.echo(f"replayed {len(days)} day(s): {outcome.runs} runs, {len(left)} records still need attention")
    if outcome.failed_runs or left:
        raise typer.Exit(1)


# --- secrets ---------------------------------------------------------------------------------


@secrets_app.command("set")
def secrets_set(connection: str, name: str) -> None:
    """Store a secret. The value is read from stdin (piped) or a hidden prompt, never from argv."""
    if sys.stdin.isatty():
        value = getpass.getpass(f"{name} for {connection}: ")
    else:
        value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        fail("No value given: pipe it on stdin or type it at the prompt.", 2)
    _vault().set(connection, name, value)
    typer.echo(f"stored {name} for {connection}")


@secrets_app.command("list")
def secrets_list(connection: str = typer.Argument(None, help="Only this connection's secrets.")) -> None:
    """Secret names and when they last changed (never the values)."""
    rows = _vault().list(connection)
    if not rows:
        typer.echo("no secrets stored")
        return
    typer.echo(f"{'CONNECTION':24s} {'NAME':24s} LAST CHANGED (UTC)")
    for s in rows:
        typer.echo(f"{s.connection:24s} {s.name:24s} {s.updated_at:%Y-%m-%d %H:%M:%S}")


@secrets_app.command("rotate-key")
def secrets_rotate_key() -> None:
    """Make a new master key and re-encrypt every secret with it."""
    from resources.vault import VaultError

    try:
        count = _vault().rotate_key()
    except VaultError as exc:
        fail(str(exc), 2)
    typer.echo(f"re-encrypted {count} secrets with the new master key")


# --- database ----------------------------------------------------------------------------------


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL (no-op with FIELDLEDGER_DATABASE_URL) and print its URL."""
    from resources.database import database_url

    typer.echo(database_url())


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL server."""
    from resources.database import embedded_pgdata, stop_embedded

    stop_embedded(embedded_pgdata())
    typer.echo("stopped")


# --- simulators --------------------------------------------------------------------------------


@sim_app.command("up")
def sim_up(
    port_base: int = typer.Option(8800, help="ServiceTitan listens on port-base+1, Acumatica +2, Vantagepoint +3."),
    seed: int = typer.Option(7, help="Seed for deterministic data and credentials."),
    profile: str = typer.Option("none", help="Fault profiles, comma-separated (e.g. flaky,slow)."),
    live: bool = typer.Option(True, "--live/--no-live", help="Keep creating activity and sending webhooks."),
    rate: float = typer.Option(30.0, help="Live mode: new or changed documents per minute."),
    info_file: Path = typer.Option(None, help="Where to write URLs and credentials (default <state>/sim.json)."),
    option: list[str] = typer.Option(None, "--option", "-o",
                                     help="Simulator setting KEY=VALUE, repeatable (e.g. tier=trial)."),
) -> None:
    """Run the simulators in the foreground until Ctrl-C."""
    from simulators.faults import parse_profile
    from simulators.launcher import run_foreground
    from simulators.runtime import SimOptions

    try:
        fault_profile = parse_profile(profile)
    except ValueError as exc:
        fail(str(exc), 2)
    extra = {}
    for item in option or []:
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"--option takes KEY=VALUE, got {item!r}", 2)
        extra[key] = value
    options = SimOptions(seed=seed, profile=fault_profile, live=live, live_rate_per_minute=rate, options=extra)
    settings.ensure_state_home()
    run_foreground(options, port_base, info_file or settings.sim_info_path())


# --- receiver ----------------------------------------------------------------------------------


@receiver_app.command("run")
def receiver_run(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8800, help="Port to listen on."),
) -> None:
    """Serve POST /webhooks/servicetitan/{connection} until Ctrl-C."""
    from receiver.server import run

    run(host=host, port=port)


@connections_app.command("list")
def connections_list() -> None:
    """The connection files in the state folder."""
    from mappings.connection import ConnectionFileError, load_connection_file

    folder = settings.connections_dir()
    files = sorted(folder.glob("*.yaml")) if folder.exists() else []
    if not files:
        typer.echo(f"no connection files in {folder}; run `fieldledger init` (or `init --demo`)")
        return
    typer.echo(f"{'NAME':22s} {'ERP':13s} {'TENANT':>9s} {'UNITS':>5s}  STATE")
    for path in files:
        try:
            conn = load_connection_file(path)
        except ConnectionFileError:
            typer.echo(f"{path.stem:22s} {'?':13s} {'?':>9s} {'?':>5s}  INVALID (see `connections validate`)")
            continue
        state = "paused" if conn.paused else "active"
        typer.echo(f"{conn.name:22s} {conn.erp.kind:13s} {conn.servicetitan.tenant:>9d} "
                   f"{len(conn.mapping.business_units):>5d}  {state}")


@connections_app.command("validate")
def connections_validate(name: str = typer.Argument(None, help="One connection; all when omitted.")) -> None:
    """Check connection files; each problem names the file, the field and the fix. Exit 2 if any."""
    from mappings.connection import ConnectionFileError, load_connection_file

    folder = settings.connections_dir()
    files = [folder / f"{name}.yaml"] if name else sorted(folder.glob("*.yaml")) if folder.exists() else []
    bad = 0
    for path in files:
        try:
            load_connection_file(path)
            typer.echo(f"ok       {path}")
        except ConnectionFileError as exc:
            bad += 1
            typer.secho(f"invalid  {exc}", fg=typer.colors.RED)
    if not files:
        fail(f"no connection files in {folder}", 2)
    if bad:
        raise typer.Exit(2)


@app.command()
def status() -> None:
    """Per connection: last webhook, last posting, lag, pending documents and open failures."""
    from fieldledger.inspect import connection_status
    from mappings.connection import ConnectionFileError, load_all

    try:
        names = [c.name for c in load_all()]
    except ConnectionFileError as exc:
        fail(str(exc), 2)
    store = _store()
    typer.echo(f"{'CONNECTION':22s} {'LAST EVENT (UTC)':19s} {'LAST POSTING (UTC)':19s} {'LAG':>6s} "
               f"{'PENDING':>7s} {'FAILURES':>8s}")
    worst = 0
    for name in names:
        s = connection_status(store, name)
        fmt = lambda t: t.strftime("%Y-%m-%d %H:%M:%S") if t else "-"  # noqa: E731
        lag = f"{s.lag_seconds:.0f}s" if s.lag_seconds is not None else "-"
        typer.echo(f"{name:22s} {fmt(s.last_event):19s} {fmt(s.last_posting):19s} {lag:>6s} {s.pending:>7d} "
                   f"{s.open_failures:>8d}")
        worst = max(worst, s.open_failures)
    if worst:
        raise typer.Exit(1)


@errors_app.command("list")
def errors_list(
    connection: str = typer.Option(None, "--connection", "-c", help="Only this connection."),
    error_class: str = typer.Option(None, "--class", help="Only this class (mapping, erp_validation, …)."),
) -> None:
    """Open failures: class, record, message. Exit 1 when there are any."""
    from fieldledger.inspect import failure_rows

    rows = failure_rows(_store(), connection, error_class)
    if not rows:
        typer.echo("no records need attention")
        return
    typer.echo(f"{'ID':>7s} {'CONNECTION':18s} {'RECORD':22s} {'DAY':10s} {'CLASS':15s} MESSAGE")
    for r in rows:
        record = f"{r['source_type']} {r['source_id']}"
        typer.echo(f"{r['id']:>7d} {r['connection']:18s} {record:22s} {str(r['business_date'] or '-'):10s} "
                   f"{(r['error_class'] or r['status']):15s} {(r['error_message'] or '')[:100]}")
    typer.echo(f"{len(rows)} record(s); `fieldledger errors show ID` for the full message and the fix")
    raise typer.Exit(1)


@errors_app.command("show")
def errors_show(record_id: int) -> None:
    """One record's failure in full: message, what to do, and its audit trail."""
    from posting.protocol import FIXES

    store = _store()
    rec = store.get_record(record_id)
    if rec is None:
        fail(f"no record with id {record_id}; `fieldledger errors list` shows the ids", 2)
    typer.echo(f"record      {rec.source_type} {rec.source_id} ({rec.connection}, {rec.business_date})")
    typer.echo(f"status      {rec.status} after {rec.attempts} attempt(s)")
    typer.echo(f"class       {rec.error_class or '-'}")
    typer.echo(f"message     {rec.error_message or '-'}")
    typer.echo(f"what to do  {FIXES.get(rec.error_class or '', '-')}")
    typer.echo(f"replay      fieldledger replay --connection {rec.connection} --record {rec.source_id}")
    typer.echo("audit trail:")
    for a in store.audit_trail(rec.connection, rec.source_type, rec.source_id):
        typer.echo(f"  {a['at']:%Y-%m-%d %H:%M:%S}  {a['step']:10s} {a['outcome']:16s} run {a['run_id'] or '-'}")


@app.command()
def demo(
    days: int = typer.Option(30, help="How many past days to backfill."),
    rate: float = typer.Option(20.0, help="Live mode: new or changed documents per minute per tenant."),
) -> None:
    """Run everything live (what `make demo` does) until Ctrl-C."""
    from fieldledger.demo import run_demo

    run_demo(days=days, live_rate=rate)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
