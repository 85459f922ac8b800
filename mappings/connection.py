"""Connection files: one YAML file per ServiceTitan tenant + ERP pair, validated once here.

A connection names where each system is, which vault secrets it uses (names only, never
values), its start date and its mapping (business units -> ERP coding, GL account rules, how
parties are keyed). Errors name the file, the field and the fix.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fieldledger.settings import connections_dir


class ConnectionFileError(ValueError):
    """A connection file a person must fix; the message names the file, the field and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookSettings(_Strict):
    """How deliveries prove they are authentic (the receiver reads these: receiver/connections.py).
    ``hmac``: HMAC-SHA256 of the body in a header; ServiceTitan publishes neither the header nor the
    encoding, so both are settings (several header names may be listed; ``any`` accepts base64 and
    hex). ``path_token``: for an app without an HMAC key, a vault-kept token of at least 128 bits
    ends the callback URL (``servicetitan.secrets.webhook_token``, default ``st_webhook_token``)."""

    auth: Literal["hmac", "path_token"] = "hmac"
    signature_header: str | list[str] = "X-ServiceTitan-Signature"
    signature_encoding: Literal["any", "base64", "hex"] = "any"


class ServiceTitanSettings(_Strict):
    base_url: str
    auth_url: str
    tenant: int
    rate_per_second: float = Field(50.0, gt=0, le=60)
    secrets: dict[str, str] = Field(
        default_factory=lambda: {
            "client_id": "st_client_id",
            "client_secret": "st_client_secret",
            "app_key": "st_app_key",
            "webhook_secret": "st_webhook_secret",
        }
    )
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)


class AcumaticaSettings(_Strict):
    kind: Literal["acumatica"]
    base_url: str
    endpoint: str = "Default"
    version: str = "24.200.001"
    tenant: str | None = None
    max_concurrency: int = Field(2, ge=1, le=50)
    requests_per_minute: int | None = Field(None, ge=1)
    # The API user's time zone (Users SM201010, else the site's): Acumatica answers dates and
    # date-times in it, so a business day's window is that zone's midnight to midnight.
    time_zone: str = "UTC"
    secrets: dict[str, str] = Field(
        default_factory=lambda: {
            "client_id": "acu_client_id",
            "client_secret": "acu_client_secret",
            "username": "acu_username",
            "password": "acu_password",
        }
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as 'America/Los_Angeles' "
                             "(the Acumatica API user's time zone)") from None
        return value


class VantagepointSettings(_Strict):
    kind: Literal["vantagepoint"]
    base_url: str
    database: str
    requests_per_second: float = Field(20.0, gt=0, le=500)  # no documented limit: be polite
    # Tenant behaviours the reference leaves open (resources/vantagepoint.py): how PSALedger /
    # DataEntry lists page, how transaction files are created ("Use Files to Group Transactions"),
    # and RefnoLength (None: read from KeyCvt/CFGFormat). "auto" detects on first use.
    ledger_paging: Literal["auto", "page_size", "unpaged"] = "auto"
    file_grouping: Literal["auto", "grouped", "ungrouped"] = "auto"
    refno_length: int | None = Field(None, ge=1, le=30)
    secrets: dict[str, str] = Field(
        default_factory=lambda: {
            "client_id": "vp_client_id",
            "client_secret": "vp_client_secret",
            "username": "vp_username",
            "password": "vp_password",
        }
    )


class BusinessUnitMapping(_Strict):
    """Where one ServiceTitan business unit's documents land."""

    name: str | None = None  # for people reading the file
    branch: str | None = None  # Acumatica
    subaccount: str | None = None  # Acumatica
    project: str | None = None  # Vantagepoint WBS1 (or Acumatica project as cost center)
    task: str | None = None  # Vantagepoint WBS2 (or Acumatica project task)
    organization: str | None = None  # Vantagepoint
    revenue_account: str | None = None  # default revenue account for this unit


