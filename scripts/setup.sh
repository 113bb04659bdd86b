#!/usr/bin/env bash
# Installs everything ostree-sysext needs on Debian/Ubuntu (system packages included) and
# builds it: the native addon (node-gyp against the system libostree) and the TypeScript.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential python3 pkg-config libostree-dev  # build the addon
  ostree systemd gpg gpg-agent attr tar e2fsprogs   # the CLI, systemd-sysext, signing, xattrs, chattr
  nginx-light                                       # HTTP pull tests
  python3-gi gir1.2-ostree-1.0 hyperfine            # benchmark contenders
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm ci when a lockfile exists (reproducible), else npm install; both build the addon
# (install script) and dist/ (prepare script).
if [ -f package-lock.json ]; then npm ci; else npm install; fi
node bin/ostree-sysext.js demo
