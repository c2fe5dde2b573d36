# SHMS — developer entry points. `make` (or `make help`) lists the targets.
#
# The database: every target that needs one goes through scripts/with-db.sh,
# which uses $DATABASE_URL when set and otherwise starts a project-local
# PostgreSQL cluster (scripts/pg.sh, data in .pg/) and stops it afterwards
# if it was not already running. See DESIGN.md §8.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Recipes refer to scripts relative to the repository, also under `make -C`.
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

CARGO ?= cargo
# Same default as cargo itself (the workspace's target/), so `make build` and a
# plain `cargo build` share one build cache; honour CARGO_TARGET_DIR if set.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(ROOT)/target)
BIN := $(TARGET_DIR)/release/shms

WITH_DB := $(ROOT)/scripts/with-db.sh
PG := $(ROOT)/scripts/pg.sh
DB_NAME := shms

.PHONY: build run test lint fmt fuzz fuzz-short bench stress stress-short ci-extra check help db-start db-stop db-url psql clean-db

build: ## Build the release binary (target/release/shms)
	$(CARGO) build --release -p shms-server

# `exec ... serve`: the server replaces the wrapper shell, so it is the process
# with-db.sh forwards signals to (Ctrl-C / TERM => graceful shutdown).
# seed-demo prints the demo logins; its admin is SHMS_ADMIN_EMAIL/SHMS_ADMIN_PASSWORD
# when set, else admin@demo.shms.local with the demo password.
run: build ## Migrate, load demo data and serve on 127.0.0.1:8080 (SHMS_BIND to change)
	$(WITH_DB) bash -c '"$$0" migrate && "$$0" seed-demo && exec "$$0" serve' "$(BIN)"

# Plain `cargo test` even where cargo-nextest exists: the tests rely on one
# process per test binary (shared migrated template database).
test: lint ## Lint, then run all tests against a fast (non-durable) test cluster
	SHMS_PG_FAST=1 $(WITH_DB) $(CARGO) test --workspace --all-targets --locked

# The domain must stay reusable behind any frontend: no database or HTTP crate in its tree.
DOMAIN_FORBIDDEN := diesel|diesel-async|axum|tokio-postgres|deadpool|tokio

lint: ## cargo fmt --check, clippy with warnings denied, domain purity
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	@if $(CARGO) tree -p shms-domain -e normal --prefix none --locked | grep -E '^($(DOMAIN_FORBIDDEN)) v[0-9]'; then \
	  echo "shms-domain must not depend on the crates above" >&2; exit 1; \
	else echo "shms-domain: no database, HTTP or runtime dependencies"; fi

fmt: ## Format all code
	$(CARGO) fmt --all

fuzz: ## schemathesis against the served OpenAPI document, as admin, doctor and patient (FUZZ_EXAMPLES=25)
	$(CARGO) build -p shms-server
	$(WITH_DB) $(ROOT)/scripts/fuzz.sh

fuzz-short: ## The shortened fuzz pass of CI (FUZZ_EXAMPLES=5)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-5} $(MAKE) --no-print-directory fuzz

LOAD_BIN := $(TARGET_DIR)/release/shms-load

# Release builds: figures of a debug build say nothing. A durable cluster (not SHMS_PG_FAST):
# the booking's cost is mostly its commit.
bench: ## pgbench vs the API on a generated calendar; writes docs/performance.md
	$(CARGO) build --release --locked -p shms-server -p shms-loadgen
	$(WITH_DB) $(ROOT)/scripts/bench.sh

stress: ## Contention, SIGKILL, database outage and idempotent retries; writes docs/reliability.md
	$(CARGO) build --release --locked -p shms-server -p shms-loadgen
	$(WITH_DB) $(ROOT)/scripts/stress.sh

# The CI race pass: debug binaries (their dependencies are built by `make test` already),
# fewer attempts, no report. SHMS_PG_FAST=1 like `make test`, also across the restart.
stress-short: ## The shortened stress pass of CI (debug build, a few thousand attempts)
	$(CARGO) build --locked -p shms-server -p shms-loadgen
	SHMS_PG_FAST=1 STRESS_SHORT=1 SHMS_BIN=$(TARGET_DIR)/debug/shms SHMS_LOAD_BIN=$(TARGET_DIR)/debug/shms-load \
	  $(WITH_DB) $(ROOT)/scripts/stress.sh

ci-extra: fuzz-short stress-short ## What .ci/run adds after `make test`

check: build ## Run `shms check` against the database
	$(WITH_DB) "$(BIN)" check

help: ## List targets
	@echo "Targets:"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN { FS = ":.*## " } { printf "  %-10s %s\n", $$1, $$2 }'
	@echo
	@echo "Environment: DATABASE_URL (use this server instead of the project cluster),"
	@echo "  SHMS_KEEP_DB=1 (leave an auto-started cluster running), CARGO, CARGO_TARGET_DIR."

db-start: ## Start the project cluster (keeps running) and print its DATABASE_URL
	@url=$$($(PG) start) && $(PG) ensure-db $(DB_NAME) && echo "$$url/$(DB_NAME)"

db-stop: ## Stop the project cluster
	@$(PG) stop

db-url: ## Print the project cluster's DATABASE_URL (if running)
	@url=$$($(PG) url) && echo "$$url/$(DB_NAME)"

psql: ## Open psql on the database (starts the cluster for the session if needed)
	@$(WITH_DB) bash -c 'exec psql "$$DATABASE_URL"'

clean-db: ## Stop the project cluster and delete its data
	$(PG) destroy
