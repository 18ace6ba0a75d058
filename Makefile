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

.PHONY: run test setup build bench lint screenshot fuzz

# Two packages, two builds: the light `detlab` front must be built on its own, without
# libtorch (see front/Cargo.toml); `detlab-torch` beside it runs networks and the app.
BUILD = cargo build -p detlab-front $(1) && cargo build $(1)

run: setup
	$(call BUILD,--quiet)
	"$(CARGO_TARGET_DIR)/debug/detlab" $(ARGS)

test: setup
	cargo build -p detlab-front
	cargo test -- --test-threads=$(TEST_THREADS)

setup:
	@bash scripts/setup.sh

build: setup
	$(call BUILD,)

# Every benchmark of BENCHMARKS.md, in release, one after the other.
BIN = $(CARGO_TARGET_DIR)/release/detlab
BENCH_DIR = $(DETLAB_HOME)/bench
bench:
	@bash scripts/setup.sh --bench
	$(call BUILD,--release)
	$(BIN) bench export
	$(BIN) bench gui
	$(BIN) bench gallery
	$(BIN) bench review
	$(BIN) bench detector --threads 1,2 --iterations 9
	cargo bench --bench eval
	rm -rf $(BENCH_DIR) && $(BIN) demo --out $(BENCH_DIR)/shelf --images 48 --seed 1
	$(BIN) demo --out $(BENCH_DIR)/demo40 --images 40 --seed 3
	$(BIN) bench labelling --images $(BENCH_DIR)/demo40 --no-model
	[ ! -d ../shared/datasets/cola-sprite ] || $(BIN) bench labelling \
		--images ../shared/datasets/cola-sprite/val --labels ../shared/datasets/cola-sprite/annotations
	$(BIN) train --data $(BENCH_DIR)/shelf --out $(BENCH_DIR)/lite0 --model lite0 --batch 4 \
		--threads 1 --epochs 1 --max-steps 12 --no-val
	$(BIN) train --data $(BENCH_DIR)/shelf --out $(BENCH_DIR)/d0 --model d0 --from-scratch \
		--batch 4 --threads 1 --epochs 1 --max-steps 6 --no-val
	bash scripts/bench_startup.sh $(CARGO_TARGET_DIR)/release

screenshot: build
	bash scripts/screenshot.sh docs/screenshot.png

lint: setup
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo check --no-default-features --lib
	cargo clippy --no-default-features --lib -- -D warnings
	cargo clippy -p detlab-front -- -D warnings

# Every fuzz target for FUZZ_SECONDS each, one after the other (nightly + cargo-fuzz; see
# README.md, "Hardening"). The sanitizer build goes to its own target folder.
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= voc yolo createml coco eval_gt results checkpoint
fuzz:
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		cargo +nightly fuzz run --target-dir $(DETLAB_HOME)/fuzz-target $$t -- \
			-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -max_len=65536 || exit 1; \
	done
