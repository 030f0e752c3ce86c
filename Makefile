# pvcast — every developer and CI entry point. `make demo` and `make test` need nothing installed by hand.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 3000
TEST_REDIS_URL ?= $(or $(PVCAST_TEST_REDIS_URL),redis://127.0.0.1:6379/15)
PYTEST_ARGS ?=

.PHONY: help install demo serve stop test lint typecheck pytest redis bento clean validate-infra loadtest nginx bench-serve

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# The CPU build of torch first (pip finds the local CPU wheel); nothing may then pull a CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[train,dev]'
	touch $@

install: $(VENV)/.installed  ## create .venv with pvcast, its training extras and dev tools

demo: install  ## build the synthetic demo, train, promote, serve on PORT (default 3000) and print a curl
	$(BIN)/pvcast demo
	$(BIN)/python -m service.launch start --port $(PORT)

serve: install  ## (re)start the service on PORT with the current production model
	$(BIN)/python -m service.launch start --port $(PORT)

stop: install  ## stop the service started by `make demo` / `make serve`
	$(BIN)/python -m service.launch stop

redis: install  ## make sure a Redis answers for the tests (starts redis-server if installed and none runs)
	@if $(BIN)/python -c "import redis,sys; redis.Redis.from_url('$(TEST_REDIS_URL)', socket_timeout=2).ping()" 2>/dev/null; then \
		echo "redis: using $(TEST_REDIS_URL)"; \
	elif command -v redis-server >/dev/null; then \
		echo "redis: none answers at $(TEST_REDIS_URL); starting redis-server on 127.0.0.1:6379"; \
		redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no; sleep 1; \
	else \
		echo "redis: none answers at $(TEST_REDIS_URL) and redis-server is not installed."; \
		echo "       start one (e.g. 'redis-server --daemonize yes') or set PVCAST_TEST_REDIS_URL."; exit 1; \
	fi

lint: install  ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install  ## mypy
	$(BIN)/mypy

pytest: install redis nginx  ## the test suite only
	PVCAST_TEST_REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck validate-infra pytest  ## everything CI runs: lint, types, infra validation, all tests

bench-serve: install redis  ## serving benchmark (2 workers, as a pod) on the real Redis (db 10, flushed) -> bench-serve.json
	$(BIN)/python -m service.bench --redis-db 10 --workers 2

bento: install  ## build the service bento (the service image's content; containerize where Docker runs)
	$(BIN)/bentoml build

validate-infra:  ## offline checks of k8s/ and terraform/: kustomize, k8s 1.32 strict schemas, checkov, terraform fmt
	bash .ci/validate-infra.sh

nginx:  ## make sure nginx is installed (the load balancer of the emulation tests in tests/deploy)
	@if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "nginx: installing the Debian package (needed by tests/deploy)"; \
		apt-get install -y -qq nginx >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq nginx >/dev/null; }; \
	else \
		echo "nginx: NOT installed and apt-get is unavailable (or not root): the emulation tests will skip (fail on CI)."; \
	fi

TARGET_URL ?= http://127.0.0.1:$(PORT)
LOADTEST_USERS ?= 20
LOADTEST_SPAWN_RATE ?= 5
LOADTEST_TIME ?= 60s
SLO_P95_MS ?= 200
LOADTEST_OUT ?= build/loadtest

loadtest: install  ## Locust headless against TARGET_URL for LOADTEST_TIME; CSV + HTML in build/loadtest; fails above the SLO
	@mkdir -p $(LOADTEST_OUT)
	PVCAST_SLO_P95_MS=$(SLO_P95_MS) $(BIN)/locust -f loadtests/locustfile.py --headless --only-summary \
		--host $(TARGET_URL) -u $(LOADTEST_USERS) -r $(LOADTEST_SPAWN_RATE) -t $(LOADTEST_TIME) \
		--csv $(LOADTEST_OUT)/pvcast --html $(LOADTEST_OUT)/report.html

clean:  ## remove the demo's data, reports and the virtualenv
	rm -rf $(VENV) .pvcast feature_repo/data
