# The two commands of the README. Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test reliability lint format bench clean

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The demo turns its conveniences on explicitly: DJANGO_DEBUG defaults to false (production).
run: export DJANGO_DEBUG ?= true
run: $(INSTALLED)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py run_demo

test: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The proof suites at full size (faults, fuzzing, isolation, secrets) and their figures table.
reliability: $(INSTALLED)
	RELIABILITY_FULL=1 $(BIN)/python -m pytest tests/reliability -p no:cacheprovider $(PYTEST_ARGS)

# Lint, format, types and the import-layer contracts (pyproject.toml); CI runs this too.
# mypy's Django plugin loads the settings: the demo configuration, explicitly (no secrets needed).
lint: export DJANGO_DEBUG ?= true
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy .

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(INSTALLED)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
