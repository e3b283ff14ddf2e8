#!/usr/bin/env bash
# The packaging test: builds the .deb packages (dev profile) into a temp dir,
# checks their control data and contents, installs them with apt, runs the
# installed hub and peer the way their system units would, joins the peer to
# the hub with an invite until it is trusted, then purges both and checks that
# nothing but user data is left.
#
# It installs packages and creates system users, so it wants root. Not root:
# it skips (exit 0), unless CI is set, when that is a failure. Safe to re-run:
# it purges what an interrupted run left, and its trap stops what it started
# and purges the packages on any exit. TUBER_PACKAGING_TIMEOUT (seconds,
# default 1800) bounds the whole run, build included (which may wait for the
# cargo lock).
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/../.."
# shellcheck source=scripts/common.sh
. scripts/common.sh

if [ "$(id -u)" -ne 0 ]; then
  [ -n "${CI:-}" ] && die "the packaging test needs root (CI is set: not skipping)"
  echo "skip: the packaging test installs packages and creates users, so it needs root"
  exit 0
fi

# Run again under timeout, which signals the run's whole process group when
# time is up; the run's trap then still cleans up (-k gives it 60 s). timeout
# puts that group out of the terminal's reach, so Ctrl-C is passed on here.
if [ -z "${TUBER_PACKAGING_BOUNDED:-}" ]; then
  export TUBER_PACKAGING_BOUNDED=1
  limit=${TUBER_PACKAGING_TIMEOUT:-1800}
  timeout -k 60 "$limit" "$self" "$@" &
  bounded=$!
  trap 'kill -TERM "$bounded" 2>/dev/null || true' INT TERM
  rc=0
  wait "$bounded" || rc=$?
  # A trapped signal ends `wait` early, while the run still cleans up.
  while kill -0 "$bounded" 2>/dev/null; do
    rc=0
    wait "$bounded" || rc=$?
  done
  [ "$rc" -ne 124 ] || echo "error: the packaging test took over $limit s" >&2
  exit "$rc"
fi

# systemd for systemd-analyze, init-system-helpers for deb-systemd-helper
# (the postrm removes enablement links with it), jq for status --json.
ensure_apt dpkg-dev binutils adduser systemd init-system-helpers jq

started=$SECONDS
# shellcheck source=tests/packaging/lib.sh
. tests/packaging/lib.sh

PKGS=(tuber-hub tuber-peer)
STATE_DIRS=(/var/lib/tuber-hub /var/lib/tuber-peer)
USERS=(tuber-hub tuber-peer)

# What an interrupted run left (or an earlier install: the test needs a
# clean slate). Purge keeps user data, so nothing of value goes.
for p in "${PKGS[@]}"; do
  if installed "$p"; then
    echo "purging $p left from an earlier run"
    apt_get purge "$p" >/dev/null
  fi
done
# The state dirs and users this run creates, and removes again at the end.
ours_dirs=()
for d in "${STATE_DIRS[@]}"; do [ -e "$d" ] || ours_dirs+=("$d"); done
ours_users=()
for u in "${USERS[@]}"; do getent passwd "$u" >/dev/null || ours_users+=("$u"); done

tmp=$(mktemp -d /tmp/tuber-packaging.XXXXXX)
# apt's _apt user reads the .debs; the service users read their config.
chmod 0755 "$tmp"
pids=()

# stop PID NAME: SIGTERM, 15 s to exit, then SIGKILL. Returns its exit code.
stop() {
  local pid=$1 rc=0 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 75; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$2 ignored SIGTERM for 15 s: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" || rc=$?
  return "$rc"
}

