#!/usr/bin/env bash
# Builds bitttt with AddressSanitizer + UndefinedBehaviorSanitizer and runs the test suite
# under them: any sanitizer report (memory error, leak, undefined behaviour) fails its test.
# The widest kernel sweeps skip their largest shapes here (BITTTT_SANITIZED).
#
# Usage: tools/test-sanitize.sh [--fuzz-build] [BUILD_DIR] [-- extra ctest args...]
#   BUILD_DIR     build folder (default: build-asan in the repository, gitignored)
#   --fuzz-build  build with clang and libFuzzer's coverage instrumentation, configured
#                 exactly as tools/fuzz.sh configures WORKDIR/build-fuzz (with
#                 FUZZ_BUILD_TESTS=ON), so the fuzz targets can then be built in the same
#                 folder without compiling the library again (tools/test-hardening.sh)
#
# Without --fuzz-build: the default compiler (gcc on Debian), RelWithDebInfo at -O1 -g1.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-}" in
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
esac
fuzz_build=0
if [ "${1:-}" = "--fuzz-build" ]; then
  fuzz_build=1
  shift
fi
build="$root/build-asan"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  build="$(realpath -m "$1")"
  shift
fi
[ "${1:-}" = "--" ] && shift

jobs="$(nproc)"
start=$(date +%s)
# -O1 and line tables only: much quicker to build than -O2 -g, and every report still
# names file:line. Only what the tests run is built.
if [ "$fuzz_build" = 1 ]; then
  "$root/tools/install-deps.sh" --fuzz
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DBITTTT_FUZZ=ON -DBITTTT_BUILD_TESTS=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" >/dev/null
else
  "$root/tools/install-deps.sh"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" \
    -DBITTTT_SANITIZE=ON >/dev/null
fi
cmake --build "$build" -j "$jobs" --target bitttt_tests bitttt bitttt-run
built=$(date +%s)

# halt_on_error / abort_on_error: the first report ends the process with a failure.
# detect_leaks=1: leaks fail too. print_stacktrace: UBSan reports say where.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
cd "$build"
status=0
# (The kernel tests already run every kernel, scalar and both AVX2 designs, on awkward
# shapes here; the end-to-end reruns per kernel are tools/test.sh's.)
ctest --output-on-failure -j "$jobs" "$@" || status=$?
done_at=$(date +%s)
echo "test-sanitize: build $((built - start)) s, tests $((done_at - built)) s" >&2
exit "$status"
