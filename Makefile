# MLOps maturity levels 0-4: one model, five ways to ship it.  `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# uv from PATH, or the copy `make setup` installs with pip
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
LEVEL_DIRS := $(sort $(wildcard level[0-4]_*))
PYTEST_ARGS ?=

.PHONY: help setup test lint format data demo clean export-level level0 level1 level2 level3 level4 bench

help: ## list the targets
	@echo "MLOps maturity levels 0-4 -- targets:"
	@grep -hE '^[a-zA-Z0-9_ -]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{n = $$1; if (n ~ / /) n = "level0..4"; printf "  make %-14s %s\n", n, $$2}'
	@echo "levels present: $(if $(LEVEL_DIRS),$(LEVEL_DIRS),none yet)"

# --compile-bytecode: this kind of machine sets PYTHONDONTWRITEBYTECODE, and without .pyc files every dvc or
# mlflow command would spend a second compiling its imports
setup: ## install uv if missing, then every workspace package from uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --all-packages --locked --compile-bytecode -q

test: setup ## run all tests: shared package, every level, cross-level
	$(UV) run pytest $(PYTEST_ARGS)

lint: setup ## ruff lint + format check
	$(UV) run ruff check .
	$(UV) run ruff format --check .

format: setup ## ruff fix + format
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

data: setup ## write a year of synthetic months (drift scenario) into data/
	$(UV) run taxi-data generate --month 2024-01 --months 12 --scenario drift --out data

demo: setup ## the main job: the shared model's baseline, then every level that exists, in order
	@echo "== the shared model: trained on 2024-01, evaluated on 2024-02 (synthetic data) =="
	$(UV) run taxi-data baseline
	@for dir in $(LEVEL_DIRS); do echo; echo "== $$dir =="; $(MAKE) --no-print-directory -C $$dir run || exit 1; done

level0 level1 level2 level3 level4: setup ## run one level end to end (make level0 ... make level4)
	@dir="$(firstword $(wildcard $@_*))"; \
	if [ -z "$$dir" ]; then echo "$@ does not exist yet: see the open issues"; exit 1; fi; \
	$(MAKE) --no-print-directory -C $$dir run

export-level: setup ## copy a level out as a standalone project: make export-level LEVEL=1 DEST=../my-project
	@test -n "$(LEVEL)" -a -n "$(DEST)" || { echo "usage: make export-level LEVEL=N DEST=dir"; exit 2; }
	$(UV) run python scripts/export_level.py $(LEVEL) $(DEST)

clean: ## remove runtime state of every level (data, models, runs); keeps .venv
	@for dir in $(LEVEL_DIRS); do $(MAKE) --no-print-directory -C $$dir clean; done
	rm -rf data .pytest_cache .ruff_cache
