# Quick start:  make app   (the dashboard)   |   make test   (the test suite)   |   make app-https (phones)
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: app app-https test test-quick bench venv tfjs clean

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found; run: make PYTHON=python3 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	touch $@

venv: $(VENV)/.installed

app: $(VENV)/.installed
	$(VENV)/bin/streamlit run app.py

# For a phone in the room: HTTPS on the local network with a self-signed certificate made on first use.
app-https: $(VENV)/.installed
	$(PY) -m trashure serve --https

# The export tests need the official TF.js converter (its own venv) and runtime (npm): set up here, so
# that `make test` passes on a fresh clone. Only what needs root (Debian's Chromium) is skipped, with
# the reason, when absent.
tfjs:
	PYTHON=$(PYTHON) bash tools/tfjs/setup.sh

# Two workers (pytest-xdist), each test file on one of them so that its module fixtures are made once: on
# 2 cores the suite takes 14½–21½ min instead of 24–25½, as many tests wait on a browser, a server, Node or the
# single-threaded int8 calibration. `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= 2
test: $(VENV)/.installed tfjs
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# About 4 minutes on 2 cores: leaves out what trains, exports every format or drives a browser (marked slow).
test-quick: $(VENV)/.installed
	$(PY) -m pytest -m "not slow"

bench: $(VENV)/.installed
	$(PY) bench/train_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis tools/tfjs/.venv tools/tfjs/node_modules
