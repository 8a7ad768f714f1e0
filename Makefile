# The two commands of the README. Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run password test reliability lint format messages bench clean

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

# A new password for the demo's staff user: `make run` shows one only when it creates the user.
password: export DJANGO_DEBUG ?= true
password: $(INSTALLED)
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py demo_password

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

# The Chinese catalog of the console (console/locale/zh_Hans): gather every translatable string of the
# product into django.po (translate the new ones there), then compile the django.mo that ships. The .mo
# is committed, so running and testing need no gettext; only this target does (GNU gettext's xgettext,
# msgmerge, msgfmt). tests/console/test_catalog.py fails on a string missing from the .po, a fuzzy
# entry, or a .mo that was not rebuilt.
MESSAGES_IGNORE := -i .venv -i var -i tests -i sandbox -i devtools -i bench -i deploy -i docs -i '*.egg-info'
messages: export DJANGO_DEBUG ?= true
messages: $(INSTALLED)
	@command -v msgfmt >/dev/null || { echo "make messages needs GNU gettext (apt-get install gettext / brew install gettext)"; exit 1; }
	$(BIN)/python manage.py makemessages -l zh_Hans --no-obsolete $(MESSAGES_IGNORE)
	$(BIN)/python manage.py compilemessages -l zh_Hans -i .venv

bench: $(INSTALLED)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var
