#!/usr/bin/env bash
# Leaks: runs test/faults/leak-driver.mjs (every common native entry point, OSX_LEAK_ROUNDS
# times) under valgrind and fails on any definite leak. Needs dist/ and build/ (npm run build).
#   OSX_LEAK_ROUNDS=20 scripts/test-leak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "test-leak: valgrind is not installed" >&2; exit 1; }
export G_SLICE=always-malloc G_DEBUG=gc-friendly
exec valgrind --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
  --error-exitcode=1 --suppressions=test/faults/valgrind.supp --num-callers=30 \
  --trace-children=no --log-file="${OSX_LEAK_LOG:-/tmp/osx-leak.%p.log}" \
  node test/faults/leak-driver.mjs
