# The two commands: `make run` (the whole service on embedded defaults, with demo data, a
# virtual card and the terminal agent on it) and `make test` (installs what the tests need and runs them all).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-test lint check-migrations demo-data clean card

$(BIN)/python:
	@echo "== creating the virtualenv $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --progress-bar on --upgrade pip

# pip shows its progress (the first install downloads and builds for a few minutes); it runs
# again only when pyproject.toml changes.
install: $(VENV)/.installed-run
$(VENV)/.installed-run: pyproject.toml agent/pyproject.toml | $(BIN)/python
	@echo "== checking the Debian packages (scripts/system-deps.sh run)"
	scripts/system-deps.sh run
	@echo "== installing the Python packages into $(VENV) (a few minutes the first time)"
	$(BIN)/pip install --progress-bar on --disable-pip-version-check -e . -e ./agent
	@touch $@

install-test: $(VENV)/.installed-test
$(VENV)/.installed-test: pyproject.toml agent/pyproject.toml | $(BIN)/python
	@echo "== checking the Debian packages (scripts/system-deps.sh test)"
	scripts/system-deps.sh test
	@echo "== installing the Python packages for the tests into $(VENV)"
	$(BIN)/pip install --progress-bar on --disable-pip-version-check -e ".[test]" -e ./agent
	@touch $@

# Demo mode without DEBUG: the service's own error pages, static files served by WhiteNoise.
run: install
	CARDAP_DEMO=1 scripts/run-demo.sh $(BIN) $(HOST) $(PORT)

lint:
	$(BIN)/ruff check .
	CARDAP_DEMO=1 $(BIN)/mypy

check-migrations:
	CARDAP_DEMO=1 $(BIN)/python manage.py makemigrations --check --dry-run

test: install-test lint check-migrations
	CARDAP_DEMO=1 $(BIN)/python manage.py compilemessages -v 0
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf var/ .pytest_cache .mypy_cache

# The virtual My Number Card alone in a vpcd reader (pcscd must run: `pcscd -f &` as root).
card: install
	$(BIN)/python -m vcard serve --state var/demo-card.json $(CARD_ARGS)
