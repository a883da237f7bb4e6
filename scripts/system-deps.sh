#!/usr/bin/env bash
# Installs the Debian packages that some tests need (a PostgreSQL server, headless Chromium) when they are
# missing. Needs root (or passwordless sudo); without it, those tests skip and say why.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "system-deps: not root, so ${need[*]} cannot be installed; the tests that need them will skip" >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts a cluster on install; the tests start their own private servers, so stop it.
if command -v pg_ctlcluster >/dev/null 2>&1; then
  for c in $(pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}'); do $SUDO pg_ctlcluster ${c%/*} ${c#*/} stop || true; done
fi
