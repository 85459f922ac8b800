"""The public reference documents (../shared/reference) that schema tests validate against: read
in place, never copied. Missing documents skip a developer's run but FAIL under CI (env CI set),
so conformance can never pass in CI by silently checking nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REFERENCE_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference"


def require_reference(path: Path, what: str) -> Path:
    """``path`` if it exists; else a failure under CI and a skip elsewhere, naming what is missing."""
    if path.exists():
        return path
    message = (f"{what} not found at {path.resolve()} (../shared/reference beside the checkout); schema "
               "conformance needs it")
    if os.environ.get("CI"):
        pytest.fail(f"{message}. CI must have the reference documents.", pytrace=False)
    pytest.skip(message)
