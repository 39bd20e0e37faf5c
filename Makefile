# GridPatrol: one entry point. `make run` serves the product, `make test` proves it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   := $(or $(GRIDPATROL_PORT),5000)
# Each command installs what it needs into the one venv, and no more: serving needs no Kivy, no browser driver and
# no test tools. A stamp per extras set; a changed pyproject.toml installs again.
SERVE_EXTRAS := server,pg
TEST_EXTRAS  := server,pg,mobile,dev
APP_EXTRAS   := mobile
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check

.PHONY: run setup test test-fast app reset bench clean system-deps app-deps

$(BIN)/python:
	@echo "==> making the virtual environment $(VENV) (once)"
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	@echo "==> installing GridPatrol's packages [$*] into $(VENV) (the first time takes a minute)"
	@$(PIP) install -e '.[$*]'
	@touch $@

## setup: the venv for serving (make run does it)
setup: $(VENV)/.installed-$(SERVE_EXTRAS)

## run: migrate the store under var/, load the demo if it is empty, serve on 127.0.0.1:$(PORT)
run: $(VENV)/.installed-$(SERVE_EXTRAS)
	@mkdir -p var
	@echo "==> migrating the store in var/"
	@out=$$($(BIN)/flask --app server db upgrade 2>&1) || { echo "$$out"; exit 1; }
	@$(BIN)/flask --app server demo load --if-empty
	@echo ""
	@echo "GridPatrol is serving on http://127.0.0.1:$(PORT)   (Ctrl-C stops it)"
	@echo "  pages:   http://127.0.0.1:$(PORT)/   (log in as supervisor1, unit1 or admin)"
	@echo "  health:  http://127.0.0.1:$(PORT)/api/v1/health"
	@echo "  API doc: http://127.0.0.1:$(PORT)/api/v1/openapi.json"
	@echo "  forgot a demo password? $(BIN)/flask --app server demo passwords   (gives the demo users new ones)"
	@echo "  the field app: 'make app' in a second terminal, log in as worker1"
	@echo ""
	@$(BIN)/gunicorn --bind 127.0.0.1:$(PORT) --access-logfile - 'server:create_app()'

## system-deps: Debian's chromium, CJK fonts, Mesa's OpenGL and the X helpers for the tests (in CI a failure here
## fails the run; elsewhere the browser and GUI tests skip and say so)
system-deps:
	@bash scripts/install-system-deps.sh test || [ "$$CI" != "true" ]

## app-deps: what the field app's window needs from the system: Mesa's OpenGL, a Simplified Chinese font, and the
## libraries Kivy's input and clipboard providers load (mtdev, xclip); the app says what is missing if this fails
app-deps:
	@bash scripts/install-system-deps.sh app || echo "make app: the system packages above are missing; the window may fail or draw boxes"

## test: the whole suite (PostgreSQL tests run when 127.0.0.1:5432 answers; in CI they must), in
##       TEST_WORKERS processes, a test file per process at a time (module fixtures such as live servers stay whole)
TEST_WORKERS ?= 2
PYTEST_ARGS ?= --durations=20
test: $(VENV)/.installed-$(TEST_EXTRAS) system-deps
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

## test-fast: skip the slow drills (CI always runs them)
test-fast: $(VENV)/.installed-$(TEST_EXTRAS) system-deps
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow" $(PYTEST_ARGS)

## app: the field app in a 1280x800 window against the local server (start `make run` first; log in as worker1);
##      its tablet store is var/tablet. APP_SERVER=url and APP_DATA=dir change them.
APP_SERVER ?= http://127.0.0.1:$(PORT)
APP_DATA   ?= var/tablet
app: $(VENV)/.installed-$(APP_EXTRAS) app-deps
	@mkdir -p $(APP_DATA)
	$(BIN)/python -m mobile --data $(APP_DATA) --server $(APP_SERVER)

## bench: the sync benchmark (docs/benchmarks.md)
bench: $(VENV)/.installed-$(TEST_EXTRAS)
	$(BIN)/python bench/sync_bench.py

## reset: delete the local store and photos (var/)
reset:
	rm -rf var

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis *.egg-info
