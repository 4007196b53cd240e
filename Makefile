# Daily forecast pipeline: set-up, data, run, test, benchmark.
# `make run` and `make test` are all a fresh machine with Python 3.11 needs.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
LUIGI  := $(VENV)/bin/luigi
SCALE  ?= demo
DATE   ?= 2016-05-22
WORLD  := data/world.sqlite

.PHONY: help venv venv-test data run test scheduler clean clean-outputs

help:
	@echo "make run     set up, generate the demo world if missing, forecast DATE=$(DATE)"
	@echo "make test    set up (with test dependencies) and run the test suite"
	@echo "make data    generate the synthetic world (SCALE=tiny|demo|full) into the configured database"
	@echo "make scheduler  start luigid (central scheduler + visualiser, task history) on [luigid] port"
	@echo "make clean-outputs   delete every dated output under data/ (keeps the database)"

# the stamp files make set-up idempotent and re-run it when the pins change
$(VENV)/.run-installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.run-installed requirements-test.txt
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

venv: $(VENV)/.run-installed
venv-scheduler: $(VENV)/.run-installed
	$(PY) -m pipeline.scheduler

test: $(VENV)/.test-installed

# generated into a temporary file first: an interrupted generation never looks like a world
$(WORLD): | $(VENV)/.run-installed
	@mkdir -p data
	rm -f $(WORLD).partial
	$(PY) -m pipeline.world --scale $(SCALE) --url sqlite:///$(CURDIR)/$(WORLD).partial
	mv $(WORLD).partial $(WORLD)

data: $(VENV)/.run-installed
ifeq ($(origin PIPELINE_DATABASE_URL),environment)
	$(PY) -m pipeline.world --scale $(SCALE)
else
	$(MAKE) --no-print-directory $(WORLD) SCALE=$(SCALE)
endif

run: $(VENV)/.run-installed $(if $(PIPELINE_DATABASE_URL),,$(WORLD))
	$(LUIGI) --module pipeline DailyForecast --date $(DATE) --local-scheduler
	$(PY) -m pipeline.show --date $(DATE)

scheduler: $(VENV)/.run-installed
	$(PY) -m pipeline.scheduler

test: $(VENV)/.test-installed
	$(PY) -m pytest

clean-outputs:
	rm -rf data/snapshots data/features data/models data/compiled data/forecasts data/metrics data/reports

clean: clean-outputs
	rm -rf $(VENV) $(WORLD) $(WORLD).partial
