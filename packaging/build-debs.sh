#!/usr/bin/env bash
# Builds Tuber's Debian packages with plain dpkg-deb: the files come from
# packaging/ and the build, the control fields are computed here.
#
#   packaging/build-debs.sh [--profile release|dev] [--out DIR] [hub] [peer] [desktop]
#
#   hub      tuber-hub_VERSION_ARCH.deb: the hub as a system service
#   peer     tuber-peer_VERSION_ARCH.deb: the headless peer, as a user service
#            (desktops) or a system service (servers)
#   desktop  tuber_VERSION_ARCH.deb: the desktop app, from the Tauri bundler
#
# Default: the release profile, hub and peer, into target/debian/. VERSION
# is the workspace's (Cargo.toml), ARCH dpkg's. Installs the Debian packages
# it needs; safe to re-run.
set -euo pipefail
self=$(readlink -f "$0")
caller=$PWD
cd "$(dirname "$self")/.."
# shellcheck source=scripts/common.sh
. scripts/common.sh
# Directories and files in the packages get 0755 and 0644 whatever the
# caller's umask; dpkg-deb --root-owner-group makes them root:root.
umask 022

usage() {
  sed -n '4,13s/^# \{0,1\}//p' "$self" >&2
  exit "${1:-2}"
}

profile=release
out=
want=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) [ $# -ge 2 ] || usage; profile=$2; shift 2 ;;
    --profile=*) profile=${1#*=}; shift ;;
    --out) [ $# -ge 2 ] || usage; out=$2; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    -h | --help) usage 0 ;;
    hub | peer | desktop) want+=("$1"); shift ;;
    *) echo "build-debs.sh: unknown argument: $1" >&2; usage ;;
  esac
done
[ "${#want[@]}" -gt 0 ] || want=(hub peer)
# --out is relative to where the script was called from.
case "$out" in "" | /*) ;; *) out=$caller/$out ;; esac
case "$profile" in
  dev) profile_dir=debug ;;
  release) profile_dir=release ;;
  *) die "--profile must be release or dev, not $profile" ;;
esac

ensure_build_deps
# dpkg-shlibdeps computes Depends; strip comes with binutils.
ensure_apt dpkg-dev binutils

# A key of [workspace.package] in Cargo.toml, e.g. version.
workspace_key() {
  awk -v key="$1" '
    /^\[/ { in_ws = ($0 == "[workspace.package]") }
    in_ws && $1 == key { sub(/^[^"]*"/, ""); sub(/".*/, ""); print; exit }
  ' Cargo.toml
}
version=$(workspace_key version)
[ -n "$version" ] || die "no version in [workspace.package] of Cargo.toml"
# A SemVer pre-release (1.0.0-rc.1) sorts before its release in Debian only
# with ~; a - would make it a Debian revision.
deb_version=${version//-/\~}
arch=$(dpkg --print-architecture)
source_url=$(workspace_key repository)
maintainer=${TUBER_DEB_MAINTAINER:-Tuber developers <tuber@example.invalid>}
# One timestamp for the changelog and, through dpkg-deb, for every file in
# the packages: the last commit's, so the same commit gives the same dates.
# Not exported: cargo would pass it to build scripts, and ring's reruns when
# it changes, rebuilding half the tree for the next plain cargo build.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
revision=$(git describe --always --dirty 2>/dev/null || echo "an unknown revision")
# The copyright years: from the first commit's to the build's.
years=$(date -u -d "@$epoch" +%Y)
first=$(git log --max-parents=0 --format=%cd --date=format:%Y 2>/dev/null | sort | head -n 1) || true
[ -z "$first" ] || [ "$first" = "$years" ] || years=$first-$years

target_dir=$(cargo metadata --locked --no-deps --format-version 1 |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
[ -n "$target_dir" ] || die "cargo metadata named no target directory"
bin_dir=$target_dir/$profile_dir
out=${out:-$target_dir/debian}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# One cargo build for every program asked for: tuber-hub and tuber-peer
# both, whichever of the two is asked (the features of shared dependencies
# then never change between runs: no rebuild), and the desktop app in the same
# build, so that its dependencies and theirs unify as they do in `cargo test
# --workspace` (the test suite's packaging step then reuses the test build
# instead of compiling ~350 crates again). No --all-features: tuber-peer's
# test-hooks (a lying peer) must not ship.
crates=()
case " ${want[*]} " in *" hub "* | *" peer "*) crates+=(tuber-hub tuber-peer) ;; esac
case " ${want[*]} " in *" desktop "*) ensure_desktop_build_deps; crates+=(tuber-desktop) ;; esac
log "building ${crates[*]} (profile $profile)"
cargo build --locked --profile "$profile" "${crates[@]/#/--package=}" --bins

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# new_tree PKG: an empty package tree; prints its root.
new_tree() {
  rm -rf "${work:?}/$1"
  install -d -m 0755 "$work/$1/DEBIAN"
  printf '%s\n' "$work/$1"
}

