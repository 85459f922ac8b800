"""`fieldledger ping` and the configuration bad-input catalogue: each mistake a customer can make in
a connection file or the vault, the exact message they see, the exit code, and that nothing is
stored. Real simulators over sockets, the real sync store."""

from __future__ import annotations

import re

import httpx
import pytest

from fieldledger.settings import connections_dir
from resources.acumatica import PASSWORD_GRANT_FIX as ACUMATICA_PASSWORD_GRANT_FIX
from resources.acumatica import PASSWORD_GRANT_HELP as ACUMATICA_PASSWORD_GRANT_HELP
from tests.operator.conftest import connection_variant, run_cli, verdicts

pytestmark = pytest.mark.slow
ALL_CHECKS = 12


def seats_in_use(stack) -> int:
    return httpx.get(stack.info["acumatica"]["base_url"] + "/_sim/seats").json()["in_use"]


def secret_values(stack) -> list[str]:
    values = [stack.info[erp][k] for erp in ("acumatica", "vantagepoint") for k in ("client_secret", "password")]
    for tenant in stack.info["servicetitan"]["tenants"].values():
        values += [tenant["client_secret"], tenant["app_key"], tenant["webhook_secret"]]
    return [str(v) for v in values]


def nothing_stored(stack, connection: str) -> bool:
    with stack.store.transaction() as conn:
        records = conn.execute("SELECT count(*) AS n FROM records WHERE connection = %s", (connection,)).fetchone()
        audit = conn.execute("SELECT count(*) AS n FROM audit WHERE connection = %s", (connection,)).fetchone()
    return records["n"] == 0 and audit["n"] == 0


@pytest.mark.parametrize("connection", ["cascade-hvac", "summit-mechanical"])
def test_ping_passes_on_the_demo_connections(stack, connection):
    before = seats_in_use(stack)
    result = run_cli("ping", "--connection", connection)
    assert result.exit_code == 0, result.stdout
    found = verdicts(result.stdout)
    assert len(found) == ALL_CHECKS, result.stdout
    assert all(line.startswith("PASS") for line in found.values()), result.stdout
    assert f"{connection}: {ALL_CHECKS} pass" in result.stdout
    assert "tenant 100000" in found["ServiceTitan tenant"]
    assert re.search(r"\d+ GL accounts", found["ERP reference data"])
    if connection == "cascade-hvac":
        assert "Default/24.200.001 is served" in found["ERP endpoint version"]
        assert "subaccounts" in found["ERP reference data"] and "branches" in found["ERP reference data"]
    else:
        assert "projects" in found["ERP reference data"] and "organizations" in found["ERP reference data"]
    assert seats_in_use(stack) == before  # the sign-in's API-user seat was released
    assert not any(v in result.stdout + result.stderr for v in secret_values(stack))


def test_missing_secret_fails_ping_and_refuses_sync_storing_nothing(stack):
    name = "ping-nosecret"
    with connection_variant("cascade-hvac", name, skip_secrets=("st_client_secret",)):
        detail = (f"connection {name} has no secret named st_client_secret (servicetitan.secrets.client_secret) "
                  "in the vault")
        fix = f"fieldledger secrets set {name} st_client_secret"
        result = run_cli("ping", "--connection", name)
        assert result.exit_code == 1
        found = verdicts(result.stdout)
        assert found["vault secrets"].startswith("FAIL")
        assert detail in found["vault secrets"] and fix in found["vault secrets"]
        assert found["ServiceTitan credentials"].startswith("SKIP")
        assert "secret st_client_secret missing" in found["ServiceTitan credentials"]
        assert found["mapping names exist in the ERP"].startswith("PASS")  # the ERP side is independent

        synced = run_cli("sync", "--connection", name, "--start", "2026-10-01", "--end", "2026-10-02")
        assert synced.exit_code == 2
        assert detail in synced.stderr and f"fix: {fix}" in synced.stderr
        assert nothing_stored(stack, name)


def test_wrong_endpoint_version_names_pinned_and_served(stack):
    name = "ping-version"
    base = stack.info["acumatica"]["base_url"]
    with connection_variant("cascade-hvac", name, lambda t: t.replace('version: "24.200.001"', 'version: "25.100.001"')):
        result = run_cli("ping", "--connection", name)
    assert result.exit_code == 1
    found = verdicts(result.stdout)
    line = found["ERP endpoint version"]
    assert line.startswith("FAIL")
    assert (f"The connection pins Acumatica endpoint Default/25.100.001, but {base} serves only: "
            "Default/24.200.001, Default/23.200.001. Set the connection's endpoint version to one of these.") in line
    assert f"set erp.version in {connections_dir() / (name + '.yaml')} to a served version" in line
    assert found["ERP credentials"].startswith("PASS")
    assert found["ERP reference data"].startswith("SKIP") and "endpoint version not served" in found["ERP reference data"]