cleanup() {
  local rc=$? pid p d u
  trap - EXIT INT TERM
  set +e
  for pid in "${pids[@]}"; do stop "$pid" "process $pid" >/dev/null 2>&1; done
  if [ "$rc" -ne 0 ]; then
    for f in "$tmp"/*.log; do
      [ -f "$f" ] || continue
      echo "--- last lines of $f" >&2
      tail -n 30 "$f" >&2
    done
  fi
  for p in "${PKGS[@]}"; do
    installed "$p" && apt_get purge "$p" >/dev/null 2>&1
  done
  for d in "${ours_dirs[@]}"; do rm -rf "$d"; done
  for u in "${ours_users[@]}"; do
    getent passwd "$u" >/dev/null && deluser --quiet --system "$u" >/dev/null 2>&1
    getent group "$u" >/dev/null && delgroup --quiet --system "$u" >/dev/null 2>&1
  done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

### Build
# TUBER_PACKAGING_DEBS: a directory of .debs built already (scripts/test.sh
# builds every package in one step, so that the packaging tests recompile
# nothing); otherwise they are built here.
if [ -n "${TUBER_PACKAGING_DEBS:-}" ]; then
  log "packaging: the .deb packages from $TUBER_PACKAGING_DEBS"
  mkdir -p "$tmp/debs"
  for p in "${PKGS[@]}"; do cp "$TUBER_PACKAGING_DEBS/${p}"_*.deb "$tmp/debs/"; done
else
  log "packaging: building the .deb packages (dev profile)"
  packaging/build-debs.sh --profile dev --out "$tmp/debs"
fi
version=$(awk '/^\[workspace.package\]/ { w = 1; next } /^\[/ { w = 0 }
  w && $1 == "version" { gsub(/"/, "", $3); print $3; exit }' Cargo.toml)
version=${version//-/\~}
arch=$(dpkg --print-architecture)
deb() { printf '%s/debs/%s_%s_%s.deb' "$tmp" "$1" "$version" "$arch"; }
for p in "${PKGS[@]}"; do
  [ -f "$(deb "$p")" ] || fail "no $(deb "$p")"
  chmod 0644 "$(deb "$p")"
done
ok "built $(cd "$tmp/debs" && echo *.deb)"

### The packages as files
field() { dpkg-deb --field "$1" "$2"; }
# The regular files each package must ship, and nothing else.
expected_files() {
  case "$1" in
    tuber-hub) printf '%s\n' /etc/tuber/hub.toml /usr/bin/tuber-hub \
      /usr/lib/systemd/system/tuber-hub.service /usr/share/doc/tuber-hub/changelog.Debian.gz \
      /usr/share/doc/tuber-hub/copyright /usr/share/doc/tuber-hub/examples/hub.example.toml ;;
    tuber-peer) printf '%s\n' /usr/bin/tuber-peer /usr/lib/sysctl.d/60-tuber-peer.conf \
      /usr/lib/systemd/system/tuber-peer.service /usr/lib/systemd/user/tuber-peer.service \
      /usr/share/doc/tuber-peer/changelog.Debian.gz /usr/share/doc/tuber-peer/copyright ;;
  esac
}
for p in "${PKGS[@]}"; do
  d=$(deb "$p")
  dpkg-deb --info "$d" >/dev/null || fail "$p: dpkg-deb --info"
  [ "$(field "$d" Package)" = "$p" ] || fail "$p: Package field"
  [ "$(field "$d" Version)" = "$version" ] || fail "$p: Version is not $version"
  [ "$(field "$d" Architecture)" = "$arch" ] || fail "$p: Architecture is not $arch"
  depends=$(field "$d" Depends)
  case ", $depends," in *", libc6 (>= "*) ;; *) fail "$p: Depends lacks libc6 (>= …): $depends" ;; esac
  case ", $depends," in *", adduser,"*) ;; *) fail "$p: Depends lacks adduser: $depends" ;; esac
  for s in postinst prerm postrm; do
    dpkg-deb --info "$d" "$s" >/dev/null || fail "$p: no $s"
  done
  # tar's listing: mode, owner/group, size, date, time, path.
  contents=$(dpkg-deb --contents "$d")
  bad=$(printf '%s\n' "$contents" | awk '
    $2 != "root/root" { print "owner", $2, $6; next }
    /^d/ && $1 != "drwxr-xr-x" { print "mode", $1, $6; next }
    /^-/ && $6 ~ /^\.\/usr\/bin\// && $1 != "-rwxr-xr-x" { print "mode", $1, $6; next }
    /^-/ && $6 !~ /^\.\/usr\/bin\// && $1 != "-rw-r--r--" { print "mode", $1, $6; next }
    !/^[-d]/ { print "type", $1, $6 }')
  [ -z "$bad" ] || fail "$p: wrong owner, mode or type: $bad"
  files=$(printf '%s\n' "$contents" | awk '/^-/ { sub(/^\./, "", $6); print $6 }' | LC_ALL=C sort)
  [ "$files" = "$(expected_files "$p" | LC_ALL=C sort)" ] ||
    fail "$p ships other files than expected: $(diff <(echo "$files") <(expected_files "$p" | LC_ALL=C sort) | grep '^[<>]' | tr '\n' ' ')"
  ok "$p: control (Depends: $depends), maintainer scripts, $(echo "$files" | wc -l) files, root:root, 0755/0644"
done
[ "$(dpkg-deb --info "$(deb tuber-hub)" conffiles)" = /etc/tuber/hub.toml ] ||
  fail "tuber-hub: /etc/tuber/hub.toml is not its only conffile"
dpkg-deb --info "$(deb tuber-peer)" conffiles >/dev/null 2>&1 && fail "tuber-peer has conffiles"
mkdir "$tmp/x"
for p in "${PKGS[@]}"; do dpkg-deb -x "$(deb "$p")" "$tmp/x"; done
for b in tuber-hub tuber-peer; do
  sections=$(readelf -S "$tmp/x/usr/bin/$b")
  if grep -q '\.debug_info\|\.debug_line\|\.symtab' <<<"$sections"; then fail "$b is not stripped"; fi
done
ok "conffile /etc/tuber/hub.toml; binaries stripped"

### Install
log "packaging: install with apt"
# ./x.deb: apt resolves the Depends from the archive.
apt_get install "$(deb tuber-hub)" "$(deb tuber-peer)" >"$tmp/apt-install.log" 2>&1 ||
  { cat "$tmp/apt-install.log" >&2; fail "apt-get install"; }
for p in "${PKGS[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$p")" = "installed $version" ] ||
    fail "$p is not installed at $version"
done
dpkg -L tuber-hub tuber-peer | grep "^/" | LC_ALL=C sort -u >"$tmp/installed-paths"
while read -r path; do [ -e "$path" ] || fail "dpkg -L lists $path, which is missing"; done <"$tmp/installed-paths"
for u in "${USERS[@]}"; do
  IFS=: read -r _ _ uid _ _ home shell <<<"$(getent passwd "$u")" || fail "no user $u"
  [ "$uid" -lt 1000 ] || fail "$u is not a system user (uid $uid)"
  [ "$home" = "/var/lib/$u" ] || fail "$u's home is $home"
  case "$shell" in */nologin | */false) ;; *) fail "$u can log in ($shell)" ;; esac
  getent group "$u" >/dev/null || fail "no group $u"
  [ "$(stat -c '%U:%G %a' "/var/lib/$u")" = "$u:$u 750" ] ||
    fail "/var/lib/$u is $(stat -c '%U:%G %a' "/var/lib/$u")"
