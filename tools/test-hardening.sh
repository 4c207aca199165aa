#!/usr/bin/env bash
# The hardening checks CI runs after tools/test.sh: the whole test suite under
# AddressSanitizer + UndefinedBehaviorSanitizer, then every libFuzzer target for a bounded
# time, both from one clang build (instrumented once for the sanitizers and for coverage).
#
# Usage: tools/test-hardening.sh [WORKDIR]
#   WORKDIR  the build (WORKDIR/build-fuzz), corpora and findings (default: build-hardening
#            in the repository, gitignored)
#
# Environment:
#   FUZZ_SECONDS   fuzzing time per target (default 60)
#   FUZZ_PARALLEL  targets fuzzed at once (default 5: all of them, sharing the cores, so
#                  that the fuzzing takes about FUZZ_SECONDS in all)
# Exit status: non-zero if a test fails, a sanitizer reports, or a fuzz target finds a crash.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-}" in
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
esac
work="$(realpath -m "${1:-$root/build-hardening}")"
parallel="${FUZZ_PARALLEL:-5}"
start=$(date +%s)
# The sanitizer suite leaves out the five slowest compute-only test cases (together about
# a third of its time; the release suite of tools/test.sh runs them): the scalar LUT
# reference sweeps (the AVX2 kernel tests call the same reference under the sanitizers),
# the F32 perplexity of stories260K (the engine's F32 path runs in the other golden and
# engine tests), the bit-budget allocation and 4096x4096 conversion sweeps (the converter's
# code runs in the other convert tests), and the linear-time check of the largest tensor
# count (a time bound; the same parsing runs in the other hostile .btt tests).
SANITIZE_SKIP='^(LUT reference GEMV|golden: stories260K F32 perplexity|allocate_bases meets the budget|convert: defaults \+ dense keep a 4096x4096|hostile \.btt: the largest tensor count allowed)'
bash "$root/tools/test-sanitize.sh" --fuzz-build "$work/build-fuzz" -- -E "$SANITIZE_SKIP"
tested=$(date +%s)
# FUZZ_FORK=0: a target stops at its first finding (a CI run needs pass or fail, not a
# collection), which also skips fork mode's merging of the corpus.
FUZZ_FORK="${FUZZ_FORK:-0}" FUZZ_BUILD_TESTS=ON FUZZ_PARALLEL="$parallel" bash "$root/tools/fuzz.sh" "${FUZZ_SECONDS:-60}" "$work"
echo "test-hardening: sanitizer suite $((tested - start)) s, fuzzing $(( $(date +%s) - tested )) s" >&2
