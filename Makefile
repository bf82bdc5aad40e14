# The two commands of the README:
#   make demo   set everything up, install the demo model and sample questions, start the app
#               (DEMO_ARGS="--quit-after-load" checks it starts, then exits: 0 once the model is loaded)
#   make test   set everything up and run the whole test suite
#
# Set-up installs the exact versions of a lock, requirements/$(VARIANT).txt (every package pinned, with its
# SHA-256): the ones the tests last passed with. VARIANT=cpu (the default) holds the CPU build of torch,
# taken from this machine's disk, so pip never fetches a multi-GB CUDA build; on a CUDA workstation use
# `make setup VARIANT=cuda` (see the README). `make lock` resolves both locks again from pyproject.toml and
# requirements/*.in, reinstalls, and runs the tests.

PYTHON ?= python3.11
VENV ?= .venv
VARIANT ?= cpu
BIN := $(VENV)/bin
LOCK := requirements/$(VARIANT).txt
STAMP := $(VENV)/.installed-$(VARIANT)
# Where pip finds torch's CPU build when no find-links folder is configured: PyTorch's CPU index.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
CPU_TORCH_SOURCE = $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS),--extra-index-url $(TORCH_CPU_INDEX) --index-strategy unsafe-best-match)
# The locks are for Linux on x86-64 with glibc 2.34 or newer (PySide6 6.11.3's wheels need it), Python 3.11.
LOCK_ARGS = --python-version 3.11 --python-platform x86_64-manylinux_2_34 --generate-hashes --quiet \
	--custom-compile-command "make lock"

.PHONY: setup demo test lint lock bench-generation clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/medalign models install-demo
	$(BIN)/medalign import resources/sample_questions.jsonl
	$(BIN)/medalign-desktop $(DEMO_ARGS)

# pytest exits 5 when it collected no test: make treats any non-zero exit as a failure, so an empty
# run can never pass silently.
test: setup
	QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench-generation: setup
	$(BIN)/python benchmarks/generation.py

# Resolve both locks again (newest versions the ranges in pyproject.toml allow), install the cpu one here
# and run the tests: commit the locks only when they pass.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet "uv>=0.5"
	$(BIN)/uv pip compile pyproject.toml requirements/cpu.in --extra dev $(CPU_TORCH_SOURCE) $(LOCK_ARGS) \
		--output-file requirements/cpu.txt
	env -u PIP_FIND_LINKS $(BIN)/uv pip compile pyproject.toml requirements/cuda.in --extra dev --extra cuda \
		$(LOCK_ARGS) --output-file requirements/cuda.txt
	$(MAKE) test VARIANT=cpu

clean-venv:
	rm -rf $(VENV)
