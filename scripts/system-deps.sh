#!/usr/bin/env bash
# Installs the Debian packages the service needs, only those missing. Usage:
#   scripts/system-deps.sh run    # what `make run` needs (Python venv, build tools, PC/SC + vpcd)
#   scripts/system-deps.sh test   # plus OpenSC, pcsc-tools and Chromium for the tests
set -euo pipefail
want=(python3-venv python3-dev gcc make swig pkg-config libpcsclite-dev pcscd vsmartcard-vpcd gettext)
if [ "${1:-run}" = "test" ]; then
  want+=(opensc pcsc-tools chromium fonts-noto-cjk zbar-tools)
fi
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing Debian packages: ${missing[*]} (install them as root with apt-get)" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
