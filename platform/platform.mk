# Platform mode (platform/README.md): the team platform of compose.yaml, and the levels pointed at it.
# Included by the root Makefile. `make level2 PLATFORM=1` (3, 4): the same level, with these settings exported
# to it (sub-makes inherit exported variables); nothing else changes.
PLATFORM ?=
COMPOSE ?= docker compose
# the compose project: its containers, network and volumes are named after it
COMPOSE_PROJECT ?= mlops-platform
PLATFORM_COMPOSE = $(COMPOSE) -p $(COMPOSE_PROJECT)

# The secrets and ports (.env, from .env.example). make reads the file as plain KEY=value lines.
-include .env
POSTGRES_USER ?= platform
POSTGRES_PORT ?= 5432
MLFLOW_PORT ?= 5000
PREFECT_PORT ?= 4200

# compose.yaml's worker mounts this checkout at the same path and runs as your user: prefect.yaml's pull step
# (LEVELS_ROOT) and the folders in the levels' Prefect events are the same on both sides
# (exported to the platform's own targets only: `make test` and the levels never see them)
PLATFORM_TARGETS := platform-up platform-down platform-clean platform-status platform-deploy platform-serve
$(PLATFORM_TARGETS): export LEVELS_ROOT := $(CURDIR)
$(PLATFORM_TARGETS): export PLATFORM_UID := $(shell id -u)
$(PLATFORM_TARGETS): export PLATFORM_GID := $(shell id -g)

# the platform as the host sees it (published on 127.0.0.1)
PLATFORM_MLFLOW := http://127.0.0.1:$(MLFLOW_PORT)
PLATFORM_PREFECT := http://127.0.0.1:$(PREFECT_PORT)/api
PLATFORM_PG = postgresql+psycopg://$(POSTGRES_USER):$(POSTGRES_PASSWORD)@127.0.0.1:$(POSTGRES_PORT)
PLATFORM_STATUS = $(UV) run python platform/status.py --mlflow $(PLATFORM_MLFLOW) --prefect $(PLATFORM_PREFECT) --postgres $(PLATFORM_PG)/mlflow

ifeq ($(PLATFORM),1)
$(if $(wildcard .env),,$(error PLATFORM=1: no .env here - cp .env.example .env, set its passwords, then make platform-up))
# every level's own settings, nothing else: where MLflow and Prefect are, and a model name of its own per level
# (one shared registry: level 3's and level 4's stories start from an empty registered model)
export PREFECT_API_URL := $(PLATFORM_PREFECT)
export LEVEL2_TRACKING_URI := $(PLATFORM_MLFLOW)
export LEVEL2_MODEL_NAME := trip-duration-level2
export LEVEL2_EXPERIMENT := trip-duration-level2
export LEVEL3_TRACKING_URI := $(PLATFORM_MLFLOW)
export LEVEL3_MODEL_NAME := trip-duration-level3
export LEVEL3_EXPERIMENT := trip-duration-level3
export LEVEL4_TRACKING_URI := $(PLATFORM_MLFLOW)
export LEVEL4_MODEL_NAME := trip-duration-level4
export LEVEL4_EXPERIMENT := trip-duration-level4
export LEVEL4_PREDICTION_STORE := $(PLATFORM_PG)/predictions
$(info platform mode: MLflow $(PLATFORM_MLFLOW), Prefect $(PLATFORM_PREFECT), level 4's store PostgreSQL 127.0.0.1:$(POSTGRES_PORT)/predictions)
endif

.PHONY: platform-up platform-down platform-clean platform-status platform-deploy platform-serve platform-env

platform-env: # .env must exist (compose.yaml reads its passwords)
	$(if $(wildcard .env),,$(error no .env here: cp .env.example .env, then set its passwords))

platform-up: setup platform-env ## the team platform (compose.yaml): PostgreSQL, MLflow, Prefect server + worker; waits until healthy
	$(PLATFORM_COMPOSE) up -d --build
	$(PLATFORM_STATUS) --wait 300

platform-status: setup platform-env ## each part of the platform: up or not, and its containers
	$(PLATFORM_COMPOSE) ps
	$(PLATFORM_STATUS)

platform-deploy: setup platform-env ## prefect.yaml's deployments (level 2 nightly, level 3 on demand, level 4 monthly + on-breach) on the work pool
	PREFECT_API_URL=$(PLATFORM_PREFECT) $(UV) run prefect --no-prompt deploy --all

platform-serve: platform-env ## the level services from the registry (compose profile `services`), once each level has released a model
	$(PLATFORM_COMPOSE) --profile services up -d

platform-down: platform-env ## stop the platform (its data stays in the volumes)
	$(PLATFORM_COMPOSE) --profile services down

platform-clean: platform-env ## stop the platform and delete its volumes: databases, registry, artifacts
	$(PLATFORM_COMPOSE) --profile services down -v
