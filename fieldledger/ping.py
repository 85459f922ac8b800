"""`fieldledger ping`: the first command a new customer runs. It checks one connection end to end
without posting anything: the connection file, the vault secrets it names, ServiceTitan (reachable,
credentials, tenant, business units, webhook secret), the ERP (reachable, credentials, pinned endpoint
version, reference data) and that everything the mapping names exists in the ERP.

Each check gives one verdict (PASS / FAIL / WARN, or SKIP with the reason when a check it depends on
failed) with a detail and, on failure, the fix. Clients are built with short retries and no seat
waiting, so a broken connection answers in seconds; an Acumatica seat taken by the check is released
before ping returns. Secret values are never shown: only their names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fieldledger.settings import connections_dir
from mappings.connection import Connection, ConnectionFileError, load_connection_file
from posting.adapter import ReferenceData
from resources.acumatica import PASSWORD_GRANT_FIX, PASSWORD_GRANT_HELP
from resources.http import HttpClient, RemoteError, RetryPolicy, TransientError
from resources.vault import Vault, VaultError

PASS, FAIL, WARN, SKIP = "PASS", "FAIL", "WARN", "SKIP"
# a ping must answer quickly: one retry, short waits
PING_RETRY = RetryPolicy(max_attempts=2, base_delay=0.2, max_delay=1.0)
WEBHOOK_SECRET_LENGTH = (32, 64)  # ServiceTitan accepts HMAC keys of 32-64 characters
WEBHOOK_TOKEN = "st_webhook_token"  # the path token's default vault name (receiver/connections.py)


@dataclass(frozen=True)
class Check:
    name: str
    verdict: str
    detail: str
    fix: str = ""


@dataclass
class PingReport:
    connection: str
    checks: list[Check] = field(default_factory=list)
    bad_config: bool = False  # the connection file itself is unusable: bad usage, exit 2

    @property
    def exit_code(self) -> int:
        if self.bad_config:
            return 2
        return 1 if any(c.verdict == FAIL for c in self.checks) else 0


# --- pieces the CLI shares -------------------------------------------------------------------


def named_secrets(conn: Connection) -> dict[str, str]:
    """Rule in the connection file -> vault secret name, e.g. servicetitan.secrets.client_id -> st_client_id."""
    out = {f"servicetitan.secrets.{k}": v for k, v in conn.servicetitan.secrets.items()}
    out.update({f"erp.secrets.{k}": v for k, v in conn.erp.secrets.items()})
    if conn.servicetitan.webhook.auth == "path_token":  # the URL's token, not a signing key, authenticates
        out.pop("servicetitan.secrets.webhook_secret", None)
        out["servicetitan.secrets.webhook_token"] = conn.servicetitan.secrets.get("webhook_token", WEBHOOK_TOKEN)
    return out


def secrets_check(conn: Connection, vault: Vault) -> Check:
    """Every secret the file names is in the vault (checked by name; values are not read)."""
    stored = {s.name for s in vault.list(conn.name)}
    missing = [(rule, name) for rule, name in named_secrets(conn).items() if name not in stored]
    if not missing:
        return Check("vault secrets", PASS, f"all {len(named_secrets(conn))} secrets the file names are stored")
    names = ", ".join(f"{name} ({rule})" for rule, name in missing)
    fix = "; ".join(f"fieldledger secrets set {conn.name} {name}" for _, name in missing)
    return Check("vault secrets", FAIL, f"connection {conn.name} has no secret named {names} in the vault", fix)


def load_checked(name: str, folder: Path | None = None) -> tuple[Connection | None, Check]:
    folder = folder or connections_dir()
    path = folder / f"{name}.yaml"
    try:
        return load_connection_file(path), Check("connection file", PASS, str(path))
    except ConnectionFileError as exc:
        known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.exists() else []
        fix = (f"create {path} (copy {folder}/example.yaml.example) or use one of: {', '.join(known) or 'none yet'}"
               if not path.exists() else f"edit {path} as the message says, then "
               f"`fieldledger connections validate {name}`")
        return None, Check("connection file", FAIL, str(exc), fix)


def probe(system: str, url: str) -> str | None:
    """None when anything answers HTTP at ``url`` (any status), else why nothing did."""
    with HttpClient(system, url, timeout=5.0, retry=RetryPolicy(max_attempts=1)) as http:
        try:
            http.get("", use_auth=False, ok_statuses=range(100, 600))
        except TransientError as exc:
            return str(exc)
    return None


def mapping_references(conn: Connection, dimensions: tuple[str, ...]) -> dict[tuple[str, str], list[str]]:
    """(dimension, value) -> the mapping rules naming it: every GL account, and each business unit's
    branch / subaccount / project / organization where the ERP uses that dimension."""
    refs: dict[tuple[str, str], list[str]] = {}

    def add(dimension: str, value: str | None, rule: str) -> None:
        if value:
            refs.setdefault((dimension, value), []).append(rule)

    accounts = conn.mapping.accounts
    for name in ("ar", "tax", "ap", "inventory", "freight", "default_revenue", "default_cash"):
        add("account", getattr(accounts, name), f"mapping.accounts.{name}")
    for table in ("revenue_by_item_type", "revenue_by_gl_account", "cash_by_payment_type"):
        for key, value in getattr(accounts, table).items():
            add("account", value, f"mapping.accounts.{table}.{key}")
    for unit_id, unit in conn.mapping.business_units.items():
        add("account", unit.revenue_account, f"mapping.business_units.{unit_id}.revenue_account")
        for dimension in dimensions:
            add(dimension, getattr(unit, dimension), f"mapping.business_units.{unit_id}.{dimension}")
    return refs


def missing_references(conn: Connection, ref: ReferenceData, dimensions: tuple[str, ...]) -> list[str]:
    known = {"account": ref.accounts, "branch": ref.branches, "subaccount": ref.subaccounts,
             "project": ref.projects, "organization": ref.organizations}
    return [f"{dimension} {value} ({', '.join(rules)})"
            for (dimension, value), rules in mapping_references(conn, dimensions).items()
            if value not in known[dimension]]


def _failed(exc: Exception) -> str:
    return str(exc).strip() or type(exc).__name__


# --- ServiceTitan ----------------------------------------------------------------------------


def servicetitan_checks(conn: Connection, secrets: dict[str, str]) -> list[Check]:
    from resources.servicetitan import ServiceTitanClient

    st = conn.servicetitan
    names = st.secrets
    checks: list[Check] = []
    down = [f"{url}: {why}" for url in dict.fromkeys((st.auth_url, st.base_url)) if (why := probe("servicetitan", url))]
    if down:
        checks.append(Check("ServiceTitan reachable", FAIL, "; ".join(down),
                            "check servicetitan.base_url / auth_url in the connection file and the network path"))
    else:
        checks.append(Check("ServiceTitan reachable", PASS, f"{' and '.join(dict.fromkeys((st.auth_url, st.base_url)))} "
                                                            "answer"))
    lacking = [names.get(k, k) for k in ("client_id", "client_secret", "app_key") if names.get(k) not in secrets]
    reason = ("ServiceTitan is not reachable" if down else
              f"secret {', '.join(lacking)} missing (see vault secrets)" if lacking else None)
    if reason:
        return checks + [Check(n, SKIP, reason) for n in ("ServiceTitan credentials", "ServiceTitan tenant",
                                                           "ServiceTitan business units")] + [_webhook_check(conn,
                                                                                                             secrets)]
    client = ServiceTitanClient(st.base_url, st.auth_url, st.tenant, secrets[names["client_id"]],
                                secrets[names["client_secret"]], secrets[names["app_key"]],
                                rate_per_second=st.rate_per_second, retry=PING_RETRY)
    try:
        try:
            client.auth.headers()
            checks.append(Check("ServiceTitan credentials", PASS, "client-credentials token issued"))
        except RemoteError as exc:
            checks.append(Check("ServiceTitan credentials", FAIL, _failed(exc),
                                f"fieldledger secrets set {conn.name} {names['client_id']} (and "
                                f"{names['client_secret']}) with the values from the ServiceTitan developer portal"))
            return checks + [Check(n, SKIP, "credentials refused") for n in ("ServiceTitan tenant",
                                                                              "ServiceTitan business units")] + [
                _webhook_check(conn, secrets)]
        try:
            units = list(client.business_units())
        except RemoteError as exc:
            checks.append(Check("ServiceTitan tenant", FAIL, f"tenant {st.tenant}: {_failed(exc)}",
                                f"check servicetitan.tenant in the connection file and that the app (app key "
                                f"{names['app_key']}) is connected to tenant {st.tenant}"))
            return checks + [Check("ServiceTitan business units", SKIP, "tenant not readable"),
                             _webhook_check(conn, secrets)]
        checks.append(Check("ServiceTitan tenant", PASS, f"tenant {st.tenant} readable ({len(units)} business units)"))
        checks.append(_units_check(conn, units))
    finally:
        client.close()
    return checks + [_webhook_check(conn, secrets)]


def _units_check(conn: Connection, units: list) -> Check:
    mapped = conn.mapping.business_units
    unmapped = [f"{u.id} {u.name}" for u in units if u.active is not False and u.id not in mapped]
    unknown = sorted(set(mapped) - {u.id for u in units})
    if not unmapped and not unknown:
        return Check("ServiceTitan business units", PASS, f"all {len(mapped)} mapped units exist; every active unit "
                                                          "is mapped")
    parts = []
    if unmapped:
        parts.append(f"active units without a mapping (their documents will be quarantined): {', '.join(unmapped)}")
    if unknown:
        parts.append(f"mapped units ServiceTitan does not have: {', '.join(map(str, unknown))}")
    return Check("ServiceTitan business units", WARN, "; ".join(parts),
                 "add the units under mapping.business_units (or remove the unknown ones)")


def _webhook_check(conn: Connection, secrets: dict[str, str]) -> Check:
    """Which authentication mode the connection's webhooks use, and whether its secret is usable."""
    if conn.servicetitan.webhook.auth == "path_token":
        return _token_check(conn, secrets)
    name = conn.servicetitan.secrets.get("webhook_secret")
    if not name:
        return Check("ServiceTitan webhook", WARN, "no webhook secret named: changes arrive only with the catch-up "
                                                   "schedule", "name servicetitan.secrets.webhook_secret and store it")
    if name not in secrets:
        return Check("ServiceTitan webhook", SKIP, f"mode hmac: secret {name} missing (see vault secrets)")
    low, high = WEBHOOK_SECRET_LENGTH
    length = len(secrets[name])
    hook = conn.servicetitan.webhook
    if not low <= length <= high:
        return Check("ServiceTitan webhook", WARN, f"mode hmac: signing secret {name} has {length} characters; "
                                                   f"ServiceTitan accepts {low}-{high}",
                     f"generate a {low}-{high} character key, set it in the developer portal and with "
                     f"`fieldledger secrets set {conn.name} {name}`")
    headers = hook.signature_header if isinstance(hook.signature_header, list) else [hook.signature_header]
    return Check("ServiceTitan webhook", PASS,
                 f"mode hmac: signing secret {name} stored ({length} characters), signature in "
                 f"{' or '.join(headers)} ({hook.signature_encoding}); the callback URL "
                 f"<receiver>/webhooks/servicetitan/{conn.name} and this key are set in the ServiceTitan developer "
                 "portal (it has no API to read them back)")


