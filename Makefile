# Daily forecast pipeline: set-up, data, run, test.
# `make run` and `make test` are all a fresh machine with Python 3.11 needs.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
LUIGI  := $(VENV)/bin/luigi
SCALE  ?= demo
DATE   ?= 2016-05-22
START  ?= 2016-04-25
STOP   ?= 2016-05-23
WORLD  := data/world.sqlite
# the embedded world is needed unless the environment points at another database
NEED_WORLD := $(if $(PIPELINE_DATABASE_URL),,$(WORLD))

.PHONY: help venv venv-test browser data import-m5 run serve report backtest bench bench-mlforecast bench-scaling bench-accuracy bench-online bench-serve test test-fast scheduler clean clean-outputs

help:
	@echo "make run       set up, generate the demo world if missing, forecast DATE=$(DATE)"
	@echo "make test      set up (with test dependencies) and run the whole test suite (what CI runs)"
	@echo "make test-fast the unit tier (no training, gcc, luigi process, browser or PostgreSQL), on every core"
	@echo "make data      generate the synthetic world (SCALE=tiny|demo|full) into the configured database"
	@echo "make import-m5 M5_DIR=...   load the Kaggle M5 CSV files into the configured database"
	@echo "make serve     the prediction service ([serve] host:port; PIPELINE_SERVE_TOKEN for a bearer token)"
	@echo "make report    the HTML report of DATE (once its 28 days of actuals are recorded)"
	@echo "make backtest  chain + evaluation for every date in [START, STOP), with a report"
	@echo "make bench     stage timings on a generated world (SCALE=demo|full10|full30|full) -> bench/results.json"
	@echo "make bench-mlforecast   the same training date with mlforecast: time, memory, WRMSSE"
	@echo "make bench-scaling      daily run and retrain at 10/30/100 % of the series -> bench/scaling.json"
	@echo "make bench-accuracy [CONFIG=file.cfg]   the accuracy panel vs the mlforecast reference -> bench/accuracy-<config>.json"
	@echo "make bench-online       the online model on the accuracy panel's worlds -> bench/accuracy-online-default.json"
	@echo "make bench-serve        load test of the prediction service (SCALE=demo|full) -> bench/serve-<scale>.json"
	@echo "make scheduler start luigid (central scheduler + visualiser, task history), [luigid] port"
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
venv-test: $(VENV)/.test-installed

# headless Chromium for the browser tests (Debian's package); without it those tests skip, saying why
browser:
	sh scripts/install-browser.sh || echo "make: no headless Chromium: the browser tests will skip"

# generated into a temporary file first: an interrupted generation never looks like a world
$(WORLD): | $(VENV)/.run-installed
	@mkdir -p data
	rm -f $(WORLD).partial
	$(PY) -m pipeline.tools.world --scale $(SCALE) --url sqlite:///$(CURDIR)/$(WORLD).partial
	mv $(WORLD).partial $(WORLD)

data: $(VENV)/.run-installed
ifeq ($(origin PIPELINE_DATABASE_URL),environment)
	$(PY) -m pipeline.tools.world --scale $(SCALE)
else
	$(MAKE) --no-print-directory $(WORLD) SCALE=$(SCALE)
endif

# the Kaggle M5 files (calendar.csv, sell_prices.csv, sales_train_{evaluation,validation}.csv)
import-m5: $(VENV)/.run-installed
	@test -n "$(M5_DIR)" || { echo "usage: make import-m5 M5_DIR=/path/to/m5-forecasting-accuracy"; exit 2; }
	@mkdir -p data
	$(PY) -m pipeline.tools.m5import --dir $(M5_DIR)

run: $(VENV)/.run-installed $(NEED_WORLD)
	$(LUIGI) --module pipeline DailyForecast --date $(DATE) --local-scheduler
	$(PY) -m tasks.show --date $(DATE)

# the indexes one series is read by are made first (once; a schema change, no row is written)
serve: $(VENV)/.run-installed $(NEED_WORLD)
	$(PY) -m pipeline.tools.series_indexes
	$(PY) -m service

