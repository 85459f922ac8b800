# fieldledger: the two commands a fresh machine needs are `make test` and `make demo`.
# Everything installs into .venv from requirements.lock (the versions we tested).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test demo bench lint lock clean

# Under libfaketime (the suite is checked on other dates with `faketime -f "+Ns" make test`), keep
# the monotonic clock real: it has no calendar date, and faking it by weeks makes CPython's timed
# waits sleep for those weeks; tests/faketime_shim.py (loaded by a .pth in .venv) mends time.sleep,
# which libfaketime then breaks. The wall clock, where dates come from, stays moved. Without
# libfaketime neither does anything.
export FAKETIME_DONT_FAKE_MONOTONIC := 1
SHIM := $(VENV)/.faketime-shim-stamp

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.lock -e '.[test]'
	@touch $(STAMP)

# Two workers, a whole test file each (module-scoped stacks stay in one worker): the suite is
# mostly waiting on processes and sockets, so two workers halve it even on two cores.
$(SHIM): $(STAMP) tests/faketime_shim.py
	@$(BIN)/python -c "import pathlib, sysconfig; shim = str(pathlib.Path('tests/faketime_shim.py').resolve()); \
	pathlib.Path(sysconfig.get_paths()['purelib'], 'fieldledger-faketime-shim.pth').write_text( \
	'import os; \"faketime\" in os.environ.get(\"LD_PRELOAD\", \"\") and __import__(\"runpy\").run_path(%r)\n' % shim)"
	@touch $@

test: $(STAMP) $(SHIM)
	$(BIN)/ruff check .
	$(BIN)/pytest -n 2 --dist loadfile --durations=25

demo: $(STAMP)
	$(BIN)/fieldledger demo

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .

lock:
	$(PY) -m pip install -q uv && $(PY) -m uv pip compile pyproject.toml --extra test -o requirements.lock --python-version 3.11

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
