# Two entry points for a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Each creates .venv and installs seekforge with every dependency pinned by constraints.txt (the lock).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# The lock pins torch's CPU build; pip finds it in a local wheel folder where one exists, else add
# `--extra-index-url https://download.pytorch.org/whl/cpu` to the pip commands.
TORCH ?= 2.13.0+cpu
TORCH_WHEELS ?= /opt/wheels
# Every extra but `federated`, whose Flower pins protobuf below the serve extra's: it has its own lock.
EXTRAS = $(shell $(PY) -c "import tomllib; x = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']; print(' '.join('--extra ' + e for e in x if e != 'federated'))")
PLATFORM = --python-version 3.11 --python-platform x86_64-manylinux_2_28 --constraint $(VENV)/torch-pin.txt \
	$(if $(wildcard $(TORCH_WHEELS)),--find-links $(TORCH_WHEELS)) --custom-compile-command "make lock"
LOCK_ARGS = pyproject.toml $(EXTRAS) $(PLATFORM) --output-file constraints.txt
FED_LOCK_ARGS = pyproject.toml requirements/federated-test.in --extra federated $(PLATFORM) \
	--output-file constraints-federated.txt
# The federated environment: seekforge[federated] and pytest, pinned by constraints-federated.txt.
FED_VENV ?= .venv-federated
FED_STAMP := $(FED_VENV)/.installed

.PHONY: install demo test test-slow lint format lock upgrade-lock wheel benchmarks clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --constraint constraints.txt --editable ".[dev]"
	touch $(STAMP)

install: $(STAMP)

$(FED_STAMP): pyproject.toml constraints-federated.txt
	$(PY) -m venv $(FED_VENV)
	$(FED_VENV)/bin/pip install --quiet --constraint constraints-federated.txt --editable ".[federated]" pytest
	touch $(FED_STAMP)

demo: $(STAMP)
	$(BIN)/seekforge run examples/digits.yaml

# pytest exits 5 when it collects no test; make treats that as a failure like any other non-zero code.
# The federated tests run in their own environment (Flower pins protobuf below the serve extra's); Ray leaves
# /dev/null handles and its processes' Popen objects open, which Python reports as unraisable ResourceWarnings.
FED_PYTEST = $(FED_VENV)/bin/python -m pytest tests/federate -W ignore::ResourceWarning \
	-W ignore::pytest.PytestUnraisableExceptionWarning

test: $(STAMP) $(FED_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports
	scripts/ensure-chromium
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)
	$(FED_PYTEST) -m "not slow" $(PYTEST_ARGS)

test-slow: $(STAMP) $(FED_STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)
	$(FED_PYTEST) -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

$(BIN)/uv:
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet $(if $(wildcard constraints.txt),--constraint constraints.txt) uv

# Re-resolve constraints.txt after a change to pyproject.toml, keeping every pin that still fits.
lock: $(BIN)/uv
	echo "torch==$(TORCH)" > $(VENV)/torch-pin.txt
	$(BIN)/uv pip compile $(LOCK_ARGS)
	$(BIN)/uv pip compile $(FED_LOCK_ARGS)

# Move every pin to the newest release pyproject.toml allows (torch stays at $(TORCH)); then `make test`.
upgrade-lock: $(BIN)/uv
	echo "torch==$(TORCH)" > $(VENV)/torch-pin.txt
	$(BIN)/uv pip compile --upgrade $(LOCK_ARGS)
	$(BIN)/uv pip compile --upgrade $(FED_LOCK_ARGS)

# A wheel of this source tree in dist/, for installs elsewhere: pip install --constraint constraints.txt "dist/<wheel>[all]"
wheel: $(STAMP)
	$(BIN)/pip wheel --quiet --no-deps --wheel-dir dist .

clean:
	rm -rf $(VENV) $(FED_VENV) runs dist .pytest_cache .ruff_cache