report: $(VENV)/.run-installed $(NEED_WORLD)
	$(LUIGI) --module pipeline Report --date $(DATE) --local-scheduler
	@echo "report: data/reports/$(DATE)/index.html"

backtest: $(VENV)/.run-installed $(NEED_WORLD)
	$(LUIGI) --module pipeline BacktestReport --start $(START) --stop $(STOP) --local-scheduler
	@echo "backtest: data/backtests/$(START)_$(STOP)/wrmsse.csv, report: data/reports/backtest_$(START)_$(STOP)/index.html"

scheduler: $(VENV)/.run-installed
	$(PY) -m tasks.scheduler

# the peers' own environments (lleaves needs llvmlite 0.43, mlforecast pandas 2), from their pins
bench/.venv-%/.installed: bench/requirements-%.txt
	test -x bench/.venv-$*/bin/python || $(PYTHON) -m venv bench/.venv-$*
	bench/.venv-$*/bin/python -m pip install --quiet -r $<
	touch $@

# stage timings (wall, CPU, peak RSS, rows/s) on a world of SCALE under bench/data/, scoring side by side
# with LightGBM and lleaves; writes bench/results.json (and bench/results-<scale>.json)
bench: $(VENV)/.run-installed bench/.venv-lleaves/.installed
	$(PY) bench/run.py --scale $(SCALE)

# the same training date with mlforecast and with the pipeline: time, memory, WRMSSE (SCALE=full10 by default)
bench-mlforecast: $(VENV)/.run-installed bench/.venv-mlforecast/.installed
	$(PY) bench/run.py --scale $(or $(filter-out demo,$(SCALE)),full10) --reuse
	$(PY) bench/peers/compare_mlforecast.py --scale $(or $(filter-out demo,$(SCALE)),full10)

# daily run and retrain at 10 %, 30 % and 100 % of the series: bench/scaling.json
bench-scaling: $(VENV)/.run-installed bench/.venv-lleaves/.installed
	for s in full10 full30 full; do $(PY) bench/run.py --scale $$s --reuse --no-lleaves || exit 1; done
	$(PY) bench/scaling.py full10 full30 full

# the accuracy panel: the pipeline under CONFIG (an extra luigi.cfg; default none) against the mlforecast
# reference over the cases of bench/accuracy/cases.py (CASES=a,b: a subset) -> bench/accuracy-<config>.json,
# docs/accuracy-panel.md
bench-accuracy: $(VENV)/.run-installed bench/.venv-mlforecast/.installed
	$(PY) -m bench.accuracy $(if $(CONFIG),--config $(CONFIG)) $(if $(CASES),--cases $(CASES))

# the online model (the challenger) on the accuracy panel's worlds, beside the batch pipeline's and the mlforecast
# reference's numbers of bench/accuracy-default.json (CASES=a,b: a subset) -> bench/accuracy-online-default.json
bench-online: $(VENV)/.run-installed
	$(PY) -m bench.accuracy.online $(if $(CASES),--cases $(CASES))

# 32 clients for 30 s per endpoint on loopback, against `python -m service` on bench/data/<scale>
bench-serve: $(VENV)/.test-installed
	$(PY) bench/serve.py --scale $(SCALE)

test: $(VENV)/.test-installed browser
	$(PY) -m pytest

# the unit tier (markers in pyproject.toml, applied in tests/tiers.py), one pytest worker per core; a test
# using more than FAST_BUDGET seconds of CPU fails, asking for a slow marker, so that the tier stays fast
FAST_BUDGET ?= 5
TEST_WORKERS ?= auto
test-fast: $(VENV)/.test-installed
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m "not slow and not browser and not postgres" \
	    --fast-budget=$(FAST_BUDGET) --durations=5

clean-outputs:
	rm -rf data/snapshots data/quality data/features data/models data/compiled data/promotions data/forecasts \
	       data/calibration data/quantiles data/monitoring data/online_model data/online_forecasts \
	       data/metrics data/backtests data/reports

clean: clean-outputs
	rm -rf $(VENV) $(WORLD) $(WORLD).partial