# put ROOT SRC MODE DEST: installs SRC at DEST in the tree.
put() {
  install -d -m 0755 "$1$(dirname "$4")"
  install -m "$3" "$2" "$1$4"
}

# put_binary ROOT SRC DEST: the executable without its debug info and
# symbol tables (a tenth of the size for the dev profile).
put_binary() {
  [ -x "$2" ] || die "$2 was not built"
  install -d -m 0755 "$1$(dirname "$3")"
  strip --strip-unneeded --remove-section=.comment --remove-section=.note -o "$1$3" "$2"
  chmod 0755 "$1$3"
}

# put_docs ROOT PKG: copyright (with the Rust crates linked into PKG and
# their licenses) and changelog.Debian.gz, in /usr/share/doc/PKG.
put_docs() {
  local doc=$1/usr/share/doc/$2 crates
  install -d -m 0755 "$doc"
  crates=$(cargo tree --locked -p "$2" -e normal,no-proc-macro --prefix none --format '{p}|{l}' |
    sed -e 's/ (\*)$//' -e 's/ ([^)]*)|/|/' | grep -v '^tuber-' | LC_ALL=C sort -u |
    sed -e 's/^\([^ ]*\) v\([^|]*\)|\(.*\)/ \1 \2: \3/' -e 's/: $/: (see the crate)/')
  [ -n "$crates" ] || die "cargo tree listed no crates for $2"
  awk -v pkg="$2" -v src="$source_url" -v years="$years" -v crates="$crates" '
    { gsub(/@PACKAGE@/, pkg); gsub(/@SOURCE@/, src); gsub(/@YEARS@/, years) }
    $0 == "@CRATES@" { print crates; next }
    { print }
  ' packaging/debian/copyright >"$doc/copyright"
  chmod 0644 "$doc/copyright"
  {
    printf '%s (%s) unstable; urgency=medium\n\n' "$2" "$deb_version"
    printf '  * Built from the Tuber source at %s with packaging/build-debs.sh.\n\n' "$revision"
    printf ' -- %s  %s\n' "$maintainer" "$(date -u -R -d "@$epoch")"
  } | gzip -9n >"$doc/changelog.Debian.gz"
  chmod 0644 "$doc/changelog.Debian.gz"
}

# put_scripts ROOT PKG: the maintainer scripts packaging/debian/PKG.*.
put_scripts() {
  local s
  for s in postinst prerm postrm; do
    install -m 0755 "packaging/debian/$2.$s" "$1/DEBIAN/$s"
  done
}

# shlib_depends PKG FILE...: the Depends that the ELF files' shared
# libraries need, from dpkg-shlibdeps, which wants a debian/control to read.
shlib_depends() {
  local dir=$work/shlibdeps-$1 deps
  install -d "$dir/debian"
  printf 'Source: tuber\n\nPackage: %s\nArchitecture: any\n' "$1" >"$dir/debian/control"
  deps=$(cd "$dir" && dpkg-shlibdeps -O "${@:2}" 2>"$dir/log") ||
    { cat "$dir/log" >&2; die "dpkg-shlibdeps failed for $1"; }
  deps=$(printf '%s\n' "$deps" | sed -n 's/^shlibs:Depends=//p')
  [ -n "$deps" ] || die "dpkg-shlibdeps found no shared libraries for $1"
  printf '%s\n' "$deps"
}

# finish ROOT PKG DEPENDS SUMMARY: control, md5sums, then the .deb. The long
# description is read from stdin, one paragraph line per line.
finish() {
  local root=$1 pkg=$2 deb size
  deb=$out/${pkg}_${deb_version}_${arch}.deb
  size=$(du -s -k --apparent-size --exclude=DEBIAN "$root" | cut -f1)
  {
    printf 'Package: %s\nVersion: %s\nArchitecture: %s\n' "$pkg" "$deb_version" "$arch"
    printf 'Maintainer: %s\nInstalled-Size: %s\nDepends: %s\n' "$maintainer" "$size" "$3"
    printf 'Section: net\nPriority: optional\nDescription: %s\n' "$4"
    sed -e 's/^$/./' -e 's/^/ /'
  } >"$root/DEBIAN/control"
  # dpkg checks conffiles by their own hashes; md5sums lists the rest.
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort |
    grep -vxF -f <(sed 's|^/||' DEBIAN/conffiles 2>/dev/null || true) |
    xargs -r -d '\n' md5sum) >"$root/DEBIAN/md5sums"
  chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
  rm -f "$deb"
  SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
  printf '%s\t%s\n' "$(du -h "$deb" | cut -f1)" "$deb"
}

