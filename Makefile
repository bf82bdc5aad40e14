# The two commands of the README:
#   make demo   set everything up, install the demo model and sample questions, start the app
#               (DEMO_ARGS="--quit-after-load" checks it starts, then exits: 0 once the model is loaded)
#   make test   set everything up and run the whole test suite
#
# torch is installed first and pinned to the CPU wheel this machine keeps on disk, so pip never fetches a
# multi-GB CUDA build. On a CUDA workstation use `make setup TORCH="torch" EXTRAS="dev,cuda"` instead
# (see the README).

PYTHON ?= python3.11
VENV ?= .venv
TORCH ?= torch==2.13.0
EXTRAS ?= dev
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(EXTRAS)

.PHONY: setup demo test lint bench-generation clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
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

clean-venv:
	rm -rf $(VENV)