def _token_check(conn: Connection, secrets: dict[str, str]) -> Check:
    """Path-token mode works, but is weaker than a signature: always a warning (never the token)."""
    from receiver.signature import TOKEN_MIN_BITS, token_bits

    name = conn.servicetitan.secrets.get("webhook_token", WEBHOOK_TOKEN)
    make = f"`fieldledger secrets rotate-webhook {conn.name}` (prints the callback URL to register)"
    if name not in secrets:
        return Check("ServiceTitan webhook", FAIL, f"mode path_token: no token {name} stored; the receiver answers "
                                                   "503 to every delivery", f"make one with {make}")
    bits = token_bits(secrets[name])
    if bits < TOKEN_MIN_BITS:
        return Check("ServiceTitan webhook", FAIL, f"mode path_token: token {name} carries {bits} bits, under "
                                                   f"{TOKEN_MIN_BITS}; the receiver refuses to use it",
                     f"replace it with {make}")
    return Check("ServiceTitan webhook", WARN,
                 f"mode path_token: deliveries are authenticated only by the secret token {name} in the callback URL "
                 f"<receiver>/webhooks/servicetitan/{conn.name}/<token> ({bits} bits); bodies are not signed and "
                 "anyone who sees the URL can post events",
                 "prefer an HMAC key: set one for the app in the ServiceTitan developer portal, store it with "
                 f"`fieldledger secrets set {conn.name} st_webhook_secret` and set servicetitan.webhook.auth: hmac; "
                 f"otherwise rotate the token now and then with {make}")


