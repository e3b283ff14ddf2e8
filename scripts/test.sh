#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test, the fuzz targets'
# build and a benchmark smoke run. Installs what it needs; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

ensure_build_deps
ensure_browser_deps
ensure_desktop_test_deps

log "rustfmt"
cargo fmt --all -- --check

log "clippy (warnings are errors)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

log "tests"
# Build first (a cold build of the desktop app's tree takes a while), then
# run: every test bounds its own waits; this bounds the whole run, so a hang
# (a deadlock in a dependency, say) fails with a clear message instead of
# using up CI's time.
cargo test --workspace --all-features --locked --no-run
timeout -k 30 1800 cargo test --workspace --all-features --locked \
  || { rc=$?; [ "$rc" -ne 124 ] || echo "error: the Rust tests took over 30 minutes: something hangs" >&2; exit "$rc"; }

log "browser client: type check (tsc --checkJs) and unit tests"
(cd web && npm run --silent check && npm test)

log "browser and desktop end-to-end tests (headless Chromium; the desktop app under Xvfb)"
# The hub binary exactly as the test step built it (dev-dependency
# features included), so nothing recompiles; a no-op after that step.
cargo test --locked --workspace --all-features --no-run --quiet
(cd tests/browser && npm test)

log "fuzz targets compile"
cargo check --manifest-path fuzz/Cargo.toml --bins --quiet

# A benchmark is a command that prints figures, not a timed test; this only
# proves it still runs. Real figures: cargo bench -p tuber-store.
log "benchmark smoke run"
# A bench builds only its own package's dependencies, with the features that
# package set unifies to: some crates shared with the desktop app's tree
# recompile here (about a minute or two, measured).
TUBER_BENCH_PIECES=16 cargo bench --profile dev --locked --workspace --all-features --bench store_throughput
TUBER_BENCH_QUICK=1 cargo bench --profile dev --locked --workspace --all-features --bench peer_throughput

log "packaging: build, install, run, remove the .deb packages"
tests/packaging/test.sh
tests/packaging/desktop.sh

log "all checks passed"
