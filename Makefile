# The two commands: `make run` (the whole service on embedded defaults, with demo data and a
# virtual card terminal) and `make test` (installs what the tests need and runs them all).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-test lint check-migrations demo-data clean card

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	scripts/system-deps.sh run
	$(BIN)/pip install -q -e .

install-test: $(BIN)/python
	scripts/system-deps.sh test
	$(BIN)/pip install -q -e ".[test]"

run: install
	CARDAP_DEMO=1 DEBUG=1 scripts/run-demo.sh $(BIN) $(HOST) $(PORT)

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
