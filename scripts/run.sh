#!/usr/bin/env bash
# Runs Tuber. Installs what it needs; safe to re-run.
#
#   ./scripts/run.sh                       the hub in front of its built-in demo site
#   ./scripts/run.sh --upstream URL        the hub in front of your site at URL
#   (any other tuber-hub flags pass through, e.g. --listen 0.0.0.0:8080)
#
# The desktop app and the headless peer that join the swarm are the next
# steps; today this runs the hub, which serves the site, the swarm's
# descriptor, signaling, manifests, pieces and STUN.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

ensure_build_deps

log "building tuber-hub"
cargo build --locked -p tuber-hub --bin tuber-hub

cmd=demo
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --upstream) cmd=serve; args+=("$1" "$2"); shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
case " ${args[*]-} " in *" --listen "*) ;; *) args+=(--listen 127.0.0.1:8080) ;; esac
case " ${args[*]-} " in *" --stun "*|*" --no-stun "*) ;; *) args+=(--stun 127.0.0.1:3478) ;; esac

log "starting: tuber-hub $cmd ${args[*]}"
echo "Open the printed address in a browser. Stop with Ctrl-C."
exec target/debug/tuber-hub "$cmd" "${args[@]}"
