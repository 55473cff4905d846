# tunefleet: `make search` runs the main job, `make test` runs the tests.
# Both set up .venv first (idempotent: reinstalls only when pyproject.toml or constraints.txt change).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tunefleet-installed
DATASET ?= breast_cancer
ARGS   ?=

.PHONY: setup search smoke seeds test test-all test-fast lint bench bench-fixed stack-image stack-test clean
# Our own sources are byte-compiled on every setup (0.2 s when nothing changed): where
# PYTHONDONTWRITEBYTECODE is set (as on this project's machines) Python never caches them,
# and every process (CLI, test worker, Ray worker) would compile them again.
setup: $(STAMP)
	@$(BIN)/python -m compileall -q src search pipeline benchmarks

# uv (pinned in constraints.txt) installs the locked stack in about 25 s where pip takes 3-5 min.
# --compile-bytecode (about 45 s more) writes the .pyc files uv leaves out by default. Without
# them, where PYTHONDONTWRITEBYTECODE is set, every process compiles torch, Ray and MLflow from
# source: `import torch, ray, mlflow, ...` took 23 s instead of 8.4 s on a fresh venv here.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

search: setup  ## the main job: a real search, tracked and registered in ./mlruns.db
	$(BIN)/tunefleet search $(DATASET) $(ARGS)

smoke: setup
	$(BIN)/tunefleet search $(DATASET) --smoke $(ARGS)

seeds: setup  ## each dataset's seed-tutorial configuration and its test metrics (core only)
	$(BIN)/python -m tunefleet.seeds --mnist-root ../shared/data/mnist-subset

# The whole suite in random order (pytest-randomly prints the seed). The multi-node Ray
# cluster tests run in a pytest process of their own (a Ray driver keeps per-process auth
# and cluster state that an in-process cluster must not inherit from earlier tests),
# together with the service tests, which only drive processes of their own (so the two
# sides take about as long); every other file is spread over 2 workers beside them. The
# side process's output follows the others'.
ALL   := -m "(integration or slow or not (integration or slow)) and not extended"
EVERY := -m "integration or slow or extended or not (integration or slow or extended)"
ALONE := tests/test_cluster_processes.py tests/test_services.py
define BESIDE
	@log=$$(mktemp); \
	$(BIN)/python -m pytest $(1) -p no:cacheprovider --durations=8 $(ALONE) $(ARGS) > $$log 2>&1 & side=$$!; \
	$(BIN)/python -m pytest -n 2 --dist loadfile $(1) --durations=15 $(addprefix --ignore ,$(ALONE)) $(ARGS); pool=$$?; \
	wait $$side; alone=$$?; echo "== $(ALONE), run beside the others:"; cat $$log; rm -f $$log; \
	test $$pool = 0 && test $$alone = 0
endef

test: setup lint  ## everything CI runs: lint, types, the full test suite but the extended twins
	$(call BESIDE,$(ALL))

test-all: setup lint  ## make test plus the Tune-trial twins of the resume and node-loss tests (~5 min more)
	$(call BESIDE,$(EVERY))

test-fast: setup  ## the pure suite: no Ray, no MLflow, no servers (about 45 s)
	$(BIN)/python -m pytest $(ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/bench_search.py

bench-fixed: setup  ## what a whole search command costs against the bare import and the floor (~2 min)
	$(BIN)/python benchmarks/bench_fixed_cost.py

# Not part of CI (minutes, root, a Docker engine): see README "Tier 3".
stack-image: setup  ## the stack's images without internet (debootstrap base + host wheelhouse)
	bash docker/build-offline.sh

stack-test: setup  ## the compose stack for real: build, start, search on 2 workers, serve, tear down
	bash docker/stack-test.sh

clean:
	rm -rf $(VENV) mlruns.db mlartifacts tunefleet-runs .pytest_cache .mypy_cache .ruff_cache
