# MLOps maturity levels 0-4: one model, five ways to ship it.  `make` lists the targets.
# Each recipe line is one plain command: what a target does is readable here, the logic lives in the CLIs.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# uv from PATH, or the copy `make setup` installs with pip
HAVE_UV := $(shell command -v uv 2>/dev/null || python3 -m uv --version 2>/dev/null)
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
LEVEL_DIRS := $(sort $(wildcard level[0-4]_*))
PYTEST_ARGS ?=
# which `make levelN` wall times `make bench` measures: all levels present, a list (LEVELS="1 2"), or none (LEVELS=)
LEVELS ?= all
# platform mode: make platform-up / platform-status / platform-down, and `make level2 PLATFORM=1` (3, 4) on it
include platform/platform.mk

.PHONY: help setup test lint format data baseline demo bench clean export-level level0 level1 level2 level3 level4

help: ## list the targets
	@echo "MLOps maturity levels 0-4 -- targets:"
	@grep -hE '^[a-zA-Z0-9_ -]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{n = $$1; if (n ~ / /) n = "level0..4"; printf "  make %-14s %s\n", n, $$2}'
	@echo "levels present: $(LEVEL_DIRS)"

# --compile-bytecode: this kind of machine sets PYTHONDONTWRITEBYTECODE, and without .pyc files every dvc or
# mlflow command would spend a second compiling its imports. --extra postgres: level 4's PostgreSQL driver (psycopg),
# which its prediction store tests use against a real server
# The stamp makes a second `make setup` (every `make levelN` starts with one) free until uv.lock or a
# pyproject.toml changes: compiling the bytecode again would cost seconds each time. `python -m
# taxi.pipeline.prefect_server`: an empty Prefect database, migrated once into .venv/var/taxi/ (~20 s); the local
# Prefect server of `make level3` / `make level4` starts from a copy of it instead of migrating (~8 s less each run).
setup: .venv/.setup-done ## install uv if missing, then every workspace package from uv.lock

.venv/.setup-done: uv.lock pyproject.toml $(wildcard */pyproject.toml)
	$(if $(HAVE_UV),,python3 -m pip install --quiet uv)
	$(UV) sync --all-packages --extra postgres --locked --compile-bytecode -q
	$(UV) run python -m taxi.pipeline.prefect_server
	@touch $@ 2>/dev/null || true  # no .venv here: make bench's copy of the tree syncs the root's

test: setup ## run all tests: shared package, every level, cross-level
	$(UV) run pytest $(PYTEST_ARGS)

lint: setup $(addprefix lint-,$(LEVEL_DIRS)) ## ruff lint + format check, declared = imported dependencies (deptry) everywhere
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run deptry shared --config shared/pyproject.toml

lint-%: # one level's own lint (ruff, deptry, its own linters)
	$(MAKE) --no-print-directory -C $* lint

format: setup ## ruff fix + format
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

data: setup ## write a year of synthetic months (drift scenario) into data/
	$(UV) run taxi-data generate --month 2024-01 --months 12 --scenario drift --out data

baseline: setup ## the shared model trained on 2024-01, evaluated on 2024-02, beside the course baseline
	@echo "== the shared model: trained on 2024-01, evaluated on 2024-02 (synthetic data) =="
	$(UV) run taxi-data baseline

demo: baseline $(addprefix run-,$(LEVEL_DIRS)) ## the main job: the shared model's baseline, then every level, in order

run-%: # one level end to end, with a heading
	@printf '\n== %s ==\n' "$*"
	$(MAKE) --no-print-directory -C $* run

level0 level1 level2 level3 level4: setup ## run one level end to end (make level0 ... make level4)
	$(if $(wildcard $@_*),,$(error $@ does not exist yet: see the open issues))
	$(MAKE) --no-print-directory -C $(firstword $(wildcard $@_*)) run

bench: setup ## serving benchmark (one model, every path) + levelN wall times -> bench/results.md (LEVELS="1 2"; LEVELS= skips)
	$(UV) run python scripts/bench.py --levels "$(LEVELS)"

export-level: setup ## copy a level out as a standalone project: make export-level LEVEL=1 DEST=../my-project
	$(if $(and $(LEVEL),$(DEST)),,$(error usage: make export-level LEVEL=N DEST=dir))
	$(UV) run python scripts/export_level.py $(LEVEL) $(DEST)

clean: $(addprefix clean-,$(LEVEL_DIRS)) ## remove runtime state of every level (data, models, runs); keeps .venv
	rm -rf data .pytest_cache .ruff_cache

clean-%: # one level's runtime state
	$(MAKE) --no-print-directory -C $* clean
