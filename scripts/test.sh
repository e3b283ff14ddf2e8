#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test, the fuzz targets'
# build and a benchmark smoke run. Installs what it needs; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

ensure_build_deps
ensure_browser_deps

log "rustfmt"
cargo fmt --all -- --check

log "clippy (warnings are errors)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

log "tests"
cargo test --workspace --all-features --locked

log "browser end-to-end tests (headless Chromium)"
# Same flags as the test build: the binary it built is reused as is.
cargo build --locked --workspace --all-features --bins
(cd tests/browser && npm test)

log "fuzz targets compile"
cargo check --manifest-path fuzz/Cargo.toml --bins --quiet

# A benchmark is a command that prints figures, not a timed test; this only
# proves it still runs. Real figures: cargo bench -p tuber-store.
log "benchmark smoke run"
# Same package set and features as the test build, so nothing recompiles.
TUBER_BENCH_PIECES=16 cargo bench --profile dev --locked --workspace --all-features --bench store_throughput

log "all checks passed"
