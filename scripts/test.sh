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

# Clippy lints the workspace's crates inside the test build: cargo compiles
# them with clippy-driver (rustc plus clippy's lints) and the dependencies
# with rustc, as `cargo clippy` does. `cargo clippy` on its own would compile
# the whole dependency tree a second time in check mode, which shares nothing
# with a build: 17 of the 98 minutes of a cold run here. The test build covers
# what `cargo clippy --all-targets --all-features` does: libraries with and
# without cfg(test), binaries, tests, benches and examples. Every later cargo
# step keeps these variables, so it reuses this build (cargo fingerprints the
# workspace wrapper) and lints whatever it compiles (the packages' crates
# without test features, in the packaging step).
clippy_driver=$(rustc --print sysroot)/bin/clippy-driver
[ -x "$clippy_driver" ] || die "no clippy-driver in the toolchain (rustup component add clippy)"
export RUSTC_WORKSPACE_WRAPPER=$clippy_driver
# cargo clippy's encoding of `-- -D warnings`.
export CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

log "tests, built with clippy's lints (warnings are errors)"
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
env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS cargo check --manifest-path fuzz/Cargo.toml --bins --quiet

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
# Every package from one cargo build, whose features unify as the test
# build's did: only the crates with test features (tuber-peer, tuber-store)
# and a few that tempfile, a dev-dependency, changed compile again.
debs=$(mktemp -d /tmp/tuber-debs.XXXXXX)
trap 'rm -rf "$debs"' EXIT
packaging/build-debs.sh --profile dev --out "$debs" hub peer desktop
TUBER_PACKAGING_DEBS=$debs tests/packaging/test.sh
TUBER_PACKAGING_DEBS=$debs tests/packaging/desktop.sh

log "all checks passed"
