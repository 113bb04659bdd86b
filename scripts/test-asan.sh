#!/usr/bin/env bash
# Memory safety: builds the addon with AddressSanitizer + UBSan in a COPY of the tree (a
# rebuild in place would delete build/ under anyone else's running tests) and runs vitest
# there with the matching libasan preloaded into the (uninstrumented) node.
#   scripts/test-asan.sh [vitest args…]   default: test/native test/lib test/security
#   scripts/test-asan.sh test/faults/gc-stress.test.ts   GC stress against the instrumented addon
#   OSX_ASAN_DIR=/path   reuse/keep the copy there (default: a new temp dir, removed after)
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
dir="${OSX_ASAN_DIR:-}"
keep=1
if [ -z "$dir" ]; then dir="$(mktemp -d /tmp/osx-asan.XXXXXX)"; keep=0; fi
mkdir -p "$dir"
cleanup() { [ "$keep" = 1 ] || rm -rf "$dir"; }
trap cleanup EXIT

# The tree as it is (tracked and untracked sources), without build products.
(cd "$src" && git ls-files -z --cached --others --exclude-standard | xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _ | tar --null -T - -cf -) | tar -C "$dir" -xf -
# node_modules is only read: hard links are enough and take a second.
if [ ! -d "$dir/node_modules" ]; then cp -al "$src/node_modules" "$dir/node_modules"; fi

cd "$dir"
npx node-gyp rebuild --sanitize=true -j "$(nproc)" >build.log 2>&1 || { tail -50 build.log; exit 1; }
# The rebuilt addon must really be instrumented.
nm -D build/Release/ostree_sysext.node | grep -c __asan_init >/dev/null || { echo "test-asan: addon is not ASan-instrumented" >&2; exit 1; }

libasan="$(g++ -print-file-name=libasan.so)"
libubsan="$(g++ -print-file-name=libubsan.so)"
# V8 and node are not instrumented: leak detection would report their allocations.
# Node probes its own stack: ASan must not intercept its signal handlers or alternate stacks.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=66:allow_user_segv_handler=1:use_sigaltstack=0:detect_stack_use_after_return=0:log_path=$dir/asan.log"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=67:log_path=$dir/ubsan.log"
export LD_PRELOAD="$libasan $libubsan"
# Tests that run node children against the instrumented addon (test/faults/gc-stress.test.ts)
# put this back as their LD_PRELOAD (test/security/asan-setup.ts removes it from the workers).
export OSX_ASAN_PRELOAD="$LD_PRELOAD"
# GLib: every g_slice allocation through malloc so ASan sees it.
export G_SLICE=always-malloc G_DEBUG=gc-friendly
export OSX_SANITIZED=1

if [ "$#" -eq 0 ]; then set -- test/native test/lib test/security; fi
status=0
# The event-loop delay test times libostree work against 10/50 ms bounds: under the sanitizer
# every allocation is several times slower, so it measures ASan, not the library (it runs
# in npm test; bench/ reports the figures). It checks no memory safety, so it stays out here.
npx vitest run --config test/security/asan.vitest.config.ts --exclude test/native/eventloop.test.ts "$@" || status=$?
unset LD_PRELOAD
reports=$(ls "$dir"/asan.log* "$dir"/ubsan.log* 2>/dev/null || true)
if [ -n "$reports" ]; then
  echo "test-asan: sanitizer reports:" >&2
  for f in $reports; do echo "== $f" >&2; head -80 "$f" >&2; done
  exit 1
fi
[ "$status" = 0 ] && echo "test-asan: no AddressSanitizer/UBSan report"
exit "$status"
