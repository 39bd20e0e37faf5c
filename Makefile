# GridPatrol: one entry point. `make run` serves the product, `make test` proves it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   := $(or $(GRIDPATROL_PORT),5000)
EXTRAS := server,pg,dev

.PHONY: run test test-fast app reset bench clean system-deps

# The venv is rebuilt when pyproject.toml changes.
$(VENV)/.installed-$(EXTRAS): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

## run: migrate the store under var/, load the demo if it is empty, serve on 127.0.0.1:$(PORT)
run: $(VENV)/.installed-$(EXTRAS)
	mkdir -p var
	$(BIN)/flask --app server db upgrade
	$(BIN)/flask --app server demo load --if-empty
	@echo ""
	@echo "GridPatrol is serving on http://127.0.0.1:$(PORT)"
	@echo "  pages:   http://127.0.0.1:$(PORT)/   (supervisor1, unit1, admin)"
	@echo "  health:  http://127.0.0.1:$(PORT)/api/v1/health"
	@echo "  API doc: http://127.0.0.1:$(PORT)/api/v1/openapi.json"
	@echo "  (log-ins are printed above when the demo is first loaded; 'make reset' starts over)"
	@echo ""
	$(BIN)/gunicorn --bind 127.0.0.1:$(PORT) --workers 2 --threads 4 --access-logfile - 'server:create_app()'

## system-deps: Debian's chromium and CJK fonts for the browser test (in CI a failure here fails the run;
## elsewhere the browser test skips and says so)
system-deps:
	bash scripts/install-system-deps.sh || [ "$$CI" != "true" ]

## test: the whole suite (PostgreSQL tests run when 127.0.0.1:5432 answers; in CI they must), in
##       TEST_WORKERS processes, a test file per process at a time (module fixtures such as live servers stay whole)
TEST_WORKERS ?= 2
test: $(VENV)/.installed-$(EXTRAS) system-deps
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

## test-fast: skip the slow drills (CI always runs them)
test-fast: $(VENV)/.installed-$(EXTRAS) system-deps
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow" $(PYTEST_ARGS)

## app: the field app in a 1280x800 window against the local server (start `make run` first; log in as worker1);
##      its tablet store is var/tablet. APP_SERVER=url and APP_DATA=dir change them.
APP_SERVER ?= http://127.0.0.1:$(PORT)
APP_DATA   ?= var/tablet
app: $(VENV)/.installed-$(EXTRAS)
	mkdir -p $(APP_DATA)
	$(BIN)/python -m mobile --data $(APP_DATA) --server $(APP_SERVER)

## bench: the sync benchmark (docs/benchmarks.md)
bench: $(VENV)/.installed-$(EXTRAS)
	$(BIN)/python bench/sync_bench.py

## reset: delete the local store and photos (var/)
reset:
	rm -rf var

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis *.egg-info
