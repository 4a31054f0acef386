# One entry point for everything. Every target sets itself up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SDK_VENV := .venv-sdk
SDK3_VENV := .venv-sdk3
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_CLI_TELEMETRY := true
# Python caches the bytecode of what it imports (in .venv and the project's
# __pycache__ folders, both ignored by git) even where PYTHONDONTWRITEBYTECODE
# is set: otherwise every run, test worker and subprocess compiles its imports
# again (about 10 s of CPU each).
unexport PYTHONDONTWRITEBYTECODE
ARGS ?=
export ARGS
PYTEST_ARGS ?=
PACKAGES := pipeline_core lambdas stacks training local bench app.py

.PHONY: help setup setup-run run services test check lint lock synth bootstrap deploy destroy bench clean clean-runs

help:
	@echo "make run     run the whole pipeline locally (ARGS='--input {...} --out DIR --serve')"
	@echo "make services start a local AWS account until Ctrl-C (ARGS='--env-file .local-aws.env')"
	@echo "make test    set up and run the test suite"
	@echo "make check   ruff format --check, ruff check, mypy --strict, then the tests"
	@echo "make synth   synthesize the CloudFormation template into cdk.out/"
	@echo "make bootstrap cdk bootstrap (once per account and region)"
	@echo "make deploy  cdk deploy (needs AWS credentials)"
	@echo "make destroy cdk destroy"
	@echo "make bench   run the benchmarks and rewrite BENCHMARKS.md"
	@echo "make clean-runs delete runs/ (every local run's output folder)"
	@echo "make lock    regenerate lambdas/requirements.lock (hash-pinned Lambda deps, uv)"

# uv (pinned in requirements-dev.txt) installs in seconds what pip installs in
# minutes. It is bootstrapped once into .venv by the system's pip (`pip
# --python`; .venv's own pip, pinned in requirements.txt, comes with the
# runtime packages), and fills every venv from there; where it cannot be
# installed, pip does the work as before.
UV_PIN := $(shell sed -n 's/^\(uv==[^ ]*\).*/\1/p' requirements-dev.txt)
UV := $(VENV)/bin/uv
# $(call install,<venv python>,<requirements file>[,<uv option>])
# uv first tries its download cache alone (no index round trips: on a machine
# that installed these pins before, a fresh clone sets up in seconds), then the
# index. The SDK venvs are made without pip (uv needs none); the pip fallback
# adds it. Nothing is compiled at install (all of .venv is about 60 s of CPU on
# 2 cores): Python compiles what a run or a test imports, once, and caches it
# (see PYTHONDONTWRITEBYTECODE above).
install = { test -x $(UV) || $(PYTHON) -m pip --python $(PY) install --quiet --disable-pip-version-check "$(UV_PIN)" \
	       || { $(PY) -m ensurepip --default-pip >/dev/null && $(PY) -m pip install --quiet --disable-pip-version-check "$(UV_PIN)"; }; } \
	&& { $(UV) pip install --quiet --offline $(3) --python $(1) -r $(2) 2>/dev/null \
	     || $(UV) pip install --quiet $(3) --python $(1) -r $(2); } \
	|| { { $(1) -m pip --version >/dev/null 2>&1 || $(1) -m ensurepip --upgrade --default-pip; } \
	     && $(1) -m pip install --quiet --disable-pip-version-check -r $(2); }

$(VENV)/.run-stamp: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv --without-pip $(VENV)
	$(call install,$(PY),requirements.txt)
	touch $@

$(VENV)/.dev-stamp: $(VENV)/.run-stamp requirements-dev.txt
	$(call install,$(PY),requirements-dev.txt)
	touch $@

$(SDK_VENV)/.stamp: requirements-sdk.txt | $(VENV)/.run-stamp
	test -x $(SDK_VENV)/bin/python || $(PYTHON) -m venv --without-pip $(SDK_VENV)
	$(call install,$(SDK_VENV)/bin/python,requirements-sdk.txt)
	touch $@

$(SDK3_VENV)/.stamp: requirements-sdk3.txt | $(VENV)/.run-stamp
	test -x $(SDK3_VENV)/bin/python || $(PYTHON) -m venv --without-pip $(SDK3_VENV)
	$(call install,$(SDK3_VENV)/bin/python,requirements-sdk3.txt)
	touch $@

node_modules/.stamp: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup-run: $(VENV)/.run-stamp
# The venvs and node_modules fill side by side once .venv (and uv) exist.
SETUP_STAMPS := $(VENV)/.dev-stamp $(SDK_VENV)/.stamp $(SDK3_VENV)/.stamp node_modules/.stamp
setup: $(VENV)/.run-stamp
	@$(MAKE) --no-print-directory -j4 $(SETUP_STAMPS)

# ARGS goes through the environment, not the shell, so JSON keeps its quotes.
run: setup-run
	MNIST_LL_MAKE_ARGS=1 $(PY) -m local

services: setup-run
	MNIST_LL_MAKE_ARGS=1 MNIST_LL_MAKE_COMMAND=services $(PY) -m local

# One worker more than the cores: the end-to-end tests spend much of their time
# waiting on local services, so a third worker on two cores shortens the run.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
# tests/prewarm.py runs once before the workers start: the local synth (the
# workers share its cache in .build/), and the bytecode of what the workers, the
# SDK venvs and cfn-lint import, compiled once instead of once per worker.
test: setup
	$(PY) -m tests.prewarm
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --strict $(PACKAGES)

check: lint test

# The Lambda bundle installs only from this lock (pip --require-hashes).
lock: setup
	$(PY) -m stacks.bundling lock

synth: setup-run node_modules/.stamp
	npx cdk synth --no-notices --quiet

bootstrap: setup-run node_modules/.stamp
	npx cdk bootstrap --no-notices

deploy: setup-run node_modules/.stamp
	npx cdk deploy --no-notices

destroy: setup-run node_modules/.stamp
	npx cdk destroy --no-notices

bench: setup
	$(PY) -m bench

clean:
	rm -rf cdk.out .build .pytest_cache .mypy_cache .ruff_cache

# Every local run's output folder (runs/<execution-name>/).
clean-runs:
	rm -rf runs
