# riskwire — `make run` serves the app, `make test` runs every check. Both set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint typecheck unit format clean bench train notebooks

$(STAMP): pyproject.toml setup.py service/_reuse_native.c
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Serve on 127.0.0.1:8000 (RISKWIRE_HOST / RISKWIRE_PORT); starts an embedded Redis if none answers.
run: $(STAMP)
	$(BIN)/python -m service run

## Lint, type-check and the whole test suite (real Redis: see README "Tests").
test: lint typecheck
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check service tests
	$(BIN)/ruff format --check service tests

typecheck: $(STAMP)
	$(BIN)/mypy

## Load riskwire and a bare Litestar baseline with wrk; prints ratios, updates docs/BENCHMARKS.md.
bench: $(STAMP)
	$(BIN)/python -m service.bench

## Simulate the default traffic, train and compare models, write models/risk-model.json + manifest.
train: $(STAMP)
	$(BIN)/python -m service train

## Execute notebooks/train_risk_model.ipynb headless, in place (it calls the same training code).
notebooks: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,notebooks]'
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=600 notebooks/train_risk_model.ipynb

format: $(STAMP)
	$(BIN)/ruff format service tests
	$(BIN)/ruff check --fix service tests

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