# --- the ERP ---------------------------------------------------------------------------------


@dataclass
class _Erp:
    """How ping talks to one ERP kind: build the client, check the pinned version, wrap the adapter."""

    label: str
    build: Callable[[Connection, dict[str, str]], object]
    version: Callable[[Connection, object], Check]
    adapter: Callable[[Connection, object], object]
    credentials_fix: Callable[[Connection, RemoteError], str]
    credentials_detail: Callable[[RemoteError], str]
    versions_without_sign_in: bool = False  # Acumatica lists its endpoint versions anonymously
    sign_in_note: str = ""


def _acumatica_build(conn: Connection, creds: dict[str, str]):
    from resources.acumatica import AcumaticaClient

    erp = conn.erp
    return AcumaticaClient(erp.base_url, erp.tenant or "", endpoint=erp.endpoint, version=erp.version,
                           max_concurrency=erp.max_concurrency, retry=PING_RETRY, seat_wait_seconds=0, timeout=30,
                           **creds)


def _acumatica_version(conn: Connection, client) -> Check:
    from resources.acumatica import EndpointVersionError

    try:
        client.ensure_version()
    except EndpointVersionError as exc:
        return Check("ERP endpoint version", FAIL, str(exc),
                     f"set erp.version in {connections_dir() / (conn.name + '.yaml')} to a served version")
    return Check("ERP endpoint version", PASS, f"{conn.erp.endpoint}/{conn.erp.version} is served")


