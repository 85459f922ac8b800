"""`fieldledger init` and `fieldledger secrets …` as a person runs them: real processes, real database."""

from __future__ import annotations

import os
import subprocess
import sys

SECRET = "cli-secret-value-7d2e91"


def run(args, env, stdin=""):
    return subprocess.run([sys.executable, "-m", "fieldledger.cli", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=60)


def test_init_set_list_rotate(database_url, tmp_path):
    env = {**os.environ, "FIELDLEDGER_HOME": str(tmp_path / "home"), "FIELDLEDGER_DATABASE_URL": database_url}
    env.pop("FIELDLEDGER_MASTER_KEY", None)
    before = run(["secrets", "list"], env)
    assert before.returncode == 2 and "fieldledger init" in before.stderr

    init = run(["init"], env)
    assert init.returncode == 0, init.stderr
    key_file = tmp_path / "home" / "master.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"

    stored = run(["secrets", "set", "cascade-hvac", "st_client_secret"], env, stdin=SECRET + "\n")
    assert stored.returncode == 0, stored.stderr
    listed = run(["secrets", "list"], env)
    assert "cascade-hvac" in listed.stdout and "st_client_secret" in listed.stdout
    rotated = run(["secrets", "rotate-key"], env)
    assert rotated.returncode == 0 and "re-encrypted 1 secrets" in rotated.stdout
    empty = run(["secrets", "set", "cascade-hvac", "x"], env, stdin="\n")
    assert empty.returncode == 2

    for proc in (init, stored, listed, rotated):
        assert SECRET not in proc.stdout + proc.stderr

    from resources.store import SyncStore
    from resources.vault import Vault

    with SyncStore(database_url) as store:
        assert Vault(store, key_path=key_file).get("cascade-hvac", "st_client_secret") == SECRET