done
[ "$("/usr/bin/tuber-hub" --version)" = "tuber-hub ${version//\~/-}" ] || fail "tuber-hub --version"
[ "$("/usr/bin/tuber-peer" --version)" = "tuber-peer ${version//\~/-}" ] || fail "tuber-peer --version"
ok "installed: every path dpkg -L lists exists; system users tuber-hub, tuber-peer (nologin, /var/lib/* 0750)"
if command -v sysctl >/dev/null 2>&1; then
  echo "   net.core.rmem_max=$(sysctl -n net.core.rmem_max) net.core.wmem_max=$(sysctl -n net.core.wmem_max) (postinst raises them to 4194304 where the kernel lets it)"
fi

# Maintainer scripts run again on a reinstall: nothing may fail or change.
uids=$(id -u tuber-hub):$(id -u tuber-peer)
dpkg -i "$(deb tuber-hub)" "$(deb tuber-peer)" >"$tmp/reinstall.log" 2>&1 ||
  { cat "$tmp/reinstall.log" >&2; fail "reinstall (dpkg -i over the installed packages)"; }
[ "$(id -u tuber-hub):$(id -u tuber-peer)" = "$uids" ] || fail "the reinstall changed the users"
ok "reinstall over itself: maintainer scripts idempotent"

### The units
# systemd-analyze verify loads the units in a throwaway manager: no running
# systemd needed (the user manager wants XDG_RUNTIME_DIR). It exits 0 on
# unknown keys, so any output at all is a failure.
if command -v systemd-analyze >/dev/null 2>&1; then
  for unit in /usr/lib/systemd/system/tuber-hub.service /usr/lib/systemd/system/tuber-peer.service; do
    out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit: $out"
    [ -z "$out" ] || fail "systemd-analyze verify $unit: $out"
  done
  mkdir -m 0700 "$tmp/xdg-runtime"
  unit=/usr/lib/systemd/user/tuber-peer.service
  out=$(XDG_RUNTIME_DIR=$tmp/xdg-runtime systemd-analyze --user verify "$unit" 2>&1) ||
    fail "systemd-analyze --user verify $unit: $out"
  [ -z "$out" ] || fail "systemd-analyze --user verify $unit: $out"
  ok "systemd-analyze verify: both system units and the user unit"