def _acumatica_adapter(conn: Connection, client):
    from posting.acumatica import AcumaticaAdapter

    return AcumaticaAdapter(client)


def _acumatica_detail(exc: RemoteError) -> str:
    text = f"{exc} {exc.body_excerpt}"
    if "unauthorized_client" in text:
        return PASSWORD_GRANT_HELP
    return _failed(exc)


def _acumatica_fix(conn: Connection, exc: RemoteError) -> str:
    text = f"{exc} {exc.body_excerpt}"
    names = conn.erp.secrets
    if "unauthorized_client" in text:
        return PASSWORD_GRANT_FIX
    if "invalid_client" in text:
        return f"fieldledger secrets set {conn.name} {names['client_id']} (and {names['client_secret']}) from SM303010"
    if "API Login Limit" in text:
        return "sign other API sessions out (SM604000) or wait 10 minutes for idle ones to expire, then ping again"
    return f"fieldledger secrets set {conn.name} {names['username']} (and {names['password']}) for the API user"


def _vantagepoint_build(conn: Connection, creds: dict[str, str]):
    from resources.vantagepoint import VantagepointClient

    return VantagepointClient(conn.erp.base_url, conn.erp.database, retry=PING_RETRY,
                              rate_per_second=conn.erp.requests_per_second, **creds)


def _vantagepoint_version(conn: Connection, client) -> Check:
    """Vantagepoint has no endpoint version to pin: the client speaks the /api routes (hubs,
    DataEntry, PSALedger) whose shapes are the same from 4.0 to 7.1. What must hold is that the
    base URL serves that API; the key formats the adapter needs are the cheap proof."""
    try:
        formats = client.key_formats()
    except RemoteError as exc:
        return Check("ERP endpoint version", FAIL, f"no Vantagepoint REST API at {client.base_url}: {_failed(exc)}",
                     "set erp.base_url to the instance root, e.g. https://acme.deltekfirst.com/ACME")
    return Check("ERP endpoint version", PASS, f"REST API at {client.base_url} answers (the /api routes are the same "
                                               f"in Vantagepoint 4.0-7.1; {len(formats)} key formats read)")


def _vantagepoint_adapter(conn: Connection, client):
    from posting.vantagepoint import VantagepointAdapter

    return VantagepointAdapter(client, scope=f"st{conn.servicetitan.tenant}", ar_account=conn.mapping.accounts.ar)


def _vantagepoint_fix(conn: Connection, exc: RemoteError) -> str:
    names = conn.erp.secrets
    return (f"as the message says; secrets: fieldledger secrets set {conn.name} {names['username']} "
            f"(or {names['password']}, {names['client_id']}, {names['client_secret']})")


ERPS = {
    "acumatica": _Erp("Acumatica", _acumatica_build, _acumatica_version, _acumatica_adapter, _acumatica_fix,
                      _acumatica_detail, versions_without_sign_in=True,
                      sign_in_note=" with the OAuth password grant (one API-user seat, signed out when ping ends)"),
    "vantagepoint": _Erp("Vantagepoint", _vantagepoint_build, _vantagepoint_version, _vantagepoint_adapter,
                         _vantagepoint_fix, _failed, sign_in_note=" with the password grant"),
}
ERP_CHECKS = ("ERP credentials", "ERP endpoint version", "ERP reference data", "mapping names exist in the ERP")


