#!/usr/bin/env bash
# The desktop package's test: builds the .deb with the Tauri bundler (dev
# profile), checks its control data, desktop entry (tuber:// scheme) and
# icons, installs it with apt, runs the installed app (the core, in the tray,
# on a private D-Bus session: no display needed) joined to a real demo hub
# with an invite until it is trusted, quits it, purges the package and
# checks that nothing is left but user data.
#
# Root only (it installs a package); skips otherwise unless CI is set. Safe
# to re-run: it purges what an interrupted run left; its trap stops what it
# started and purges on any exit.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/../.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

if [ "$(id -u)" -ne 0 ]; then
  [ -n "${CI:-}" ] && die "the desktop packaging test needs root (CI is set: not skipping)"
  echo "skip: the desktop packaging test installs a package, so it needs root"
  exit 0
fi
ensure_apt dpkg-dev desktop-file-utils dbus jq
# shellcheck source=tests/packaging/lib.sh
. tests/packaging/lib.sh
started=$SECONDS

PKG=tuber
if installed "$PKG"; then
  echo "purging $PKG left from an earlier run"
  apt_get purge "$PKG" >/dev/null
fi
tmp=$(mktemp -d /tmp/tuber-desktop-packaging.XXXXXX)
chmod 0755 "$tmp"
pids=()
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  set +e
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null
    timeout 10 tail --pid="$pid" -f /dev/null
    kill -KILL "$pid" 2>/dev/null
  done
  if [ "$rc" -ne 0 ]; then
    for f in "$tmp"/*.log; do [ -f "$f" ] && { echo "--- last lines of $f" >&2; tail -n 30 "$f" >&2; }; done
  fi
  installed "$PKG" && apt_get purge "$PKG" >/dev/null 2>&1
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# TUBER_PACKAGING_DEBS: a directory of .debs built already (see test.sh).
if [ -n "${TUBER_PACKAGING_DEBS:-}" ]; then
  log "desktop package: the .deb from $TUBER_PACKAGING_DEBS"
  mkdir -p "$tmp/debs"
  cp "$TUBER_PACKAGING_DEBS"/tuber_*.deb "$tmp/debs/"
else
  log "desktop package: build with the Tauri bundler (dev profile)"
  packaging/build-debs.sh --profile dev --out "$tmp/debs" desktop
fi
deb=$(find "$tmp/debs" -name 'tuber_*.deb' | head -n 1)
[ -n "$deb" ] || fail "no tuber_*.deb in $tmp/debs"
chmod 0644 "$deb"

depends=$(dpkg-deb --field "$deb" Depends)
case "$depends" in *libwebkit2gtk-4.1-0*) ;; *) fail "Depends lacks WebKitGTK: $depends" ;; esac
dpkg-deb -x "$deb" "$tmp/x"
for f in /usr/bin/tuber-desktop /usr/bin/tuber-desktop-window; do
  [ -x "$tmp/x$f" ] || fail "the package lacks $f"
done
entry=$(find "$tmp/x/usr/share/applications" -name '*.desktop' | head -n 1)
[ -n "$entry" ] || fail "no desktop entry"
desktop-file-validate "$entry" || fail "desktop-file-validate refuses $entry"
grep -qx 'MimeType=x-scheme-handler/tuber;' "$entry" || fail "the entry does not register tuber://"
grep -q '^Exec=tuber-desktop %u$' "$entry" || fail "the entry does not pass the link: $(grep ^Exec "$entry")"
for s in 16 24 32 48 64 128 256 512; do
  [ -f "$tmp/x/usr/share/icons/hicolor/${s}x${s}/apps/tuber-desktop.png" ] || fail "no ${s}x${s} icon"
done
[ -f "$tmp/x/usr/lib/sysctl.d/60-tuber-desktop.conf" ] || fail "no sysctl drop-in"
ok "package: $(du -h "$deb" | cut -f1), Depends: $depends; desktop entry valid with x-scheme-handler/tuber; icons 16-512; sysctl drop-in"

log "desktop package: install with apt"
apt_get install "$deb" >"$tmp/apt.log" 2>&1 || fail "apt could not install $deb"
listed=$(dpkg -L "$PKG")
for f in /usr/bin/tuber-desktop /usr/bin/tuber-desktop-window; do
  [ -x "$f" ] || fail "$f is not installed"
done
ok "installed: $(printf '%s\n' "$listed" | wc -l) paths"

log "desktop package: run the installed app joined to a demo hub"
hub_bin=$(cargo metadata --locked --no-deps --format-version 1 |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug/tuber-hub
[ -x "$hub_bin" ] || cargo build --locked -p tuber-hub --bin tuber-hub
"$hub_bin" demo --listen 127.0.0.1:0 --stun 127.0.0.1:0 --data "$tmp/hub" >"$tmp/hub.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  hub_url=$(sed -n 's/^tuber-hub listening on \(http[^ ]*\).*/\1/p' "$tmp/hub.log" | head -n 1)
  [ -n "$hub_url" ] && [ -f "$tmp/hub/admin.token" ] && break
  sleep 0.1
