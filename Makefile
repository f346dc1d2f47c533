# The two set-up commands of the README: `make run` and `make test`.

CARGO ?= cargo
VENV := .venv
MINISTACK_VERSION := 1.5.33
MINISTACK := $(VENV)/bin/ministack
# Root installs system packages directly; anyone else through sudo.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: run test lint fuzz bench availability redis elasticity bench-redis replay soak

## Run the cache: proxy + local Lambda platform + cache nodes (release build).
## Extra proxy flags: make run ARGS="--pool-size 24"
run:
	$(CARGO) build --release -p infinicache-proxy -p infinicache-node -p infinicache-cli
	./target/release/infinicache-proxy $(ARGS)

## Run the whole test suite: Rust (unit, property, end-to-end, the C binding's
## C and C++ programs), then the Python and Node.js bindings' suites.
## The end-to-end tests start the proxy, platform and node binaries (and the C
## tests link libinfinicache), so binaries and libraries are built first; the
## AWS-path tests deploy to the ministack Lambda emulator, installed into .venv.
test: $(MINISTACK) redis
	$(CARGO) build --workspace --bins --lib
	MINISTACK_BIN=$(abspath $(MINISTACK)) $(CARGO) test --workspace
	$(VENV)/bin/pip install --quiet --disable-pip-version-check ./python pytest
	$(VENV)/bin/python -m pytest python/tests -q
	cd node && INFINICACHE_NODE_PROFILE=debug npm install --no-audit --no-fund && npm test

## redis-server and redis-cli: the RESP frontend's tests drive it with
## redis-cli, and the benchmarks compare with redis-server (Debian packages).
redis:
	@command -v redis-cli >/dev/null && command -v redis-server >/dev/null || \
	  $(SUDO) apt-get install -y --no-install-recommends redis-server redis-tools || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends redis-server redis-tools; }

$(MINISTACK):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check ministack==$(MINISTACK_VERSION)

## Formatting and lints, as CI checks them.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Fuzzing: every libFuzzer target in fuzz/ (one per decoder of network or
## untrusted input) for FUZZ_SECONDS each, with nightly and cargo-fuzz (installed
## if missing). The committed seeds (fuzz/corpus/<target>) and crash inputs
## (fuzz/regressions/<target>) are read, never written: what the fuzzer finds
## goes to target/fuzz-corpus/<target>. A crash fails the run and leaves its
## input in fuzz/artifacts/<target>/; fix the decoder and keep the input in
## fuzz/regressions/<target>/, where `cargo test` runs it too.
## Options: make fuzz FUZZ_SECONDS=300 FUZZ_TARGETS=resp_requests
FUZZ_SECONDS ?= 20
FUZZ_TARGETS ?= $(notdir $(basename $(wildcard fuzz/fuzz_targets/*.rs)))
fuzz:
	@rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
	@$(CARGO) +nightly fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml --check
	$(CARGO) +nightly fuzz build
	@set -e; for target in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$target ($(FUZZ_SECONDS) s)"; \
	  mkdir -p target/fuzz-corpus/$$target; \
	  seeds="fuzz/corpus/$$target"; \
	  if [ -d fuzz/regressions/$$target ]; then seeds="$$seeds fuzz/regressions/$$target"; fi; \
	  $(CARGO) +nightly fuzz run $$target target/fuzz-corpus/$$target $$seeds -- \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1; \
	done

## Benchmarks: codec throughput (criterion) and end-to-end latency/throughput.
bench:
	$(CARGO) build --release --workspace --bins --lib
	$(CARGO) bench -p infinicache --bench codec
	$(CARGO) bench -p infinicache-tests --bench e2e

## The native protocol, the RESP frontend and redis-server side by side: GET
## and PUT latency percentiles and throughput per object size and
## concurrency, from one run on this machine; writes a table, CSV and SVG/PNG
## charts to target/experiments/bench. Needs redis-server (make redis).
## Options: make bench-redis ARGS="--sizes 1KiB,1MiB --concurrency 1,16 --duration 5s"
## redis-benchmark against the RESP frontend and redis-server: ARGS="--redis-benchmark"
bench-redis:
	$(CARGO) build --release -p infinicache-proxy -p infinicache-node -p infinicache-experiments
	./target/release/bench $(ARGS)

## The availability experiment: hours of simulated reclaims, with and without
## backup; writes a table, CSV and SVG to target/experiments/availability.
## Options: make availability ARGS="--hours 8 --random-reclaims-per-hour 1"
availability:
	$(CARGO) build --release -p infinicache-proxy -p infinicache-node -p infinicache-experiments
	./target/release/availability $(ARGS)

## The elasticity experiment: a data set growing then shrinking over scaled
## time on the elastic window (functions, memory, billed GB-s, recovery
## throughput from the COS); writes a table, CSVs and SVGs to
## target/experiments/elasticity.
## Options: make elasticity ARGS="--grow-hours 2 --time-scale 120"
elasticity:
	$(CARGO) build --release -p infinicache-proxy -p infinicache-node -p infinicache-experiments
	./target/release/elasticity $(ARGS)

## Load and soak: 200 concurrent clients with mixed PUT/GET/DELETE of
## random sizes (1 KiB to 4 MiB) for 5 minutes against a cache whose
## environments are being reclaimed; every GET verified byte for byte.
## Fails on any error or wrong answer; writes a table, CSV and JSON to
## target/experiments/soak.
## Options: make soak ARGS="--clients 100 --duration 3m --reclaim-every 5s"
soak:
	$(CARGO) build --release -p infinicache-proxy -p infinicache-node -p infinicache-experiments
	./target/release/soak $(ARGS)

## Trace replay: a trace in the IBM Docker registry format (or a synthetic
## 50-hour one with its published properties) against a real cache at scaled
## time and object sizes; hit ratio, latency and the cost report (InfiniCache
## on Lambda vs ElastiCache vs S3); writes a report, CSVs and SVGs to
## target/experiments/replay.
## Options: make replay ARGS="--trace dal09.csv --time-scale 600 --size-scale 1000"
replay:
	$(CARGO) build --release -p infinicache-proxy -p infinicache-node -p infinicache-experiments
	./target/release/replay $(ARGS)
