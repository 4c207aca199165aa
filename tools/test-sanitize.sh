#!/usr/bin/env bash
# Builds bitttt with AddressSanitizer + UndefinedBehaviorSanitizer and runs the test suite
# under them: any sanitizer report (memory error, leak, undefined behaviour) fails its test.
# Like tools/test.sh, the engine tests then run again on the scalar kernels (and on the
# other AVX2 design when the CPU has AVX2).
#
# Usage: tools/test-sanitize.sh [BUILD_DIR] [-- extra ctest args...]
#   BUILD_DIR  build folder (default: build-asan in the repository, gitignored)
#
# Uses the default compiler (gcc on Debian); the build is RelWithDebInfo at -O1 -g1.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-}" in
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
esac
build="$root/build-asan"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  build="$(realpath -m "$1")"
  shift
fi
[ "${1:-}" = "--" ] && shift

"$root/tools/install-deps.sh"

# halt_on_error / abort_on_error: the first report ends the process with a failure.
# detect_leaks=1: leaks fail too. print_stacktrace: UBSan reports say where.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
jobs="$(nproc)"

start=$(date +%s)
# -O1 and line tables only (-g1): much quicker to build than -O2 -g, and every report
# still names file:line. Only what the tests run is built.
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" \
  -DBITTTT_SANITIZE=ON >/dev/null
cmake --build "$build" -j "$jobs" --target bitttt_tests bitttt bitttt-run
built=$(date +%s)

cd "$build"
status=0
ctest --output-on-failure -j "$jobs" "$@" || status=$?
if [ "$status" -eq 0 ]; then
  if ./bitttt --version | grep -q "avx2 available"; then
    BITTTT_TERNARY_KERNEL=maddubs ./bitttt_tests "[engine],[golden],[batch]" || status=$?
  fi
  BITTTT_ISA=generic ./bitttt_tests "[engine],[golden],[batch]" || status=$?
fi
done_at=$(date +%s)
echo "test-sanitize: build $((built - start)) s, tests $((done_at - built)) s" >&2
exit "$status"