class AccountRules(_Strict):
    """GL account rules. Revenue: the item's ServiceTitan GL account number mapped through
    ``revenue_by_gl_account``, else ``revenue_by_item_type``, else the unit's default."""

    ar: str
    tax: str
    ap: str
    inventory: str
    freight: str | None = None
    default_revenue: str | None = None
    revenue_by_item_type: dict[str, str] = Field(default_factory=dict)
    revenue_by_gl_account: dict[str, str] = Field(default_factory=dict)
    use_item_gl_account: bool = True
    cash_by_payment_type: dict[str, str] = Field(default_factory=dict)
    default_cash: str | None = None


class PartyRule(_Strict):
    """How customers or vendors are keyed in the ERP: an id derived from the ServiceTitan id
    (``prefix`` + id), or matched by exact name in the ERP (created with a derived id when absent)."""

    key: Literal["derived", "match_by_name"] = "derived"
    prefix: str = "ST"

    @field_validator("prefix")
    @classmethod
    def _short_prefix(cls, value: str) -> str:
        if not value.isalnum() or len(value) > 6:
            raise ValueError("prefix must be 1-6 letters or digits")
        return value


class Mapping(_Strict):
    business_units: dict[int, BusinessUnitMapping]
    accounts: AccountRules
    customers: PartyRule = Field(default_factory=PartyRule)
    vendors: PartyRule = Field(default_factory=lambda: PartyRule(prefix="V"))


class Connection(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
    start_date: date
    paused: bool = False
    servicetitan: ServiceTitanSettings
    erp: Annotated[AcumaticaSettings | VantagepointSettings, Field(discriminator="kind")]
    mapping: Mapping

    @property
    def erp_kind(self) -> str:
        return self.erp.kind

    @model_validator(mode="after")
    def _coding_fits_the_erp(self) -> Connection:
        for unit_id, unit in self.mapping.business_units.items():
            if self.erp.kind == "acumatica" and not (unit.branch and unit.subaccount):
                raise ValueError(
                    f"mapping.business_units.{unit_id}: an Acumatica connection needs 'branch' and 'subaccount' "
                    "for every business unit"
                )
            if self.erp.kind == "vantagepoint" and not (unit.project and unit.organization):
                raise ValueError(
                    f"mapping.business_units.{unit_id}: a Vantagepoint connection needs 'project' (WBS1) and "
                    "'organization' for every business unit"
                )
        return self


def _explain(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: {exc.error_count()} problem(s):"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "missing":
            msg = "required field is missing: add it"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field: remove it or check its spelling"
        lines.append(f"  - {where}: {msg}")
    return "\n".join(lines)


def parse_connection(text: str, path: Path) -> Connection:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConnectionFileError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConnectionFileError(f"{path}: expected a mapping of settings at the top level, found {type(data).__name__}")
    try:
        conn = Connection.model_validate(data)
    except ValidationError as exc:
        raise ConnectionFileError(_explain(path, exc)) from None
    if conn.name != path.stem:
        raise ConnectionFileError(f"{path}: name is {conn.name!r} but the file is {path.name}; make them agree")
    return conn


def load_connection_file(path: Path) -> Connection:
    if not path.exists():
        raise ConnectionFileError(f"{path}: no such connection file; create it or run `fieldledger init --demo`")
    return parse_connection(path.read_text(), path)


def load_connection(name: str, folder: Path | None = None) -> Connection:
    return load_connection_file((folder or connections_dir()) / f"{name}.yaml")


def load_all(folder: Path | None = None) -> list[Connection]:
    """Every connection, or ConnectionFileError for the first file that is wrong (for commands that
    act on all of them at once; what keeps running uses load_each)."""
    folder = folder or connections_dir()
    if not folder.exists():
        return []
    return [load_connection_file(p) for p in sorted(folder.glob("*.yaml"))]


def connection_names(folder: Path | None = None) -> list[str]:
    """The names of every connection file, readable or not (a file's name is its connection's)."""
    folder = folder or connections_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.exists() else []


def load_each(folder: Path | None = None) -> tuple[list[Connection], dict[str, str]]:
    """The connections whose files are valid, and {name: what is wrong with its file} for the
    others: one file with a typo sets its own connection aside, never the rest."""
    folder = folder or connections_dir()
    good: list[Connection] = []
    bad: dict[str, str] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.exists() else []:
        try:
            good.append(load_connection_file(path))
        except ConnectionFileError as exc:
            bad[path.stem] = str(exc)
    return good, bad
