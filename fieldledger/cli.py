"""The `fieldledger` command line. Each command is thin: it parses, calls the module that owns the
work, and prints (tables for lists, progress bars for long work, on stderr so stdout stays clean).

Exit codes, the same for every command:
  0  ok (and for `ping`: every check passed; for `reconcile`: everything reconciles)
  1  the work failed or found something: failed runs, records that need attention, a failed ping
     check, a reconciliation difference
  2  bad usage or configuration: unknown connection, invalid connection file, a secret missing from
     the vault, a bad option value. Nothing is run and nothing is stored.
"""

from __future__ import annotations

import getpass
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import typer

from fieldledger import settings

# platformdirs (under Dagster) warns on every command of a machine without a login session; the
# folder it falls back to is fine for fieldledger, so the warning is noise to an operator.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

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

CONNECTION_HELP = "Connection name (its file is <state>/connections/NAME.yaml)."
VERDICT_STYLES = {"PASS": "green", "FAIL": "bold red", "WARN": "yellow", "SKIP": "dim"}


def fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _console(err: bool = False):
    """A rich console on the current stdout/stderr. Piped (not a terminal), lines are not wrapped,
    so every table row stays one greppable line."""
    from rich.console import Console

    stream = sys.stderr if err else sys.stdout
    return Console(file=stream, width=None if stream.isatty() else 1000, highlight=False)


