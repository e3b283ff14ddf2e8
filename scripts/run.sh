#!/usr/bin/env bash
# Runs Tuber. Installs what it needs; safe to re-run.
#
#   ./scripts/run.sh                       the demo swarm: the hub in front of its
#                                          built-in demo site, and the desktop app
#                                          (tray + dashboard) joined to it as a
#                                          trusted peer; without a display (no
#                                          DISPLAY or WAYLAND_DISPLAY) or with
#                                          --headless, the headless tuber-peer and
#                                          the address of its dashboard instead
#   ./scripts/run.sh --upstream URL        the hub in front of your site at URL
#   ./scripts/run.sh --swarm URL           no hub: only the peer, joined to the
#                                          swarm at URL (a site that runs a hub)
#   (any other flags pass through to tuber-hub, e.g. --listen 0.0.0.0:8080)
#
# The peer keeps its key, store and settings in .tuber-run/desktop (headless:
# .tuber-run/peer), the hub its database in .tuber-run/hub, so a second run
# continues the first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

ensure_build_deps

cmd=demo
swarm=
args=()
desktop=no
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then desktop=yes; fi
while [ $# -gt 0 ]; do
  case "$1" in
    --upstream) cmd=serve; args+=("$1" "$2"); shift 2 ;;
    --swarm) swarm="$2"; shift 2 ;;
    --headless) desktop=no; shift ;;
    *) args+=("$1"); shift ;;
  esac
done

log "building tuber-hub and tuber-peer"
cargo build --locked -p tuber-hub --bin tuber-hub -p tuber-peer --bin tuber-peer
if [ "$desktop" = yes ]; then
  ensure_desktop_build_deps
  log "building the desktop app (the first build takes several minutes)"
  cargo build --locked -p tuber-desktop --bins
fi
listen=127.0.0.1:8080
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[$i]}" != --listen ] || listen="${args[$((i + 1))]}"
done
case " ${args[*]-} " in *" --listen "*) ;; *) args+=(--listen "$listen") ;; esac
case " ${args[*]-} " in *" --stun "*|*" --no-stun "*) ;; *) args+=(--stun 127.0.0.1:3478) ;; esac
case " ${args[*]-} " in *" --data "*) ;; *) args+=(--data .tuber-run/hub) ;; esac
mkdir -p .tuber-run

hub_pid=
cleanup() {
  [ -z "$peer_pid" ] || kill "$peer_pid" 2>/dev/null || true
  [ -z "$hub_pid" ] || kill "$hub_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
peer_pid=
trap cleanup EXIT INT TERM

if [ -z "$swarm" ]; then
  log "starting: tuber-hub $cmd ${args[*]}"
  target/debug/tuber-hub "$cmd" "${args[@]}" > .tuber-run/hub.log 2>&1 &
  hub_pid=$!
  # The hub prints its address once it listens.
  for _ in $(seq 1 100); do
    swarm=$(sed -n 's/^tuber-hub listening on \(http[^ ]*\).*/\1/p' .tuber-run/hub.log | head -n1)
    [ -n "$swarm" ] && break
    kill -0 "$hub_pid" 2>/dev/null || { cat .tuber-run/hub.log >&2; die "the hub did not start"; }
    sleep 0.1
  done
  [ -n "$swarm" ] || die "the hub did not say where it listens (see .tuber-run/hub.log)"
  swarm="${swarm%/}/"
  echo "The site (through the hub): $swarm   hub log: .tuber-run/hub.log"
  # Our own hub: make the peer trusted, so the planner assigns it content.
  invite=$(target/debug/tuber-hub invite create --data .tuber-run/hub --listen "$listen" \
    --name "run.sh demo peer" --expires 1h | head -n1)
  join=(--join "$swarm" --invite "$invite")
else
  join=(--join "$swarm")
fi

if [ "$desktop" = yes ]; then
  log "starting the desktop app joined to $swarm (tray icon + dashboard window)"
  # A tray needs a StatusNotifier host (KDE, most desktops; GNOME with the
  # AppIndicator extension); the window opens either way.
  target/debug/tuber-desktop --data .tuber-run/desktop --config .tuber-run/desktop-config \
    "${join[@]}" &
  peer_pid=$!
  echo "Quit from the tray icon's menu, or with Ctrl-C here."
else
  log "starting: tuber-peer run --join $swarm (no display: the headless peer)"
  target/debug/tuber-peer --data .tuber-run/peer run "${join[@]}" --api 127.0.0.1:7447 &
  peer_pid=$!
  echo "Open the dashboard address printed above in a browser on this machine."
  echo "Peer status: target/debug/tuber-peer --data .tuber-run/peer status"
  echo "Stop with Ctrl-C."
fi
wait "$peer_pid"
