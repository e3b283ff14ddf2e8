# Shared set-up for scripts/run.sh and scripts/test.sh. Sourced, not run.
# Everything here is idempotent: a second run installs nothing and is quick.

# The oldest Rust that builds the workspace (keep in step with Cargo.toml).
TUBER_MIN_RUST="1.90"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run: $* (run as root or install sudo)"
  fi
}

# ensure_apt PKG...: installs the Debian packages that are not installed yet.
ensure_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# ensure_rust: a cargo new enough for the workspace, with rustfmt and clippy.
ensure_rust() {
  [ -d "$HOME/.cargo/bin" ] && case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) PATH="$HOME/.cargo/bin:$PATH" ;; esac
  command -v cargo >/dev/null 2>&1 || die "Rust is not installed. Install Rust $TUBER_MIN_RUST or newer with rustup (https://rustup.rs), then run this again."
  local have
  have=$(rustc --version | awk '{print $2}')
  if [ "$(printf '%s\n%s\n' "$TUBER_MIN_RUST" "$have" | sort -V | head -n1)" != "$TUBER_MIN_RUST" ]; then
    die "Rust $have is too old; Tuber needs $TUBER_MIN_RUST or newer (rustup update)."
  fi
  for c in rustfmt clippy; do
    if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
      command -v rustup >/dev/null 2>&1 || die "cargo $c is missing; install it with your Rust toolchain."
      log "adding rustup component $c"
      rustup component add "$c"
    fi
  done
}

# System packages every build needs: a C toolchain for build scripts (sled,
# brotli, libFuzzer), pkg-config for -sys crates; pebble (the RFC 8555 test
# CA) for the hub's ACME test.
ensure_build_deps() {
  ensure_apt build-essential pkg-config ca-certificates pebble
  ensure_rust
}

# The browser tests: Debian's Chromium (never a downloaded browser), Node and
# npm, and playwright-core from the lockfile; nginx, openssl and certutil for
# the TLS deployment test (nginx in front of the hub, a test CA, an NSS
# database for Chromium). nginx as the origin and ffmpeg for test media in
# the first-visit test.
ensure_browser_deps() {
  ensure_apt chromium fonts-dejavu-core nginx-light libnss3-tools openssl ffmpeg
  # The NAT lab (tests/netlab): network namespaces, nftables NATs, coturn.
  ensure_apt iproute2 nftables coturn
  # Node 18+ from wherever it is installed; Debian's only when there is none.
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || ensure_apt nodejs npm
  if [ ! -d tests/browser/node_modules/playwright-core ] || [ tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]; then
    log "installing the browser tests' npm packages"
    (cd tests/browser && npm ci --no-audit --no-fund)
  fi
  if [ ! -d web/node_modules/typescript ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
    log "installing the browser client's npm packages (typescript)"
    (cd web && npm ci --no-audit --no-fund)
  fi
}

# The desktop app (src-tauri): WebKitGTK and the libraries Tauri links, for
# building it and for `cargo clippy/test --workspace`.
ensure_desktop_build_deps() {
  ensure_apt libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
}

# Running the desktop app under test: a virtual display, a private D-Bus
# session with a tray host (StatusNotifierWatcher), WebKitWebDriver to drive
# the window, gdbus to read the tray, xdotool and ImageMagick for
# screenshots of the whole screen.
ensure_desktop_test_deps() {
  ensure_desktop_build_deps
  ensure_apt xvfb xauth dbus webkit2gtk-driver haskell-status-notifier-item-utils \
    libglib2.0-bin xdotool imagemagick procps
}