build_hub() {
  local root
  root=$(new_tree tuber-hub)
  put_binary "$root" "$bin_dir/tuber-hub" /usr/bin/tuber-hub
  put "$root" packaging/systemd/tuber-hub.service 0644 /usr/lib/systemd/system/tuber-hub.service
  put "$root" packaging/etc/hub.toml 0644 /etc/tuber/hub.toml
  put "$root" crates/tuber-hub/hub.example.toml 0644 /usr/share/doc/tuber-hub/examples/hub.example.toml
  put_docs "$root" tuber-hub
  put_scripts "$root" tuber-hub
  printf '/etc/tuber/hub.toml\n' >"$root/DEBIAN/conffiles"
  finish "$root" tuber-hub "$(shlib_depends tuber-hub "$root/usr/bin/tuber-hub"), adduser" \
    "Tuber's hub: turns any website into a peer-to-peer CDN" <<'EOF'
Tuber turns a website into a peer-to-peer CDN without changing the site. The
hub is a reverse proxy in front of the site: it injects the page script and
serves the Service Worker, publishes manifests of SHA-256-verified pieces for
large responses, relays WebRTC signaling between peers, plans which trusted
peers hold what, and answers STUN.

This package runs the hub as the system service tuber-hub (user tuber-hub,
database in /var/lib/tuber-hub, configuration in /etc/tuber/hub.toml). It is
not enabled on install: set the site's address in /etc/tuber/hub.toml, then
systemctl enable --now tuber-hub.
EOF
}

build_peer() {
  local root
  root=$(new_tree tuber-peer)
  put_binary "$root" "$bin_dir/tuber-peer" /usr/bin/tuber-peer
  put "$root" packaging/systemd/user/tuber-peer.service 0644 /usr/lib/systemd/user/tuber-peer.service
  put "$root" packaging/systemd/tuber-peer.service 0644 /usr/lib/systemd/system/tuber-peer.service
  put "$root" packaging/sysctl/60-tuber-peer.conf 0644 /usr/lib/sysctl.d/60-tuber-peer.conf
  put_docs "$root" tuber-peer
  put_scripts "$root" tuber-peer
  finish "$root" tuber-peer "$(shlib_depends tuber-peer "$root/usr/bin/tuber-peer"), adduser" \
    "Tuber's headless peer: shares websites' content from this machine" <<'EOF'
Tuber turns a website into a peer-to-peer CDN without changing the site. A
permanent peer joins a site's swarm by its URL, keeps a verified piece store
within a disk budget and serves pieces to browsers and other peers over WebRTC
within an upload budget. tuber-peer is that peer without a GUI, with a local
dashboard and API on 127.0.0.1:7447.

This package has two systemd units, neither enabled on install: a user unit
(systemctl --user enable --now tuber-peer; state in ~/.config/tuber-peer) and
a system unit for servers (systemctl enable --now tuber-peer; user tuber-peer,
state in /var/lib/tuber-peer). It raises the kernel's UDP socket buffer limits
to the 4 MiB that WebRTC transfers need (/usr/lib/sysctl.d/60-tuber-peer.conf).
EOF
}

# The desktop app: bundled by the Tauri CLI (from npm; building it with cargo
# takes half an hour here) as src-tauri/tauri.conf.json says: both programs
# (built above: `tauri build` would compile them with the desktop crate's
# features alone), the desktop entry (packaging/desktop/, with the tuber://
# scheme), icons of every size, the sysctl drop-in, WebKitGTK Depends.
build_desktop() {
  local debug=() bundle
  # No lockfile: the CLI's platform binaries are optional dependencies, and
  # `npm ci` refuses a lockfile that lacks the ones a registry mirror does
  # not carry. package.json pins the exact version (and the CLI pins its
  # binaries' versions).
  if [ ! -x packaging/desktop/node_modules/.bin/tauri ] ||
    [ packaging/desktop/package.json -nt packaging/desktop/node_modules/.bin/tauri ]; then
    (cd packaging/desktop && npm install --no-package-lock --no-audit --no-fund)
  fi
  [ "$profile" = dev ] && debug=(--debug)
  rm -rf "$bin_dir/bundle/deb"
  (cd src-tauri && ../packaging/desktop/node_modules/.bin/tauri bundle "${debug[@]}" --bundles deb --ci)
  bundle=$(find "$bin_dir/bundle/deb" -maxdepth 1 -name "*_${deb_version}_${arch}.deb" | head -n 1)
  [ -n "$bundle" ] || die "the Tauri bundler made no .deb in $bin_dir/bundle/deb"
  cp "$bundle" "$out/tuber_${deb_version}_${arch}.deb"
  printf '%s\t%s\n' "$(du -h "$out/tuber_${deb_version}_${arch}.deb" | cut -f1)" "$out/tuber_${deb_version}_${arch}.deb"
}

log "packaging ${want[*]} $deb_version ($arch) into $out"
for p in "${want[@]}"; do
  "build_$p"
done
