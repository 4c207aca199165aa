#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite.
# Tests that need ../shared (the reference models and vectors) skip with a message when
# it is absent; point BITTTT_SHARED at it if it lives elsewhere.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/build.sh" -DBITTTT_WERROR=ON
cd "$root/build"
ctest --output-on-failure -j "$(nproc)"
