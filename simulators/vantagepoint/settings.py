"""The simulated Vantagepoint tenant's configuration: credentials derived from the seed, and every
behaviour the reference marks as inferred or unknown, read from ``SimOptions.options``.

Defaults are the stricter reading of the reference (see the package docstring for the list).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from typing import Any

from simulators.contractor import CONTRACTORS_BY_KEY, SUMMIT, Contractor
from simulators.runtime import SimOptions

LEDGER_PAGING = ("pagesize", "maxrows", "unpaged", "documented")
INVOICE_PADDING = ("zero_pad", "as_given")


@dataclass(frozen=True)
class KeyFormats:
    """What ``GET /KeyCvt/CFGFormat`` reports and the simulator enforces."""

    account_length: int = 13
    vendor_length: int = 6
    client_length: int = 6
    wbs1_length: int = 30
    refno_length: int = 12  # invoice numbers and reference numbers, zero-padded on save
    org_levels: int = 2
    org_delimiter: str = ":"


@dataclass(frozen=True)
class TenantSettings:
    contractor: Contractor
    tenant: str  # the path segment: http://host:port/{tenant}/api
    database: str
    client_id: str
    client_secret: str
    username: str
    password: str
    token_ttl_seconds: int = 1799
    refresh_token_ttl_seconds: int = 8 * 3600
    rotate_refresh_tokens: bool = True
    allow_password_grant: bool = True
    use_files_to_group_transactions: bool = True
    post_failure_http_400: bool = False  # PostTransFile: 200 + retList 0 (default) or 400
    # Which size parameters PSALedger / DataEntry lists honour (brief 5.1, [UNKNOWN] beyond one source):
    # "pagesize" (default): `limit` 500s, pageSize / page / offset / q.maxrows work;
    # "maxrows": `limit` and `pageSize` 500, q.maxrows caps the rows, page / offset are ignored;
    # "unpaged": `limit` 500s, pageSize / page / offset are ignored (every row), q.maxrows caps;
    # "documented": limit, pageSize, page, offset and q.maxrows all work (DPS 1.1 Pagination).
    ledger_paging: str = "pagesize"
    # Invoice numbers on save: "zero_pad" to RefnoLength (default) or "as_given" (stored as sent).
    invoice_padding: str = "zero_pad"
    hub_post_shape: str = "array"  # firm / project / Accounts POST answer: [record] or a bare "object"
    unauthorized_body: str = "aspnet"  # 401 body: {"Message": ...} or "empty" with WWW-Authenticate
    html_503: bool = True  # 503s come back as a proxy's HTML page, not JSON
    check_transdate_period: bool = True  # each document's TransDate must fall in an open period
    ap_allow_negative: bool = False
    rate_limit_per_minute: float = 0.0  # 0 = no limit (none is documented)
    rate_limit_burst: int = 20
    key_formats: KeyFormats = field(default_factory=KeyFormats)


def _secret(rng: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def settings_from_options(options: SimOptions) -> TenantSettings:
    opts: dict[str, Any] = dict(options.options or {})
    contractor = opts.get("contractor", SUMMIT)
    if isinstance(contractor, str):
        if contractor not in CONTRACTORS_BY_KEY:
            raise ValueError(f"unknown contractor {contractor!r}; known: {', '.join(CONTRACTORS_BY_KEY)}")
        contractor = CONTRACTORS_BY_KEY[contractor]
    tenant = str(opts.get("tenant") or contractor.key.split("-")[0].upper())
    rng = random.Random(f"vantagepoint:{options.seed}:{contractor.key}")
    database = f"C00000{options.seed % 100000:05d}P_1_{tenant.upper()}"
    client_id = _secret(rng, 32, "0123456789ABCDEF")
    client_secret = _secret(rng, 43)
    password = _secret(rng, 20)
    raw_formats = dict(opts.get("key_formats") or {})
    if "refno_length" in opts:  # flat, so `sim up -o refno_length=10` can set it
        raw_formats["refno_length"] = int(opts["refno_length"])
    formats = KeyFormats(**raw_formats)
    simple = {
        k: opts[k]
        for k in (
            "token_ttl_seconds", "refresh_token_ttl_seconds", "rotate_refresh_tokens", "allow_password_grant",
            "use_files_to_group_transactions", "post_failure_http_400", "ledger_paging", "invoice_padding", "html_503",
            "hub_post_shape", "unauthorized_body",
            "check_transdate_period", "ap_allow_negative", "rate_limit_per_minute", "rate_limit_burst",
        )
        if k in opts
    }
    if "ledger_paging" not in simple and "ledger_rejects_limit" in opts:  # the older switch
        simple["ledger_paging"] = "pagesize" if opts["ledger_rejects_limit"] else "documented"
    if simple.get("ledger_paging", "pagesize") not in LEDGER_PAGING:
        raise ValueError(f"ledger_paging must be one of {', '.join(LEDGER_PAGING)}")
    if simple.get("invoice_padding", "zero_pad") not in INVOICE_PADDING:
        raise ValueError(f"invoice_padding must be one of {', '.join(INVOICE_PADDING)}")
    return TenantSettings(
        contractor=contractor,
        tenant=tenant,
        database=database,
        client_id=client_id,
        client_secret=client_secret,
        username=str(opts.get("username") or "FIELDLEDGER_API"),
        password=password,
        key_formats=formats,
        **simple,
    )
