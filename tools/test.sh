#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite.
# Tests that need ../shared (the reference models and vectors) skip with a message when
# it is absent; point BITTTT_SHARED at it if it lives elsewhere.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/build.sh" -DBITTTT_WERROR=ON
cd "$root/build"
ctest --output-on-failure -j "$(nproc)"
# The engine end to end on the other kernel paths too (the default run above uses the best
# the CPU has: AVX2 with the lookup-table design): the maddubs design and the scalar ISA.
if ./bitttt --version | grep -q "avx2 available"; then
  BITTTT_TERNARY_KERNEL=maddubs ./bitttt_tests "[engine],[golden],[batch]"
fi
BITTTT_ISA=generic ./bitttt_tests "[engine],[golden],[batch]"
