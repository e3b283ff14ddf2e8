# Helpers shared by the packaging tests. Sourced, not run.
ok() { printf 'ok %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*" >&2; exit 1; }
apt_get() { DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=120 "$@"; }
installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qvx not-installed; }