def test_acumatica_password_grant_disabled(stack):
    base = stack.info["acumatica"]["base_url"]
    httpx.put(base + "/_sim/password_grant", json={"enabled": False}).raise_for_status()
    try:
        result = run_cli("ping", "--connection", "cascade-hvac")
    finally:
        httpx.put(base + "/_sim/password_grant", json={"enabled": True}).raise_for_status()
    assert result.exit_code == 1
    found = verdicts(result.stdout)
    line = found["ERP credentials"]
    assert line.startswith("FAIL")
    assert ACUMATICA_PASSWORD_GRANT_HELP in line and ACUMATICA_PASSWORD_GRANT_FIX in line
    assert "Resource Owner Password Credentials" in ACUMATICA_PASSWORD_GRANT_FIX
    assert found["ERP endpoint version"].startswith("PASS")  # listed anonymously: independent of the sign-in
    assert found["ERP reference data"].startswith("SKIP")
    assert found["ServiceTitan tenant"].startswith("PASS")


def test_bad_yaml_names_file_line_and_problem(stack):
    name = "ping-badyaml"
    path = connections_dir() / f"{name}.yaml"
    path.write_text(f"name: {name}\nstart_date: \"2026-01-01\"\nservicetitan:\n  tenant: 1000001\n"
                    "   base_url: http://127.0.0.1:9\n")
    try:
        message = f"{path}: not valid YAML at line 5, column 12: mapping values are not allowed here"
        validated = run_cli("connections", "validate", name)
        assert validated.exit_code == 2 and message in validated.stdout
        pinged = run_cli("ping", "--connection", name)
        assert pinged.exit_code == 2
        assert verdicts(pinged.stdout)["connection file"].startswith("FAIL") and message in pinged.stdout
        assert f"fieldledger connections validate {name}" in pinged.stdout
        synced = run_cli("sync", "--connection", name, "--start", "2026-10-01", "--end", "2026-10-01")
        assert synced.exit_code == 2 and message in synced.stderr
        assert nothing_stored(stack, name)
    finally:
        path.unlink()


def test_unknown_connection(stack):
    path = connections_dir() / "no-such-one.yaml"
    result = run_cli("ping", "--connection", "no-such-one")
    assert result.exit_code == 2
    line = verdicts(result.stdout)["connection file"]
    assert f"{path}: no such connection file" in line
    assert "cascade-hvac, summit-mechanical" in line  # the connections that do exist
    for args in (("sync", "--start", "2026-10-01", "--end", "2026-10-01"), ("replay", "--failed"),
                 ("reconcile", "--month", "2026-10")):
        other = run_cli(args[0], "--connection", "no-such-one", *args[1:])
        assert other.exit_code == 2 and f"{path}: no such connection file" in other.stderr, args


def test_mapped_account_missing_from_the_erp(stack):
    name = "ping-accounts"

    def edit(text: str) -> str:
        text = text.replace('Material: "41000"', 'Material: "99999"')
        return text.replace("subaccount: SEA-PLM", "subaccount: SEA-XXX")

    with connection_variant("cascade-hvac", name, edit):
        result = run_cli("ping", "--connection", name)
    assert result.exit_code == 1
    line = verdicts(result.stdout)["mapping names exist in the ERP"]
    assert line.startswith("FAIL")
    assert ("not found (or inactive) in Acumatica: account 99999 (mapping.accounts.revenue_by_item_type.Material); "
            "subaccount SEA-XXX (mapping.business_units.1102.subaccount)") in line
    assert "account 41000" not in line  # still named by other rules, and it exists


def test_init_writes_an_example_that_validates_once_copied(stack):
    example = connections_dir() / "example.yaml.example"
    example.unlink(missing_ok=True)
    result = run_cli("init")
    assert result.exit_code == 0, result.stdout
    assert example.exists() and f"example       {example}" in result.stdout
    copy = connections_dir() / "acme-test.yaml"
    copy.write_text(example.read_text().replace("name: my-connection", "name: acme-test"))
    try:
        assert run_cli("connections", "validate", "acme-test").exit_code == 0
        listed = run_cli("connections", "list")
        assert listed.exit_code == 0
        assert re.search(r"^acme-test +acumatica +1234567 +2 +paused", listed.stdout, re.MULTILINE), listed.stdout
        assert "example" not in listed.stdout  # the .example file is never taken for a connection
    finally:
        copy.unlink()


def test_vantagepoint_password_grant_disabled(stack):
    from resources.vantagepoint import PASSWORD_GRANT_HELP

    control = httpx.URL(stack.info["vantagepoint"]["base_url"]).copy_with(path="/_sim/password_grant")
    httpx.put(control, json={"enabled": False}).raise_for_status()
    try:
        result = run_cli("ping", "--connection", "summit-mechanical")
    finally:
        httpx.put(control, json={"enabled": True}).raise_for_status()
    assert result.exit_code == 1
    found = verdicts(result.stdout)
    assert found["ERP credentials"].startswith("FAIL") and PASSWORD_GRANT_HELP in found["ERP credentials"]
    assert found["ERP endpoint version"].startswith("SKIP") and found["ERP reference data"].startswith("SKIP")
