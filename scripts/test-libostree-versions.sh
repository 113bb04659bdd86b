#!/usr/bin/env bash
# Builds the addon against the newer libostree, GLib and Node that Debian ships (trixie:
# libostree 2025.2, sid: the newest) and runs the native and library tests there, then the
# compatibility and overlay differentials against that suite's real systemd-sysext (trixie: 257,
# sid: 262), each in a minimal chroot cached under /var/tmp/osx-chroots (debootstrap once; later
# runs reuse it). `bookworm-backports` is systemd 254 on this machine's own Debian 12 userland:
# there only the two differentials run, with this machine's node and addon (same libostree and
# glibc; Debian 12's own Node is too old). `npm run test:libostree-versions` and
# `npm run test:systemd-versions` run it.
# Usage: scripts/test-libostree-versions.sh [suite ...]   (default: trixie sid bookworm-backports)
# Exits 0 with a "skip" line for a suite only when it has no cached chroot and Debian's
# mirror cannot be reached; any build or test failure fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "test-libostree-versions: needs root (debootstrap, chroot)" >&2; exit 1; }

ROOT=/var/tmp/osx-chroots
MIRROR=http://deb.debian.org/debian
PACKAGES=(systemd libostree-dev ostree build-essential python3 pkg-config nodejs npm node-gyp
  gpg gpg-agent attr tar e2fsprogs nginx-light ca-certificates util-linux mount)
# bookworm-backports: systemd only (the rest is Debian 12, as on the host).
SYSTEMD_ONLY_PACKAGES=(ostree libostree-1-1 attr tar e2fsprogs util-linux mount gpg ca-certificates)
suites=("$@")
[ "${#suites[@]}" -gt 0 ] || suites=(trixie sid bookworm-backports)
systemd_only() { [ "$1" = bookworm-backports ]; }
SRC=$(pwd)

mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
mnt() { mount "$@" && mounted+=("${*: -1}"); }

reachable() { timeout 10 bash -c 'exec 3<>/dev/tcp/deb.debian.org/80' 2>/dev/null; }

prepare() {
  local suite=$1 c=$ROOT/$1
  [ -f "$c/.osx-ready" ] && return 0
  if ! reachable; then
    echo "test-libostree-versions: skip $suite: no cached chroot and $MIRROR cannot be reached"
    return 1
  fi
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  rm -rf "$c"
  mkdir -p "$ROOT"
  echo "test-libostree-versions: building the $suite chroot (once; cached in $c)"
  local install="apt-get install -y -qq --no-install-recommends ${PACKAGES[*]}"
  local dist=$suite
  if systemd_only "$suite"; then
    dist=bookworm
    install="apt-get install -y -qq --no-install-recommends -t bookworm-backports systemd && apt-get install -y -qq --no-install-recommends ${SYSTEMD_ONLY_PACKAGES[*]}"
  fi
  debootstrap --variant=minbase "$dist" "$c" "$MIRROR" >"$ROOT/$suite.log" 2>&1 ||
    { echo "debootstrap $suite failed: see $ROOT/$suite.log" >&2; exit 1; }
  if systemd_only "$suite"; then echo "deb $MIRROR bookworm-backports main" >"$c/etc/apt/sources.list.d/backports.list"; fi
  mount -t proc proc "$c/proc"
  chroot "$c" env DEBIAN_FRONTEND=noninteractive bash -c \
    "apt-get -o Acquire::Check-Valid-Until=false update -qq && $install" >>"$ROOT/$suite.log" 2>&1 ||
    { umount "$c/proc"; echo "installing packages in $suite failed: see $ROOT/$suite.log" >&2; exit 1; }
  umount "$c/proc"
  touch "$c/.osx-ready"
}

status=0
for suite in "${suites[@]}"; do
  prepare "$suite" || continue
  c=$ROOT/$suite
  versions=$(chroot "$c" dpkg-query -W -f='${Package} ${Version}\n' libostree-dev libglib2.0-dev-bin nodejs systemd 2>/dev/null | tr '\n' ';' || true)
  echo "test-libostree-versions: $suite: $versions"
  # The sources as they are now (tracked and new files, not build output), with the
  # JavaScript dependencies (pure JS and prebuilt x64 tools; the addon is rebuilt there).
  rm -rf "$c/work/osx"
  mkdir -p "$c/work/osx"
  (cd "$SRC" && git ls-files -co --exclude-standard -z | grep -zv '^node_modules/' | xargs -0 cp --parents -t "$c/work/osx")
  cp -a "$SRC/node_modules" "$c/work/osx/"
  if systemd_only "$suite"; then
    # This machine's node and addon: the same Debian 12 libostree and glibc as the chroot's.
    [ -f "$SRC/build/Release/ostree_sysext.node" ] || { echo "test-libostree-versions: $suite needs the addon built here first (npm run build)" >&2; exit 1; }
    mkdir -p "$c/work/osx/build/Release" "$c/usr/local/bin"
    cp "$SRC/build/Release/ostree_sysext.node" "$c/work/osx/build/Release/"
    cp "$(command -v node)" "$c/usr/local/bin/node"
  fi
  mnt -t proc proc "$c/proc"
  mnt --bind /dev "$c/dev"
  mnt -t tmpfs tmpfs "$c/tmp"
  set +e
  if systemd_only "$suite"; then
    echo "test-libostree-versions: $suite: systemd only (the native and library tests ran on this machine's identical libostree)"
    rc=0
  else
  chroot "$c" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 bash -c '
    set -e
    cd /work/osx
    node scripts/check-libostree.cjs
    node-gyp rebuild -j 2 >/tmp/gyp.log 2>&1 || { cat /tmp/gyp.log; exit 1; }
    if grep -E "warning:" /tmp/gyp.log; then echo "the addon builds with warnings here"; exit 1; fi
    ./node_modules/.bin/tsc -p tsconfig.build.json
    ./node_modules/.bin/vitest run test/native test/lib
    node scripts/test-summary.mjs test-results/vitest.json --no-skips'
  rc=$?
  fi
  # systemd's rules proven against this suite's systemd: the compatibility differential test
  # runs the real systemd-sysext merge (private mount namespace, the chroot's root a mount of
  # its own, tmpfs on /run) and compares every verdict with checkCompatibility's for the systemd
  # that detectSystemd finds there (its version and its ID_LIKE capability); the overlay
  # differential compares the trees that systemd mounts with mergeOffline's and the merged view's.
  # sets-live merges applied sets into an `ostree admin` deployment with this systemd;
  # sysext-driver runs the command and (255+) the Varlink driver side by side.
  if [ $rc -eq 0 ]; then
    unshare -m --propagation private bash -c '
      set -e
      c=$1
      mount --rbind "$c" "$c"
      mount -t tmpfs tmpfs "$c/run"
      chroot "$c" env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 OSTREE_SYSEXT_REQUIRE_ROOT_TESTS=1 bash -c "
        set -e
        cd /work/osx
        systemd-sysext --version | head -n 1
        ./node_modules/.bin/vitest run test/e2e/compat-systemd.test.ts test/e2e/overlay-systemd.test.ts test/e2e/sets-live.test.ts test/e2e/sysext-driver.test.ts
        node scripts/test-summary.mjs test-results/vitest.json --no-skips"' _ "$c"
    rc=$?
  fi
  set -e
  cleanup
  mounted=()
  echo "test-libostree-versions: $suite: $([ $rc -eq 0 ] && echo passed || echo "FAILED (exit $rc)")"
  [ $rc -eq 0 ] || status=1
done
exit $status