def erp_checks(conn: Connection, secrets: dict[str, str]) -> list[Check]:
    kind = ERPS[conn.erp.kind]
    down = probe(conn.erp.kind, conn.erp.base_url)
    if down:
        return [Check("ERP reachable", FAIL, f"{kind.label} at {conn.erp.base_url}: {down}",
                      "check erp.base_url in the connection file and the network path")] + [
            Check(n, SKIP, f"{kind.label} is not reachable") for n in ERP_CHECKS]
    checks = [Check("ERP reachable", PASS, f"{kind.label} at {conn.erp.base_url} answers")]
    lacking = [name for key, name in conn.erp.secrets.items() if name not in secrets]
    if lacking:
        return checks + [Check(n, SKIP, f"secret {', '.join(lacking)} missing (see vault secrets)") for n in ERP_CHECKS]
    creds = {key: secrets[name] for key, name in conn.erp.secrets.items()}
    try:
        client = kind.build(conn, creds)
    except ValueError as exc:
        return checks + [Check("ERP credentials", FAIL, str(exc), f"correct the {kind.label} secrets: fieldledger "
                                                                  f"secrets set {conn.name} NAME")] + [
            Check(n, SKIP, "credentials unusable") for n in ERP_CHECKS[1:]]
    try:
        try:
            client.auth.headers()  # the sign-in itself (Acumatica: one API-user seat, released below)
            signed_in = Check("ERP credentials", PASS, f"signed in to {kind.label}{kind.sign_in_note}")
        except RemoteError as exc:
            signed_in = Check("ERP credentials", FAIL, kind.credentials_detail(exc), kind.credentials_fix(conn, exc))
        checks.append(signed_in)
        if kind.versions_without_sign_in or signed_in.verdict == PASS:
            try:
                version = kind.version(conn, client)
            except RemoteError as exc:
                version = Check("ERP endpoint version", FAIL, _failed(exc), "")
        else:
            version = Check("ERP endpoint version", SKIP, "credentials refused")
        checks.append(version)
        if signed_in.verdict != PASS or version.verdict != PASS:
            why = "credentials refused" if signed_in.verdict != PASS else "endpoint version not served"
            return checks + [Check(n, SKIP, why) for n in ERP_CHECKS[2:]]
        adapter = kind.adapter(conn, client)
        try:
            ref = adapter.reference_data()
        except RemoteError as exc:
            return checks + [Check("ERP reference data", FAIL, _failed(exc), "give the API user read access to the "
                                                                             "chart of accounts and coding entities"),
                             Check(ERP_CHECKS[3], SKIP, "reference data not readable")]
        counts = [f"{len(values)} {label}" for label, values in (
            ("GL accounts", ref.accounts), ("subaccounts", ref.subaccounts), ("branches", ref.branches),
            ("projects", ref.projects), ("organizations", ref.organizations)) if values]
        checks.append(Check("ERP reference data", PASS, ", ".join(counts) or "readable"))
        missing = missing_references(conn, ref, adapter.coding_dimensions)
        if missing:
            checks.append(Check(ERP_CHECKS[3], FAIL, f"not found (or inactive) in {kind.label}: " + "; ".join(missing),
                                f"create them in {kind.label} or correct the named rules in the connection file"))
        else:
            total = len(mapping_references(conn, adapter.coding_dimensions))
            checks.append(Check(ERP_CHECKS[3], PASS, f"all {total} accounts and coding values the mapping names exist"))
        return checks
    finally:
        client.close()  # Acumatica: signs out, freeing the API-user seat


# --- the whole ping --------------------------------------------------------------------------


def ping(name: str, vault_factory: Callable[[], Vault], folder: Path | None = None) -> PingReport:
    report = PingReport(name)
    conn, file_check = load_checked(name, folder)
    report.checks.append(file_check)
    if conn is None:
        report.bad_config = True
        return report
    try:
        vault = vault_factory()
        report.checks.append(secrets_check(conn, vault))
        secrets = {n: vault.get(conn.name, n) for n in set(named_secrets(conn).values())
                   if n in {s.name for s in vault.list(conn.name)}}
    except VaultError as exc:
        report.checks.append(Check("vault secrets", FAIL, _failed(exc), "see the message"))
        secrets = {}
    report.checks.extend(servicetitan_checks(conn, secrets))
    report.checks.extend(erp_checks(conn, secrets))
    return report
