# detlab — the two commands: `make run` (install what is missing, build, launch the app)
# and `make test` (the same install, then the whole test suite). See README.md.

DETLAB_HOME ?= $(HOME)/.cache/detlab
DETLAB_VENV ?= $(DETLAB_HOME)/venv
export DETLAB_HOME DETLAB_VENV
export CARGO_TARGET_DIR ?= $(DETLAB_HOME)/target
export VIRTUAL_ENV := $(DETLAB_VENV)
export LIBTORCH_USE_PYTORCH := 1
export PATH := $(DETLAB_VENV)/bin:$(PATH)
export DETLAB_PYTHON := $(DETLAB_VENV)/bin/python
# Tests: one libtorch thread each, two test threads on a 2-core machine.
TEST_THREADS ?= 2

.PHONY: run test setup build bench lint

run: setup
	cargo run --quiet -- $(ARGS)

test: setup
	cargo test -- --test-threads=$(TEST_THREADS)

setup:
	@bash scripts/setup.sh

build: setup
	cargo build

bench: setup
	cargo run --release -- bench $(ARGS)

lint: setup
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo check --no-default-features --lib
	cargo clippy --no-default-features --lib -- -D warnings
