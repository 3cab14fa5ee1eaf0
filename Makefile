# Parley: `make up` runs the fleet, `make test` passes the tests. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := $(shell scripts/ensure-uv 2>/dev/null || echo uv)
RUN := $(UV) run --frozen
export UV_PYTHON_DOWNLOADS ?= never
export UV_PYTHON_PREFERENCE ?= only-system
PY_PATHS := cli contracts shared services tests bench conftest.py

.PHONY: help install up down test lint format typecheck imports contracts-check contracts-export deploy-test \
        check-deploy pytest test-containers web cluster-up cluster-down cluster-status bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

install: ## Install every package of the workspace from the lock file (into .venv)
	@$(UV) sync --frozen

up: install ## Run the fleet: local Redis Cluster + the five services (Ctrl-C stops all)
	@$(RUN) parley up

down: ## Stop the local Redis Cluster (the fleet itself stops with Ctrl-C)
	@$(RUN) parley cluster down

test: install lint typecheck imports contracts-check check-deploy pytest ## Every gate and every test

lint: ## ruff: lint and format check
	@$(RUN) ruff check $(PY_PATHS)
	@$(RUN) ruff format --check $(PY_PATHS)

format: ## ruff: fix what can be fixed and format
	@$(RUN) ruff check --fix $(PY_PATHS)
	@$(RUN) ruff format $(PY_PATHS)

typecheck: ## mypy --strict over every package
	@$(RUN) mypy cli/src contracts/src shared/src services/auth/src services/user/src \
	  services/chat/src services/notification/src services/gateway/src

imports: ## import-linter: layer rules and no service importing another
	@$(RUN) lint-imports

# Schema revisions committed at this revision and its ancestors must all stay in the history
# (a branch's CI may set it to its merge base: make contracts-check CONTRACTS_BASE=$(git merge-base ...)).
CONTRACTS_BASE ?= HEAD

contracts-check: ## Fail on an incompatible, unexported or hand-edited schema, an invalid asyncapi.json, or stale ACL files
	@$(RUN) parley contracts check --git-base $(CONTRACTS_BASE)
	@$(RUN) parley acl check

contracts-export: ## Write contracts/schemas, docs/asyncapi.json, deploy/redis/users.acl and the Terraform ACL users from the code
	@$(RUN) parley contracts export
	@$(RUN) parley acl export

check-deploy: ## Validate compose.yaml, the Dockerfile, ACLs, monitoring files, Kubernetes manifests and Terraform (no Docker needed)
	@$(RUN) check-jsonschema --builtin-schema vendor.compose-spec compose.yaml
	@$(RUN) pytest -q -p no:cacheprovider tests/deploy

pytest: ## The test suites (unit, integration, e2e) against a real test cluster on 7101-7106
	@$(RUN) pytest --ignore=tests/deploy --ignore=tests/deploy_live; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here" >&2; exit 1; fi; \
	  exit $$rc

CONTAINER_PORTS := PARLEY_TEST_CLUSTER_PORTS=7161-7166 PARLEY_TEST_SPARE_PORTS=7171-7176 \
  PARLEY_TEST_E2E_PORTS=7181-7186

# The monitoring test (Prometheus and Alertmanager around the fleet) runs once, in `make pytest`:
# where the cluster's nodes run changes nothing it checks.
test-containers: install ## The shared integration and e2e suites on a cluster of containers (Docker: scripts/ensure-docker)
	@PARLEY_TEST_DOCKER=1 $(CONTAINER_PORTS) $(RUN) pytest -p no:cacheprovider \
	  shared/tests/integration tests/e2e --ignore=tests/e2e/test_monitoring.py \
	  --ignore=tests/e2e/test_tracing.py; rc=$$?; \
	  ids=$$(docker ps -aq --filter label=parley.cluster 2>/dev/null); \
	  [ -z "$$ids" ] || docker rm -f $$ids >/dev/null; exit $$rc

deploy-test: install ## The compose fleet built (scripts/build-images) and run in containers: tests/deploy_live
	@PARLEY_TEST_REDIS_IMAGE=$$(scripts/ensure-docker start) && \
	  PARLEY_TEST_DEPLOY_LIVE_PORTS=$${PARLEY_TEST_DEPLOY_LIVE_PORTS:-7187-7190} \
	  $(RUN) pytest -p no:cacheprovider -x tests/deploy_live

web: ## Build the browser client (web/) into the gateway's committed bundle (needs node and npm)
	@cd web && npm ci --no-audit --no-fund && npm run build

cluster-up: ## Start (or repair) the local Redis Cluster on 7001-7006
	@$(RUN) parley cluster up

cluster-down: ## Stop the local Redis Cluster
	@$(RUN) parley cluster down

cluster-status: ## Show each node's role, slots and health
	@$(RUN) parley cluster status

bench: ## Run every benchmark under bench/ (prints tables and a JSON line each; ws_bare.py is ws_scale.py's baseline server)
	@for b in $(filter-out bench/ws_bare.py,$(wildcard bench/*.py)); do echo "== $$b"; $(RUN) python $$b || exit 1; done

clean: ## Stop local clusters and delete .parley/ (cluster data, SQLite files)
	@$(RUN) parley cluster reset || true
	@rm -rf .parley
