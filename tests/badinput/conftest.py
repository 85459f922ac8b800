"""Fixtures for the bad-input catalogue: the receiver fixtures of tests/receiver (vault, signing
secret) and the whole-stack fixture of tests/pipeline, reused as they are."""

from tests.pipeline.conftest import stack  # noqa: F401 - a fixture, re-exported for this folder
from tests.receiver.conftest import home, master_key, secret, vault  # noqa: F401 - fixtures
