#!/usr/bin/env bash
# Runs Tuber. Installs what it needs; safe to re-run.
#
# So far the foundation exists: the protocol crate and the piece store. The
# hub (with its built-in demo swarm), the peer and the desktop app arrive in
# the next issues; until then this builds what exists and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

ensure_build_deps

log "building the workspace"
cargo build --workspace --locked

cat <<'MSG'

Tuber's foundation is built:
  - tuber-proto  wire types and codecs (spec: docs/protocol.md)
  - tuber-store  the sled piece store

There is nothing to run yet: the hub with its demo swarm, the headless peer
and the desktop app are the next steps. Meanwhile you can measure the store:

  cargo bench -p tuber-store --bench store_throughput

MSG
