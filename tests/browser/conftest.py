"""What a person sees in the Dagster UI, driven through a real headless Chromium: a demo-like stack
(the pipeline tests' `stack`), a few partitions of both demo connections materialized (one day of
cascade-hvac with an unmapped business unit, so a check fails for a real reason), the real
`dagster-webserver` on that instance, and a browser page sized for README screenshots."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from simulators.runtime import free_port
from tests.pipeline.conftest import stack  # noqa: F401 - the fixture, reused as is

CHROMIUM = Path("/usr/bin/chromium")
# The machine may have no internet: without these, Chromium waits on refused background connections.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1600, "height": 1000}
# A person who has used the UI once: the community sign-up dialog dismissed, the navigation collapsed
# to icons (room for the pages themselves in the screenshots).
QUIET_UI = ("window.localStorage.setItem('communityNux', JSON.stringify('1'));"
            "window.localStorage.setItem('dagster-nav-collapsed', 'true');")
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def _apt_install() -> str:
    """Install Debian's chromium; returns what went wrong ('' when it is there)."""
    sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if sudo is None:
        return "not root and no sudo to run apt-get"
    if not shutil.which("apt-get"):
        return "apt-get is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log = ""
    for update_first in (False, True):
        steps = ([[*sudo, "apt-get", "update"]] if update_first else []) + \
            [[*sudo, "apt-get", "install", "-y", "chromium"]]
        for step in steps:
            done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=600)
            log = f"`{' '.join(step)}` exited {done.returncode}: {(done.stderr or done.stdout)[-800:]}"
            if done.returncode != 0:
                break
        if CHROMIUM.exists():
            return ""
    return log


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Headless Chromium at /usr/bin/chromium, installed from Debian when missing. A machine that
    cannot get it fails the test: the UI check must not silently not run."""
    if not CHROMIUM.exists():
        problem = _apt_install()
        if not CHROMIUM.exists():
            pytest.fail(f"the browser test needs Debian's chromium at {CHROMIUM} and installing it failed: "
                        f"{problem}. Install it with `apt-get install -y chromium`.", pytrace=False)
    return CHROMIUM


@dataclass
class Ui:
    url: str
    days: dict[str, list[date]]
    quarantined_day: date
    quarantined: list  # the sync store's records of that day (status quarantined)


def _materialize(stack) -> tuple[dict[str, list[date]], date]:  # noqa: F811 - the fixture's value
    """Two good days for each connection, then a third cascade-hvac day with business unit 1106 taken
    out of the mapping (a unit added in ServiceTitan that nobody mapped): its invoices quarantine and
    the `mapping_complete` check fails with the reason."""
    from fieldledger.operations import open_failures
    from fieldledger.settings import connections_dir
    from tests.pipeline.runs import run_partitions
    from tests.pipeline.source import days_holding
    from tests.pipeline.test_quarantine_and_replay import unit_block

    # days chosen by what the simulator holds: the bad day has invoices of unit 1106
    bad = days_holding(stack.info, "cascade-hvac", where=lambda raw: raw["businessUnit"]["id"] == 1106, minimum=2)[0]
    good = [d for d in days_holding(stack.info, "cascade-hvac", 3, minimum=5) if d != bad][:2]
    days = {"cascade-hvac": [*good, bad], "summit-mechanical": good}
    for connection in days:
        outcome = run_partitions(connection, good, "browser test")
        assert outcome.failed_runs == [], outcome.failed_runs
    path = connections_dir() / "cascade-hvac.yaml"
    original = path.read_text()
    block, _ = unit_block(original)
    path.write_text(original.replace(block, ""))
    try:
        assert run_partitions("cascade-hvac", [bad], "browser test").failed_runs == []
    finally:
        path.write_text(original)
    assert [r for r in open_failures(stack.store, "cascade-hvac") if r.business_date == bad], \
        "the unmapped unit should have quarantined invoices"
    return days, bad


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"dagster-webserver exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"dagster-webserver did not answer at {url} in {timeout:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def ui(stack, tmp_path_factory) -> Iterator[Ui]:  # noqa: F811 - the fixture imported above
    """The real Dagster webserver on the stack's instance, after the partitions are materialized.
    It starts first so that its code location loads while the runs execute."""
    from fieldledger.demo import Processes
    from fieldledger.instance import PROJECT_ROOT, prepare_environment

    port = free_port()
    procs = Processes(tmp_path_factory.mktemp("webserver"))  # the demo's start and stop: its code server too
    log = procs.log_dir / "dagster-webserver.log"
    proc = procs.start("dagster-webserver", [str(Path(sys.executable).parent / "dagster-webserver"), "-w",
                                             str(PROJECT_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
                       env=prepare_environment())
    try:
        days, bad = _materialize(stack)
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}/server_info", proc, log, 120)
        quarantined = [r for r in stack.store.records("cascade-hvac", statuses=["quarantined"], business_date=bad)]
        yield Ui(url, days, bad, quarantined)
    finally:
        procs.stop_all()


@pytest.fixture(scope="module")
def page(chromium, ui):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
            context.set_default_timeout(30_000)
            context.add_init_script(QUIET_UI)
            page = context.new_page()
            # Dagster raises alerts (a GraphQL request that timed out on a loaded machine, a code
            # location reloaded) as a modal dialog whose backdrop takes every click. Whenever one
            # shows, before any action, it is read into the log and closed, then the action retries.
            page.add_locator_handler(page.locator(".bp5-overlay-backdrop").first, _close_alert)
            yield page
            context.close()
        finally:
            browser.close()


def _close_alert(backdrop) -> None:
    page = backdrop.page
    dialog = page.locator(".bp5-dialog, [role=dialog]").filter(visible=True)
    text = " ".join(dialog.all_inner_texts())[:500] if dialog.count() else "(no dialog text)"
    print(f"closing a Dagster alert: {text}")
    for name in ("Close", "OK", "Dismiss", "Cancel"):
        button = dialog.get_by_role("button", name=name, exact=True)
        if button.count():
            button.first.click(force=True)
            return
    page.keyboard.press("Escape")


def screenshot(page, name: str) -> Path:
    """Write docs/images/<name>.png (the README shows these), every run."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    path = IMAGES / f"{name}.png"
    page.screenshot(path=str(path))
    return path
