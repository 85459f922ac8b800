"""Writes contract.py: the field names and value kinds of the Default 24.200.001 entities the
simulator serves (and every linked / detail type they reach), read once from Acumatica's public
OpenAPI document. Run by hand when the served entity set changes:

    .venv/bin/python -m simulators.acumatica.contract_gen ../shared/reference/acumatica-openapi/Default_24.200.001.json

Only names and kinds are kept (the simulator's own compact format); the document itself is not
shipped and is not read at run time."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOTS = ("Customer", "Vendor", "Invoice", "Payment", "Bill", "Account", "Subaccount", "PaymentMethod",
         "CompaniesStructure", "Ledger", "FinancialPeriod", "FinancialYear")
KINDS = {"StringValue": "S", "DecimalValue": "D", "DoubleValue": "D", "BooleanValue": "B", "IntValue": "I",
         "ShortValue": "I", "LongValue": "I", "ByteValue": "I", "DateTimeValue": "DT", "GuidValue": "G"}


def _props(schemas: dict, name: str) -> dict:
    schema = schemas[name]
    props: dict = {}
    for part in schema.get("allOf", [schema]):
        if "$ref" not in part:
            props.update(part.get("properties", {}))
    return props


def collect(schemas: dict) -> dict[str, str]:
    out: dict[str, str] = {}
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        tokens = []
        for field, spec in sorted(_props(schemas, name).items()):
            ref = spec.get("$ref") or spec.get("items", {}).get("$ref")
            target = ref.rsplit("/", 1)[1] if ref else None
            if target in KINDS:
                tokens.append(f"{field}:{KINDS[target]}")
            elif target and spec.get("type") == "array":
                tokens.append(f"{field}:*{target}")
                todo.append(target)
            elif target:
                tokens.append(f"{field}:>{target}")
                todo.append(target)
        out[name] = " ".join(tokens)
    return dict(sorted(out.items()))


def main(path: str) -> None:
    schemas = json.loads(Path(path).read_text())["components"]["schemas"]
    lines = ['"""Field names and value kinds of the Default 24.200.001 contract for the entities the simulator',
             "serves, in the simulator's own compact form (written by contract_gen.py; do not edit by hand).",
             "Per type: 'Field:K' with K one of S D B I DT G (string, decimal, boolean, integer, date-time,",
             "guid), '>Type' for a linked entity and '*Type' for a detail collection.\"\"\"", "",
             "CONTRACT_VERSION = \"24.200.001\"", "", "TYPES: dict[str, str] = {"]
    for name, text in collect(schemas).items():
        words = text.split(" ")
        chunk, rows = [], []
        for w in words:
            if sum(len(x) + 1 for x in chunk) + len(w) > 90:
                rows.append(" ".join(chunk))
                chunk = []
            chunk.append(w)
        rows.append(" ".join(chunk))
        body = "\n".join(f'        "{r}{" " if i < len(rows) - 1 else ""}"' for i, r in enumerate(rows))
        lines.append(f'    "{name}": (\n{body}\n    ),')
    lines.append("}")
    target = Path(__file__).with_name("contract.py")
    target.write_text("\n".join(lines) + "\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1])
