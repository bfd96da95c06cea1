# Two commands: `make run` (the whole stack on the bundled data) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run check test lint bench system-deps train evaluate evaluate-later evaluate-chain evaluate-direction evaluate-vol-chain clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m services.stack

# The inner loop: the same checks, then the fast tests (no slow, browser or compose marker).
check: lint system-deps
	$(PY) -m pytest -q -m "not slow and not browser and not compose"

# The gate: lint, format check and type check with zero findings, then every test.
test: lint system-deps
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

system-deps:
	@bash scripts/install-system-deps.sh

train: $(STAMP)
	$(PY) -m services.trainer train

evaluate: $(STAMP)
	$(PY) -m services.trainer evaluate --nifty data/nifty50_daily.csv --vix data/india_vix_daily.csv --start 2019-01-01 --out docs/evaluation

# The same models on the months after the bundled history (the daily bars shipped beside the
# option chain): every fold trained only on data before it, nothing chosen on this period.
evaluate-later: $(STAMP)
	$(PY) -m services.trainer evaluate --start 2025-07-01 --out docs/evaluation/later \
		--nifty data/nifty50_daily.csv data/nifty50_daily_2025-07_2026-02.csv \
		--vix data/india_vix_daily.csv data/india_vix_daily_2025-07_2026-02.csv

# Both runs above scored where the option chain's daily history exists, beside the straddle.
evaluate-chain: $(STAMP)
	$(PY) -m services.trainer evaluate-chain --runs docs/evaluation docs/evaluation/later \
		--chain data/nifty_chain_features_daily_2023-08_2026-02.csv --out docs/evaluation/chain

# Direction candidates (logistic regression, positioning corrections) on the folds of both
# runs above, beside climatology and the current model (docs/MODELS.md "Candidate gate").
evaluate-direction: $(STAMP)
	$(PY) -m services.trainer evaluate-direction --runs docs/evaluation docs/evaluation/later \
		--nifty data/nifty50_daily.csv data/nifty50_daily_2025-07_2026-02.csv \
		--vix data/india_vix_daily.csv data/india_vix_daily_2025-07_2026-02.csv \
		--chain data/nifty_chain_features_daily_2023-08_2026-02.csv \
		--participants data/nse_participant_oi_daily_2024-09_2026-02.csv \
		--futures data/nifty_futures_daily_2024-09_2026-02.csv --out docs/evaluation/direction_candidates

# Chain inputs as corrections of the volatility signals on the chain days of both runs above,
# beside the VIX and straddle baselines (docs/MODELS.md "Volatility chain gate").
evaluate-vol-chain: $(STAMP)
	$(PY) -m services.trainer evaluate-vol-chain --runs docs/evaluation docs/evaluation/later \
		--chain data/nifty_chain_features_daily_2023-08_2026-02.csv \
		--participants data/nse_participant_oi_daily_2024-09_2026-02.csv \
		--futures data/nifty_futures_daily_2024-09_2026-02.csv --out docs/evaluation/vol_chain

bench: $(STAMP)
	for b in bench/bench_*.py; do $(PY) -m bench.$$(basename $$b .py) || exit 1; done

clean:
	rm -rf var .pytest_cache
