"""`fieldledger init --demo`: writes the two demo connection files with the running simulators'
URLs, stores their credentials in the vault, and registers each connection's webhook with the
ServiceTitan simulator (the real ServiceTitan does that in its developer portal)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx

from fieldledger.settings import connections_dir
from mappings.connection import parse_connection
from resources.vault import Vault

TEMPLATES = Path(__file__).resolve().parent.parent / "mappings" / "connections"
DEMO = {"cascade-hvac": "acumatica", "summit-mechanical": "vantagepoint"}
ERP_SECRETS = {
    "acumatica": {"acu_client_id": "client_id", "acu_client_secret": "client_secret",
                  "acu_username": "username", "acu_password": "password"},
    "vantagepoint": {"vp_client_id": "client_id", "vp_client_secret": "client_secret",
                     "vp_username": "username", "vp_password": "password"},
}


def render_template(text: str, info: dict) -> str:
    def value(match: re.Match) -> str:
        system, key = match.group(1).split(".", 1)
        try:
            return str(info[system][key])
        except KeyError:
            raise KeyError(f"the simulators' info file has no {system}.{key}; is `fieldledger sim up` running?") from None

    return re.sub(r"\{\{([a-z_]+\.[a-z_]+)\}\}", value, text)


def init_demo(info_file: Path, vault: Vault, receiver_url: str = "http://127.0.0.1:8800") -> list[str]:
    info = json.loads(info_file.read_text())
    folder = connections_dir()
    folder.mkdir(parents=True, exist_ok=True)
    done = []
    for name, erp in DEMO.items():
        template = (TEMPLATES / f"{name}.yaml").read_text()
        path = folder / f"{name}.yaml"
        text = render_template(template, info)
        parse_connection(text, path)  # validate before writing
        path.write_text(text)
        st = info["servicetitan"]["tenants"][name]
        for secret, key in (("st_client_id", "client_id"), ("st_client_secret", "client_secret"),
                            ("st_app_key", "app_key"), ("st_webhook_secret", "webhook_secret")):
            vault.set(name, secret, str(st[key]))
        for secret, key in ERP_SECRETS[erp].items():
            vault.set(name, secret, str(info[erp][key]))
        register_webhook(info["servicetitan"]["base_url"], int(st["tenant"]),
                         f"{receiver_url}/webhooks/servicetitan/{name}", str(st["webhook_secret"]))
        done.append(name)
    return done


def register_webhook(st_base_url: str, tenant: int, url: str, secret: str) -> None:
    """Idempotent: an existing registration for the same URL is kept."""
    with httpx.Client(base_url=st_base_url, timeout=10) as client:
        existing = client.get("/_sim/webhooks").json()
        rows = existing if isinstance(existing, list) else existing.get("webhooks", existing.get("data", []))
        if any(r.get("url") == url for r in rows):
            return
        client.post("/_sim/webhooks", json={"tenant": tenant, "url": url, "secret": secret}).raise_for_status()
