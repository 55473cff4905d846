# tunefleet: `make search` runs the main job, `make test` runs the tests.
# Both set up .venv first (idempotent: reinstalls only when pyproject.toml or constraints.txt change).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tunefleet-installed
DATASET ?= breast_cancer
ARGS   ?=

.PHONY: setup search smoke seeds test test-fast lint bench clean
setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

search: setup  ## the main job: a real search, tracked and registered in ./mlruns.db
	$(BIN)/tunefleet search $(DATASET) $(ARGS)

smoke: setup
	$(BIN)/tunefleet search $(DATASET) --smoke $(ARGS)

seeds: setup  ## each dataset's seed-tutorial configuration and its test metrics (core only)
	$(BIN)/python -m tunefleet.seeds --mnist-root ../shared/data/mnist-subset

# The whole suite, test files spread over 2 workers (most integration time is waiting on
# processes to start); tests run in random order (pytest-randomly prints the seed).
test: setup lint  ## everything CI runs: lint, types, the full test suite
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "integration or slow or not (integration or slow)" $(ARGS)

test-fast: setup  ## the pure suite: no Ray, no MLflow, no servers (about 15 s)
	$(BIN)/python -m pytest $(ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/bench_search.py

clean:
	rm -rf $(VENV) mlruns.db mlartifacts tunefleet-runs .pytest_cache .mypy_cache .ruff_cache
