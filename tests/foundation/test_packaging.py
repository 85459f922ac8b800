"""Every top-level package is installed (not just importable from the repository folder), so the
console script and Dagster's processes work from any directory."""

from __future__ import annotations

import subprocess
import sys

PACKAGES = ("fieldledger.cli", "pipelines.definitions", "resources.store", "mappings.rules", "posting.protocol",
            "receiver.app", "simulators.launcher")


def test_packages_import_outside_the_repository(tmp_path):
    code = "import " + ", ".join(PACKAGES)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