done
[ -n "${hub_url:-}" ] || fail "the demo hub did not start"
invite=$("$hub_bin" invite create --data "$tmp/hub" --listen "${hub_url#http://}" --name packaging-test 2>/dev/null | head -n 1)
mkdir -p "$tmp/home"
# A private session bus for the tray (the app runs without one too).
dbus-daemon --session --nofork --print-address=1 >"$tmp/bus" 2>"$tmp/dbus.log" &
pids+=($!)
for _ in $(seq 1 50); do [ -s "$tmp/bus" ] && break; sleep 0.1; done
HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home/.config XDG_DATA_HOME=$tmp/home/.local/share \
  DBUS_SESSION_BUS_ADDRESS=$(head -n 1 "$tmp/bus") \
  /usr/bin/tuber-desktop --hidden --data "$tmp/data" --config "$tmp/config" \
  --join "$hub_url/" --invite "$invite" >"$tmp/app.log" 2>&1 &
app=$!
pids+=("$app")
peer_cli=$(dirname "$hub_bin")/tuber-peer
[ -x "$peer_cli" ] || cargo build --locked -p tuber-peer --bin tuber-peer
state=
for _ in $(seq 1 150); do
  state=$("$peer_cli" --data "$tmp/data" status --json 2>/dev/null | jq -c '.swarms[0].phase // empty') || true
  [ "$state" = '{"state":"joined","trusted":true}' ] && break
  sleep 0.2
done
[ "$state" = '{"state":"joined","trusted":true}' ] || fail "the installed app did not join as trusted (last: ${state:-none})"
ok "the installed app joined the hub's swarm as trusted (its API answers the tuber-peer CLI)"
kill -TERM "$app"
rc=0
timeout 15 tail --pid="$app" -f /dev/null || fail "the app did not stop within 15 s of SIGTERM"
wait "$app" || rc=$?
[ "$rc" -eq 0 ] || fail "the app exited $rc on SIGTERM"
jq -e --arg h "${hub_url#http://}" '.urls | map(contains($h)) | any' "$tmp/data/swarms.json" >/dev/null ||
  fail "the swarm was not saved"
ok "SIGTERM: clean exit, the swarm saved"

log "desktop package: purge"
apt_get purge "$PKG" >"$tmp/purge.log" 2>&1 || fail "apt could not purge $PKG"
left=()
while IFS= read -r p; do
  [ -f "$p" ] || [ -L "$p" ] && left+=("$p")
done <<<"$listed"
[ "${#left[@]}" -eq 0 ] || fail "left after purge: ${left[*]}"
ok "purged: no file of the package left; user data ($tmp/data) is the owner's"
ok "desktop packaging test passed in $((SECONDS - started)) s"
