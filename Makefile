# The two set-up commands of the README: `make run` and `make test`.

CARGO ?= cargo

.PHONY: run test lint bench

## Run the cache: proxy + local Lambda platform + cache nodes (release build).
## Extra proxy flags: make run ARGS="--pool-size 24"
run:
	$(CARGO) build --release -p infinicache-proxy -p infinicache-node -p infinicache-cli
	./target/release/infinicache-proxy $(ARGS)

## Run the whole test suite (unit, property, end-to-end).
## The end-to-end tests start the proxy, platform and node binaries, so every
## binary of the workspace is built first.
test:
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace

## Formatting and lints, as CI checks them.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Benchmarks: codec throughput (criterion) and end-to-end latency/throughput.
bench:
	$(CARGO) build --release --workspace --bins
	$(CARGO) bench -p infinicache --bench codec
	$(CARGO) bench -p infinicache-tests --bench e2e