else
  echo "note: no systemd-analyze; the units are not verified"
fi

# unit_key UNIT KEY: the value of KEY= in the installed system unit.
unit_key() { sed -n "s/^$2=//p" "/usr/lib/systemd/system/$1" | tail -n 1; }
# as_unit UNIT CMD...: execs CMD as the unit's User= and Group=, with its
# UMask=, in /, with the environment systemd gives it (HOME, USER, LOGNAME,
# SHELL, PATH). It replaces the shell it runs in: call it in a subshell, or
# as `as_unit ... &`, whose $! is then CMD's own PID.
as_unit() {
  local unit=$1 user group mask
  shift
  user=$(unit_key "$unit" User)
  group=$(unit_key "$unit" Group)
  mask=$(unit_key "$unit" UMask)
  umask "${mask:-0022}"
  cd /
  exec setpriv --reuid="$user" --regid="${group:-$user}" --init-groups --reset-env -- "$@"
}
# is_running PID EXE USER: PID is EXE running as USER (so that stop signals
# the service itself, not a shell around it).
is_running() {
  [ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "$2" ] && [ "$(stat -c %U "/proc/$1")" = "$3" ]
}
# unit_command UNIT FROM TO [FROM TO]...: the unit's ExecStart with each
# argument FROM replaced by TO; every FROM must be there.
unit_command() {
  local unit=$1 from to i found
  shift
  read -r -a cmd <<<"$(unit_key "$unit" ExecStart)"
  while [ $# -ge 2 ]; do
    from=$1 to=$2 found=
    shift 2
    for i in "${!cmd[@]}"; do
      if [ "${cmd[$i]}" = "$from" ]; then cmd[i]=$to found=1; fi
    done
    [ -n "$found" ] || fail "$unit: ExecStart has no argument $from: ${cmd[*]}"
  done
}

### Run the installed hub as its unit would
log "packaging: run the installed hub and peer as their system units would"
# Its shipped config, but on free loopback ports (HTTP and STUN), so the
# default file is what starts, next to anything else on this machine.
sed -e 's/^listen = .*/listen = "127.0.0.1:0"/' \
  -e 's/^# listen = "0\.0\.0\.0:3478"/listen = "127.0.0.1:0"/' /etc/tuber/hub.toml >"$tmp/hub.toml"
[ "$(grep -c '^listen = "127.0.0.1:0"' "$tmp/hub.toml")" = 2 ] ||
  fail "cannot move /etc/tuber/hub.toml's listen and [stun] listen to loopback (did its layout change?)"
chmod 0644 "$tmp/hub.toml"
hub_state=$tmp/hub-state peer_state=$tmp/peer-state
install -d -o tuber-hub -g tuber-hub -m 0750 "$hub_state"
install -d -o tuber-peer -g tuber-peer -m 0750 "$peer_state"

unit_command tuber-hub.service /etc/tuber/hub.toml "$tmp/hub.toml" /var/lib/tuber-hub "$hub_state"
echo "   hub: ${cmd[*]} (as $(unit_key tuber-hub.service User))"
as_unit tuber-hub.service "${cmd[@]}" >"$tmp/hub.log" 2>&1 &
hub_pid=$!
pids+=("$hub_pid")
hub_url=
for ((i = 0; i < 150; i++)); do
  hub_url=$(sed -n 's/^tuber-hub listening on \(http:[^ ]*\).*/\1/p' "$tmp/hub.log" | head -n 1)
  [ -n "$hub_url" ] && break
  kill -0 "$hub_pid" 2>/dev/null || fail "the installed hub exited at start"
  sleep 0.2
done
[ -n "$hub_url" ] || fail "the installed hub did not listen within 30 s"
is_running "$hub_pid" /usr/bin/tuber-hub tuber-hub || fail "process $hub_pid is not tuber-hub as tuber-hub"
ok "installed hub runs as tuber-hub with the shipped config: $hub_url"

# With the hub running its database is locked: the CLI asks the hub's admin
# API (on --listen) with the token from the data dir.
token=$(as_unit tuber-hub.service /usr/bin/tuber-hub invite create --name packaging-test \
  --config "$tmp/hub.toml" --data "$hub_state" --listen "${hub_url#http://}" 2>"$tmp/invite.log") ||
  fail "tuber-hub invite create: $(cat "$tmp/invite.log")"
[ -n "$token" ] || fail "tuber-hub invite create printed no token"
ok "invite created with the installed CLI"

### Run the installed peer as its unit would, and join
# --api on a free port: 7447 may be taken by a peer of this machine's user.
unit_command tuber-peer.service /var/lib/tuber-peer "$peer_state"
cmd+=(--api 127.0.0.1:0)
echo "   peer: ${cmd[*]} (as $(unit_key tuber-peer.service User))"
as_unit tuber-peer.service "${cmd[@]}" >"$tmp/peer.log" 2>&1 &
peer_pid=$!
pids+=("$peer_pid")
for ((i = 0; i < 150; i++)); do
  [ -s "$peer_state/api.json" ] && break
  kill -0 "$peer_pid" 2>/dev/null || fail "the installed peer exited at start"
  sleep 0.2
done
[ -s "$peer_state/api.json" ] || fail "the installed peer wrote no api.json within 30 s"
is_running "$peer_pid" /usr/bin/tuber-peer tuber-peer || fail "process $peer_pid is not tuber-peer as tuber-peer"
ok "installed peer runs as tuber-peer: API $(jq -r .url "$peer_state/api.json")"

peer() { (as_unit tuber-peer.service /usr/bin/tuber-peer --data "$peer_state" "$@"); }
peer join "$hub_url/" --invite "$token" >"$tmp/join.log" 2>&1 ||
  fail "tuber-peer join: $(cat "$tmp/join.log")"
joined=
for ((i = 0; i < 150; i++)); do
  status=$(peer status --json 2>/dev/null) || status=
  if [ -n "$status" ] && jq -e --arg u "$hub_url" \
    'any(.swarms[]; (.url | startswith($u)) and .phase.state == "joined" and .phase.trusted == true)' \
    >/dev/null <<<"$status"; then
    joined=1
    break
  fi
  sleep 0.2
done
[ -n "$joined" ] || fail "the peer was not joined and trusted within 30 s: $(jq -c '.swarms' <<<"$status" 2>/dev/null)"
ok "peer joined the hub's swarm as trusted: $(jq -c '.swarms[0] | {url, swarm_id, phase}' <<<"$status")"

### Stop both
rc=0
stop "$peer_pid" peer || rc=$?
[ "$rc" -eq 0 ] || fail "the peer exited with $rc on SIGTERM"
[ ! -e "$peer_state/api.json" ] || fail "the peer left api.json behind"
rc=0
stop "$hub_pid" hub || rc=$?
[ "$rc" -eq 0 ] || fail "the hub exited with $rc on SIGTERM"
pids=()
ok "peer and hub stopped cleanly on SIGTERM (exit 0)"

### Purge
log "packaging: purge, and check what is left"
# Enable the units as an admin would (systemctl works offline), so that
# purge must remove those links too.
if command -v systemctl >/dev/null 2>&1; then
  systemctl enable tuber-hub.service tuber-peer.service >/dev/null 2>&1 ||
    fail "systemctl enable tuber-hub tuber-peer"
  systemctl --global enable tuber-peer.service >/dev/null 2>&1 ||
    fail "systemctl --global enable tuber-peer"
  [ -L /etc/systemd/system/multi-user.target.wants/tuber-hub.service ] ||
    fail "systemctl enable made no link for tuber-hub"
fi
for p in "${PKGS[@]}"; do
  printf '   %s: %s .deb, Installed-Size %s KiB\n' "$p" \
    "$(du -h "$(deb "$p")" | cut -f1)" "$(dpkg-query -W -f='${Installed-Size}' "$p")"
done
apt_get purge tuber-hub tuber-peer >"$tmp/purge.log" 2>&1 ||
  { cat "$tmp/purge.log" >&2; fail "apt-get purge"; }
for p in "${PKGS[@]}"; do
  installed "$p" && fail "$p is still known to dpkg after purge"
done
# Every path the packages had is gone, but directories other packages own
# (under usrmerge, /usr/lib/x may be listed as /lib/x).
owned_elsewhere() {
  [ "$1" = /. ] || dpkg -S "$1" >/dev/null 2>&1 ||
    { case "$1" in /usr/lib/* | /usr/bin/* | /usr/sbin/*) dpkg -S "${1#/usr}" >/dev/null 2>&1 ;; *) false ;; esac; }
}
left=()
while read -r path; do
  [ -e "$path" ] || [ -L "$path" ] || continue
  [ -d "$path" ] && owned_elsewhere "$path" && continue
  left+=("$path")
done <"$tmp/installed-paths"
[ "${#left[@]}" -eq 0 ] || fail "left after purge: ${left[*]}"
stray=$(find /usr/bin /usr/lib/systemd /lib/systemd /etc/systemd /usr/lib/sysctl.d /etc/sysctl.d \
  /usr/share/doc /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-user-helper-enabled \
  -name '*tuber*' 2>/dev/null || true)
[ -z "$stray" ] || fail "tuber files left after purge: $stray"
[ ! -e /etc/tuber ] || fail "/etc/tuber left after purge: $(ls -A /etc/tuber)"
ok "purged: no binaries, units, enablement links, sysctl file or /etc/tuber left"
# What stays on purge, on purpose: the state dirs (hub database; peer key and
# store) and the system users that own them.
for d in "${STATE_DIRS[@]}"; do [ -d "$d" ] || fail "$d went with the purge: it holds user data"; done
for u in "${USERS[@]}"; do getent passwd "$u" >/dev/null || fail "user $u went with the purge"; done
ok "kept on purge, as documented: ${STATE_DIRS[*]} (user data) and users ${USERS[*]}"

echo "packaging test passed in $((SECONDS - started)) s"