def _table(columns: Sequence[str], rows: Iterable[Sequence[object]], styles: Iterable[str | None] = ()) -> None:
    """Print rows as a borderless table (each line starts with its first cell, so it greps well).
    A column name starting with '>' is right-aligned. Cell text is never read as rich markup."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for col in columns:
        table.add_column(col.lstrip(">"), justify="right" if col.startswith(">") else "left", overflow="fold")
    style_list = list(styles)
    for i, row in enumerate(rows):
        table.add_row(*[Text(str(v)) for v in row], style=style_list[i] if i < len(style_list) else None)
    _console().print(table)


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr; yields ``advance(item, ...)`` to call once per finished item."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=_console(err=True)) as progress:
        task = progress.add_task(label, total=total)

        def advance(item: object = None, *_: object) -> None:
            progress.update(task, advance=1, description=f"{label} {item}" if item is not None else label)

        yield advance


_stores: dict[str, object] = {}


def _store():
    """One sync-store pool per process and database, closed at exit (commands may call this often)."""
    import atexit

    from resources.database import database_url
    from resources.store import SyncStore

    url = database_url("fieldledger")
    if url not in _stores:
        _stores[url] = store = SyncStore.open(url)
        atexit.register(store.close)
    return _stores[url]


def _vault(store=None):
    from resources.vault import Vault, VaultError

    try:
        return Vault(store or _store())
    except VaultError as exc:
        fail(str(exc), 2)


EXAMPLE_NAME = "example.yaml.example"  # not *.yaml: never taken for a live connection


@app.command()
def init(
    demo: bool = typer.Option(False, "--demo", help="Also set up the two demo connections against the simulators."),
    info_file: Path = typer.Option(None, help="The simulators' info file (default <state>/sim.json)."),
    receiver_url: str = typer.Option("http://127.0.0.1:8800", help="Where the webhook receiver listens."),
) -> None:
    """Set up the state folder, master key, sync store and an example connection file.

    Creates the state folder, the master key file (0600), the sync store schema and a commented
    example connection file (connections/example.yaml.example); with --demo, the demo connections,
    their secrets and webhooks."""
    from resources.vault import create_key_file

    home = settings.ensure_state_home()
    key = create_key_file()
    store = _store()
    typer.echo(f"state folder  {home}")
    typer.echo(f"master key    {key} (mode 0600; back it up: secrets cannot be read without it)")
    typer.echo(f"sync store    schema version {store.schema_version()}")
    from fieldledger.instance import ensure_pools, get_instance

    created = ensure_pools(get_instance())  # before any run: two runs creating one pool fail one
    typer.echo(f"dagster       pools {', '.join(created) or 'already set up'}")
    folder = settings.connections_dir()
    folder.mkdir(parents=True, exist_ok=True)
    example = folder / EXAMPLE_NAME
    if not example.exists():
        from fieldledger.demo_setup import TEMPLATES

        example.write_text((TEMPLATES / EXAMPLE_NAME).read_text())
        typer.echo(f"example       {example} (copy to {folder}/<name>.yaml, edit, then `fieldledger ping`)")
    if demo:
        from fieldledger.demo_setup import init_demo

        info = info_file or settings.sim_info_path()
        if not info.exists():
            fail(f"{info} does not exist: start the simulators first (`fieldledger sim up`).", 2)
        for name in init_demo(info, _vault(store), receiver_url):
            typer.echo(f"connection    {name}: file written, secrets stored, webhook registered")


def _connection(name: str):
    from mappings.connection import ConnectionFileError, load_connection

    try:
        return load_connection(name)
    except ConnectionFileError as exc:
        fail(str(exc), 2)


def _configured(name: str):
    """The connection, refused with exit 2 (before anything runs or is stored) when its file is
    invalid or a secret it names is missing from the vault: the same verdict `ping` gives."""
    from fieldledger.ping import FAIL, secrets_check

    conn = _connection(name)
    check = secrets_check(conn, _vault())
    if check.verdict == FAIL:
        fail(f"{check.detail}\nfix: {check.fix}", 2)
    return conn


@app.command()
def sync(
    connection: str = typer.Option(..., "--connection", "-c", help=CONNECTION_HELP),
    start: str = typer.Option(..., help="First business day, YYYY-MM-DD."),
    end: str = typer.Option(..., help="Last business day, YYYY-MM-DD."),
) -> None:
    """Sync every business day from START to END through Dagster.

    Submits one run per partition (connection x day) to the Dagster instance's run queue (the
    daemon starts them, one per connection at a time) and follows them with a progress bar. Ctrl-C
    takes the runs not started yet out of the queue and says which days to sync again. Exit 1 if a
    run failed or records need attention, 2 if the connection is not configured or is paused, or
    no Dagster daemon is running."""
    from datetime import date

    from fieldledger.operations import days_between, open_failures

    conn = _configured(connection)
    if conn.paused:
        fail(f"connection {connection} is paused (`paused: true` in its file), so nothing is synced for it; "
             f"set `paused: false` in {settings.connections_dir() / (connection + '.yaml')} to sync it", 2)
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        fail("--start and --end take dates as YYYY-MM-DD", 2)
    if last < first:
        fail("--end is before --start", 2)
    days = days_between(first, last)
    outcome = _submit_and_follow(connection, days, "cli-sync", f"syncing {connection}")
    failures = open_failures(_store(), connection, first, last)
    typer.echo(f"{outcome.runs} runs, {len(outcome.failed_runs)} failed runs, {len(failures)} records need attention")
    for run in outcome.failed_runs:
        typer.echo(f"  failed run: {run}")
    for rec in failures[:20]:
        typer.echo(f"  {rec.source_type} {rec.source_id} [{rec.error_class}] {rec.error_message}")
    if outcome.failed_runs or failures:
        typer.echo("See `fieldledger errors list`, fix the cause, then `fieldledger replay --failed`.")
        raise typer.Exit(1)


def _submit_and_follow(connection: str, days: list, reason: str, label: str):
    """Submit the days' runs to the queue and follow them; refuse (exit 2) without a daemon. On
    Ctrl-C the queued runs are cancelled, a run in progress finishes, and the command to sync the
    unfinished days again is printed (exit 130)."""
    from fieldledger.operations import NoDaemon, cancel_queued, follow_runs, submit_partitions

    runs: list = []
    try:
        try:
            submit_partitions(connection, days, reason, submitted=runs)
        except NoDaemon as exc:
            fail(str(exc), 2)
        with _progress(label, len(runs)) as advance:
            return follow_runs(runs, connection, on_done=advance)
    except KeyboardInterrupt:
        cancelled, running = cancel_queued(runs)
        typer.echo(f"\nstopped following: {len(cancelled)} queued run(s) cancelled, {len(running)} in progress "
                   "finish(es) on its own (see the Dagster UI, Runs)")
        finished = {day for day, _ in runs} - set(cancelled) - set(running)
        left = sorted(set(days) - finished)
        if left:
            typer.echo(f"days not synced yet: {', '.join(str(d) for d in left)}; sync them again with\n"
                       f"  fieldledger sync --connection {connection} --start {left[0]} --end {left[-1]}")
        raise typer.Exit(130) from None


@app.command()
def replay(
    connection: str = typer.Option(..., "--connection", "-c", help=CONNECTION_HELP),
    failed: bool = typer.Option(False, "--failed", help="Only records that failed or were quarantined."),
    day: str = typer.Option(None, "--date", help="Only this business day, YYYY-MM-DD."),
    record: str = typer.Option(None, "--record", help="Only this ServiceTitan record id."),
) -> None:
    """Replay failed or quarantined records, a day, or one record.

    Re-maps quarantined records with the current connection file, retries failed ones and re-runs
    their days (progress per day). Safe to repeat: nothing already posted is posted again. Exit 1
    if records still need attention."""
    import uuid
    from datetime import date

    from fieldledger.operations import open_failures, prepare_replay

    conn = _configured(connection)
    if not (failed or day or record):
        fail("say what to replay: --failed, --date YYYY-MM-DD and/or --record ID", 2)
    try:
        the_day = date.fromisoformat(day) if day else None
    except ValueError:
        fail("--date takes a date as YYYY-MM-DD", 2)
    store = _store()
    days = prepare_replay(store, conn, only_failed=failed, day=the_day, record=record,
                          run_id=f"replay-{uuid.uuid4().hex[:8]}")
    if not days:
        typer.echo("nothing to replay")
        return
    outcome = _submit_and_follow(connection, sorted(days), "replay", f"replaying {connection}")
    left = [r for r in open_failures(store, connection) if r.business_date in days]
    typer.echo(f"replayed {len(days)} day(s): {outcome.runs} runs, {len(left)} records still need attention")
    if outcome.failed_runs or left:
        raise typer.Exit(1)


@app.command()
def ping(connection: str = typer.Option(..., "--connection", "-c", help=CONNECTION_HELP)) -> None:
    """Check a connection end to end (run this first); posts nothing.

    Checks its file, its vault secrets, ServiceTitan (reachable, credentials, tenant, webhook
    secret), the ERP (reachable, credentials, pinned endpoint version, reference data) and every
    account the mapping names. Exit 0 all pass, 1 a check failed, 2 unknown or invalid connection
    file."""
    from fieldledger.ping import PASS
    from fieldledger.ping import ping as run_ping
    from resources.vault import Vault

    report = run_ping(connection, lambda: Vault(_store()))
    _table(["RESULT", "CHECK", "DETAIL", "FIX"],
           [(c.verdict, c.name, c.detail, c.fix if c.verdict != PASS else "") for c in report.checks],
           [VERDICT_STYLES.get(c.verdict) for c in report.checks])
    counts = {v: sum(c.verdict == v for c in report.checks) for v in VERDICT_STYLES}
    line = ", ".join(f"{n} {v.lower()}" for v, n in counts.items() if n)
    typer.secho(f"{connection}: {line}", fg=typer.colors.GREEN if report.exit_code == 0 else typer.colors.RED)
    raise typer.Exit(report.exit_code)


@app.command()
def reconcile(
    connection: str = typer.Option(..., "--connection", "-c", help=CONNECTION_HELP),
    month: str = typer.Option(..., "--month", help="The month to reconcile, YYYY-MM (days up to today)."),
    out: Path = typer.Option(None, "--out", help="Folder for the CSV and PNG (default <state>/reports)."),
    only_differences: bool = typer.Option(False, "--only-differences", help="List only the rows that differ."),
    day: list[str] = typer.Option(None, "--day", help="Only this day of the month, YYYY-MM-DD (repeatable)."),
) -> None:
    """ServiceTitan vs ERP totals per business unit and day of a month, to the cent.

    ServiceTitan's side is read from ServiceTitan's API (not from what fieldledger extracted), so a
    day that was never synced shows what the ERP lacks.

    Writes reconcile-CONNECTION-MONTH.csv and .png (per day: both totals and the differences).
    Exit 0 when everything reconciles, 1 when something differs."""
    from datetime import date

    from fieldledger.reconcile_report import MonthError, month_days, reconcile_month, write_reports
    from posting.reconcile import from_servicetitan
    from posting.registry import open_adapter, open_servicetitan
    from resources.http import RemoteError

    conn = _configured(connection)
    try:
        only = [date.fromisoformat(d) for d in day or []]
    except ValueError:
        fail(f"--day takes a date as YYYY-MM-DD, got {', '.join(day)}", 2)
    try:
        days = month_days(month, conn.start_date, only=only)
    except MonthError as exc:
        fail(str(exc), 2)
    store = _store()
    try:
        vault = _vault(store)
        adapter = open_adapter(conn, vault)
        try:
            # ServiceTitan's side is read from ServiceTitan, not from what fieldledger extracted
            with open_servicetitan(conn, vault) as client, _progress(f"reconciling {connection}", len(days)) as advance:
                report = reconcile_month(store, conn, month, adapter, on_day=advance, source=from_servicetitan(client),
                                         only=only)
        finally:
            adapter.close()
    except RemoteError as exc:
        fail(f"reconciliation of {connection} {month} stopped: {exc}", 1)
    shown = report.differing if only_differences else report.lines
    if shown:
        _table(["DAY", "BUSINESS UNIT", "TYPE", ">SERVICETITAN", ">ERP", ">DIFFERENCE"],
               [(line.day, line.business_unit, line.document_type, line.servicetitan, line.erp, line.difference)
                for line in shown],
               ["bold red" if line.difference else None for line in shown])
    csv_path, png_path = write_reports(report, out or settings.state_home() / "reports")
    typer.secho(report.summary(), fg=typer.colors.RED if report.differing else typer.colors.GREEN)
    typer.echo(f"wrote {csv_path}\nwrote {png_path}")
    if report.differing:
        raise typer.Exit(1)


# --- secrets ---------------------------------------------------------------------------------


@secrets_app.command("set")
def secrets_set(
    connection: str = typer.Argument(..., help=CONNECTION_HELP),
    name: str = typer.Argument(..., help="Secret name, as the connection file names it (e.g. st_client_secret)."),
) -> None:
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
    _table(["CONNECTION", "NAME", "LAST CHANGED (UTC)"],
           [(s.connection, s.name, f"{s.updated_at:%Y-%m-%d %H:%M:%S}") for s in rows])


@secrets_app.command("rotate-key")
def secrets_rotate_key() -> None:
    """Make a new master key and re-encrypt every secret with it."""
    from resources.vault import VaultError

    try:
        count = _vault().rotate_key()
    except VaultError as exc:
        fail(str(exc), 2)
    typer.echo(f"re-encrypted {count} secrets with the new master key")


@secrets_app.command("rotate-webhook")
def secrets_rotate_webhook(
    connection: str = typer.Argument(..., help=CONNECTION_HELP),
    finish: bool = typer.Option(False, "--finish", help="End the rotation: the former key or token stops working."),
) -> None:
    """Rotate what authenticates the connection's webhooks; the former value stays valid until --finish.

    Mode path_token (servicetitan.webhook.auth): makes a new 256-bit token and prints the callback
    URL path to register in the ServiceTitan developer portal. Mode hmac: reads the new key (set it in
    the developer portal too) from stdin or a hidden prompt. Once ServiceTitan uses the new one, run
    again with --finish."""
    from receiver.signature import new_token

    conn = _connection(connection)
    token_mode = conn.servicetitan.webhook.auth == "path_token"
    names = conn.servicetitan.secrets
    name = names.get("webhook_token", "st_webhook_token") if token_mode else names.get("webhook_secret",
                                                                                         "st_webhook_secret")
    vault = _vault()
    if finish:
        done = vault.finish_rotation(connection, name)
        typer.echo(f"rotation of {name} for {connection} finished: only the new value is valid" if done else
                   f"no rotation of {name} for {connection} was in progress")
        return
    if token_mode:
        value = new_token()
    elif sys.stdin.isatty():
        value = getpass.getpass(f"new webhook key ({name}) for {connection}: ")
    else:
        value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        fail("No value given: pipe the new key on stdin or type it at the prompt.", 2)
    kept = vault.rotate(connection, name, value)
    if token_mode:
        # shown once, to this terminal only: ServiceTitan needs it in the callback URL
        typer.echo(f"new callback URL: <receiver>/webhooks/servicetitan/{connection}/{value}")
        typer.echo("register it in the ServiceTitan developer portal; keep it secret, it authenticates deliveries")
    else:
        typer.echo(f"stored the new {name} for {connection}")
    typer.echo(f"the former value stays valid until `fieldledger secrets rotate-webhook {connection} --finish`"
               if kept else "there was no former value")


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
    time_factor: float = typer.Option(1.0, help="Simulated seconds per wall second (license windows, token lifetimes)."),
    option: list[str] = typer.Option(None, "--option", "-o",
                                     help="Simulator setting KEY=VALUE, repeatable (e.g. tier=trial)."),
) -> None:
    """Run the simulators in the foreground until Ctrl-C."""
    from simulators.faults import parse_profile
    from simulators.launcher import parse_options, run_foreground
    from simulators.runtime import SimOptions

    try:
        fault_profile = parse_profile(profile)
        extra = parse_options(option)
    except ValueError as exc:
        fail(str(exc), 2)
    if time_factor <= 0:
        fail("--time-factor must be above 0", 2)
    options = SimOptions(seed=seed, profile=fault_profile, live=live, live_rate_per_minute=rate, options=extra,
                         time_factor=time_factor)
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
    """The connection files in the state folder: ERP, tenant, mapped units, active or paused."""
    from mappings.connection import ConnectionFileError, load_connection_file

    folder = settings.connections_dir()
    files = sorted(folder.glob("*.yaml")) if folder.exists() else []
    if not files:
        typer.echo(f"no connection files in {folder}; run `fieldledger init` (or `init --demo`)")
        return
    rows, styles = [], []
    for path in files:
        try:
            conn = load_connection_file(path)
        except ConnectionFileError:
            rows.append((path.stem, "?", "?", "?", "INVALID (see `connections validate`)"))
            styles.append("red")
            continue
        rows.append((conn.name, conn.erp.kind, conn.servicetitan.tenant, len(conn.mapping.business_units),
                     "paused" if conn.paused else "active"))
        styles.append(None)
    _table(["NAME", "ERP", ">TENANT", ">UNITS", "STATE"], rows, styles)


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
    """Per connection: last webhook, last posting, lag, pending documents, days changed in
    ServiceTitan that no run has read yet (the retry sensor asks for them), and open failures.

    Exit 1 when any connection has open failures."""
    from fieldledger.inspect import connection_status
    from mappings.connection import connection_names, load_each

    _, unusable = load_each()
    store = _store()
    rows, styles = [], []
    worst = 0
    for name in connection_names():
        if name in unusable:  # its own row says so; the other connections are shown as usual
            rows.append((name, "file invalid: not syncing", "-", "-", "-", "-", "-"))
            styles.append("red")
            typer.secho(f"{name}: {unusable[name]}", fg=typer.colors.RED, err=True)
            worst = max(worst, 1)
            continue
        s = connection_status(store, name)
        fmt = lambda t: t.strftime("%Y-%m-%d %H:%M:%S") if t else "-"  # noqa: E731
        lag = f"{s.lag_seconds:.0f}s" if s.lag_seconds is not None else "-"
        unread = len(store.open_demand(name))  # days said to have changed that no run has read since
        rows.append((name, fmt(s.last_event), fmt(s.last_posting), lag, s.pending, unread, s.open_failures))
        styles.append("red" if s.open_failures else None)
        worst = max(worst, s.open_failures)
    _table(["CONNECTION", "LAST EVENT (UTC)", "LAST POSTING (UTC)", ">LAG", ">PENDING", ">UNREAD DAYS", ">FAILURES"],
           rows, styles)
    if worst:
        raise typer.Exit(1)


@errors_app.command("list")
def errors_list(
    connection: str = typer.Option(None, "--connection", "-c", help="Only this connection."),
    error_class: str = typer.Option(None, "--class", help="Only this class (mapping, erp_validation, …)."),
) -> None:
    """Open failures: class, record, message. Exit 1 when there are any."""
    from fieldledger.inspect import failure_rows
    from posting.protocol import FIXES

    if error_class and error_class not in FIXES:
        fail(f"--class {error_class!r} is not an error class; use one of {', '.join(sorted(FIXES))}", 2)

    rows = failure_rows(_store(), connection, error_class)
    if not rows:
        typer.echo("no records need attention")
        return
    _table([">ID", "CONNECTION", "RECORD", "DAY", "CLASS", "MESSAGE"],
           [(r["id"], r["connection"], f"{r['source_type']} {r['source_id']}", r["business_date"] or "-",
             r["error_class"] or r["status"], (r["error_message"] or "")[:100]) for r in rows])
    typer.echo(f"{len(rows)} record(s); `fieldledger errors show ID` for the full message and the fix")
    raise typer.Exit(1)


@errors_app.command("show")
def errors_show(record_id: int = typer.Argument(..., help="The record id `fieldledger errors list` shows.")) -> None:
    """One record's failure in full: message, what to do, and its audit trail."""
    from posting.protocol import fix_for

    store = _store()
    rec = store.get_record(record_id)
    if rec is None:
        fail(f"no record with id {record_id}; `fieldledger errors list` shows the ids", 2)
    typer.echo(f"record      {rec.source_type} {rec.source_id} ({rec.connection}, {rec.business_date})")
    typer.echo(f"status      {rec.status} after {rec.attempts} attempt(s)")
    typer.echo(f"class       {rec.error_class or '-'}")
    typer.echo(f"message     {rec.error_message or '-'}")
    typer.echo(f"what to do  {fix_for(rec.error_class, rec.id) or '-'}")
    typer.echo(f"replay      fieldledger replay --connection {rec.connection} --record {rec.source_id}")
    typer.echo("audit trail:")
    for a in store.audit_trail(rec.connection, rec.source_type, rec.source_id):
        typer.echo(f"  {a['at']:%Y-%m-%d %H:%M:%S}  {a['step']:10s} {a['outcome']:16s} run {a['run_id'] or '-'}")


@errors_app.command("resolve")
def errors_resolve(
    record_id: int = typer.Argument(..., help="The id of a needs_review (conflict) record."),
    note: str = typer.Option(..., "--note", help="What was done in the ERP, e.g. 'credit memo CM00042'."),
) -> None:
    """Close a conflict after adjusting the released document in the ERP by hand; it is not posted again."""
    from fieldledger.operations import NotReviewable, mark_reviewed

    try:
        rec = mark_reviewed(_store(), record_id, note, getpass.getuser())
    except NotReviewable as exc:
        fail(str(exc), 2)
    typer.echo(f"{rec.source_type} {rec.source_id} marked reviewed against {rec.target_key or '-'}")


@app.command()
def demo(
    days: int = typer.Option(30, help="How many past days to backfill."),
    rate: float = typer.Option(20.0, help="Live mode: new or changed documents per minute per tenant."),
    fresh: bool = typer.Option(False, "--fresh", help="Start over: fresh simulators, the sync store's books cleared."),
) -> None:
    """Run everything live (what `make demo` does) until Ctrl-C."""
    from fieldledger.demo import run_demo

    run_demo(days=days, live_rate=rate, fresh=fresh)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
