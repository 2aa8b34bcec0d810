# streamml — run `make help` for the targets.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin

.PHONY: help install kafka kafka-stop topics up down status demo test unit lint typecheck schemas clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

install: ## Create .venv and install streamml with its dev tools (and kcat/prometheus as root)
	@scripts/install.sh

kafka: install ## Start the local Kafka broker on 127.0.0.1:9092 (fetched from Maven Central)
	@$(BIN)/streamml kafka start

kafka-stop: ## Stop the local Kafka broker
	@$(BIN)/streamml kafka stop

topics: kafka ## Create the pipeline's topics
	@$(BIN)/streamml topics create

up: kafka ## Start all five services as supervised processes (logs in .streamml/logs)
	@$(BIN)/streamml up

down: ## Stop the services
	@$(BIN)/streamml down

status: ## Show which services run and are healthy
	@$(BIN)/streamml status

demo: install ## Broker + all services + the clicks scenario with a drift (2.5 min), then a summary
	@$(BIN)/streamml demo

test: ## Lint, type-check, and run every test against a real local broker
	@scripts/test.sh

unit: install ## Only the unit tests (no broker)
	@$(BIN)/pytest tests/unit

lint: install ## ruff
	@$(BIN)/ruff check schemas services tests

typecheck: install ## mypy --strict
	@$(BIN)/mypy

schemas: install ## Regenerate schemas/jsonschema from the pydantic models
	@$(BIN)/python -m schemas.generate

clean: down kafka-stop ## Stop everything and delete local state (keeps the Kafka jar cache)
	rm -rf .streamml
