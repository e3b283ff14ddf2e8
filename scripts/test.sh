#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test, the fuzz targets'
# build and a benchmark smoke run. Installs what it needs; safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

ensure_build_deps
ensure_browser_deps
# A full run builds every crate once: incremental caches would only cost disk
# (25 GB of a long-lived target/ here) and time; CI's disk ran out with them.
export CARGO_INCREMENTAL=0
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
# `--benches` too: the benchmark smoke run below then reuses these very
# artifacts. (`cargo bench --bench X` would select only X's package and
# rebuild ~300 crates with the features that package alone unifies to.)
cargo test --workspace --all-features --locked --no-run
cargo test --workspace --all-features --locked --no-run --benches --quiet
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
# The bench binaries the test step built (same features, nothing recompiles),
# run by path: cargo picks their paths, so ask it for them, once.
benches=$(cargo test --workspace --all-features --locked --no-run --benches --message-format=json 2>/dev/null)
bench_exe() {
  local exe
  exe=$(grep -o "\"executable\":\"[^\"]*/$1-[0-9a-f]*\"" <<<"$benches" | cut -d'"' -f4 | head -n1)
  [ -x "$exe" ] || die "bench $1 was not built"
  printf '%s\n' "$exe"
}
store_bench=$(bench_exe store_throughput)
peer_bench=$(bench_exe peer_throughput)
TUBER_BENCH_PIECES=16 "$store_bench"
TUBER_BENCH_QUICK=1 "$peer_bench"

log "packaging: build, install, run, remove the .deb packages"
tests/packaging/test.sh
tests/packaging/desktop.sh

log "all checks passed"
