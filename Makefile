# make demo · make test · make lint · make bench — each bootstraps .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
# On a Raspberry Pi the venv must see apt's picamera2 and lgpio.
VENV_FLAGS := $(shell grep -qs "Raspberry Pi" /proc/device-tree/model && echo --system-site-packages)

.PHONY: demo test lint bench check-zbar clean

demo: $(STAMP)
	$(BIN)/ticket-scanner demo

test: $(STAMP) check-zbar
	$(BIN)/pytest -q

lint: $(BENCH_STAMP)  # mypy checks bench/ too, which needs matplotlib
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Benchmarks, apart from the tests: a table on stdout, JSON and plots in bench/out/ (~3 min).
# BENCH_ARGS passes options through, e.g. make bench BENCH_ARGS=--quick
bench: $(BENCH_STAMP) check-zbar
	$(BIN)/python -m bench $(BENCH_ARGS)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "ticket-scanner needs Python 3.11 or newer ($(PYTHON)); Raspberry Pi OS bookworm has it."; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
		echo "missing: python3-venv. Install it with: sudo apt-get install python3-venv"; exit 1; }
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[dev,deploy]'  # deploy: OTA publisher, ansible, shellcheck
	@touch $(STAMP)

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet --editable '.[dev,deploy,bench]'
	@touch $(BENCH_STAMP)

check-zbar: $(STAMP)
	@$(BIN)/python -c 'from pyzbar import pyzbar' 2>/dev/null || { \
		echo "missing: libzbar0 (the ZBar library the zbar decoder and its tests use)."; \
		echo "Install it with: sudo apt-get install libzbar0"; exit 1; }

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/out
