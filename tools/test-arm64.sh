#!/usr/bin/env bash
# Cross-builds bitttt for 64-bit ARM (aarch64, Release) and runs the test suite under
# qemu-user, once per CPU model: qemu's `max` (Armv8/9 with the dot-product extension,
# asimddp) and a Cortex-A72 (Armv8.0-A: NEON without dot product), so that an ARM kernel and
# its fallback both get tested. Prints how long each phase took.
#
# Usage: tools/test-arm64.sh [--quick] [WORKDIR]
#   WORKDIR  the build folder (default: build-arm64 in the repository, gitignored)
#   --quick  the subset for CI (QUICK_TESTS below): what can differ between CPU models, i.e.
#            the test cases of the kernels, ops, dispatch and the engine (Catch2 tags
#            [kernels] [int8] [ops] [engine] [batch] [mixed] [threads] [avx2] [neon]),
#            except the three "LUT reference GEMV" sweeps (the portable scalar LUT
#            reference, 45 s under qemu), with the NEON LUT sweeps kept to shapes of at most
#            4,096 weights (BITTTT_TEST_QUICK=1, as under the sanitizers; every small,
#            awkward shape stays). It leaves out the converter, format, tokenizer,
#            CLI, hostile-input, calibration and golden tests: portable code, which the
#            full run here checks and tools/test.sh runs natively (the golden perplexity
#            test alone takes 3 minutes under qemu)
#
# Times on 2 cores: the build 8 to 10 minutes (--quick, only the tests' targets: about 4);
# the full suite about 4.5 minutes per CPU model, --quick about 45-50 s per CPU model.
#
# Environment:
#   ARM64_CPUS     qemu CPU models to test on, in order (default "max cortex-a72")
#   JOBS           build jobs and tests run at once (default: nproc)
#   BITTTT_SHARED  the shared data folder (default: ../shared beside the repository, as in a
#                  native build; the tests that need it skip with a message when it is absent)
#
# Installs what is missing (Debian 12; apt-get as root or through sudo): the host packages
# of tools/install-deps.sh (cmake, pkg-config and the header-only libraries: CLI11,
# nlohmann-json, Eigen, Catch2 v2, whose /usr/include headers serve every architecture),
# g++-aarch64-linux-gnu, qemu-user (qemu-aarch64), and the arm64 builds of the compiled
# libraries through Debian multiarch (dpkg --add-architecture arm64): libspdlog-dev:arm64
# (with libfmt-dev:arm64) and libxxhash-dev:arm64. They install beside the amd64 -dev
# packages without conflicts (all Multi-Arch: same, at the same versions), into
# /usr/lib/aarch64-linux-gnu. The toolchain file is tools/aarch64-linux-gnu.cmake.
#
# Tests run through ctest, each test case in its own qemu-aarch64 process, JOBS at a time;
# the programs they start (bitttt, bitttt-run, bitttt-synth) run under the same CPU model
# (QEMU_CPU). WORKDIR/ctest-CPU.log holds every test's output. The script checks that the
# CPU models differ as intended (AT_HWCAP's asimddp bit) before testing on them.
# Exit status: non-zero if the build or any test fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }
quick=0
work=""
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --quick) quick=1 ;;
    -*) echo "test-arm64: unknown option '$arg' (see --help)" >&2; exit 2 ;;
    *)
      if [ -n "$work" ]; then echo "test-arm64: one WORKDIR only (see --help)" >&2; exit 2; fi
      work="$arg" ;;
  esac
done
build="$(realpath -m "${work:-$root/build-arm64}")"
read -r -a cpus <<< "${ARM64_CPUS:-max cortex-a72}"
jobs="${JOBS:-$(nproc)}"

# --quick: the test cases of this Catch2 test spec (alternatives separated by commas; ~ excludes).
QUICK_TESTS='[kernels]~"LUT reference GEMV*",[int8],[ops],[engine],[batch],[mixed],[threads],[avx2],[neon]'

log() { echo "test-arm64: $*" >&2; }
phases=()
phase_start=$(date +%s)
phase_done() {  # reports and records the phase that just ended
  phases+=("$(printf '%-32s %5d s' "$1" $(( $(date +%s) - phase_start )))")
  log "${phases[-1]}"
  phase_start=$(date +%s)
}
summary() {
  log "timings (${jobs} jobs):"
  for p in "${phases[@]}"; do echo "  $p" >&2; done
}

# ---- install -----------------------------------------------------------------------------
"$root/tools/install-deps.sh"
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in g++-aarch64-linux-gnu qemu-user libspdlog-dev:arm64 libxxhash-dev:arm64; do
  installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo="sudo"
    else
      log "missing packages (${missing[*]}) and not root; install them with apt-get"
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $sudo dpkg --add-architecture arm64
  fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
phase_done "install"

# ---- build -------------------------------------------------------------------------------
cmake -S "$root" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$root/tools/aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DBITTTT_WERROR=ON >/dev/null
# --quick builds only what the tests run (bitttt_tests and the programs it starts), not
# the benchmark programs.
targets=()
[ "$quick" = 1 ] && targets=(--target bitttt_tests)
cmake --build "$build" -j "$jobs" "${targets[@]}"
phase_done "build (aarch64, Release)"

# ---- tests, per CPU model -----------------------------------------------------------------
# AT_HWCAP bit 20 is HWCAP_ASIMDDP (the dot-product instructions), as the kernel (here qemu)
# reports it to the program; the guest's dynamic loader prints it with LD_SHOW_AUXV, set
# through QEMU_SET_ENV for the guest only (not for the host's loader of qemu itself).
hwcap_of() {
  QEMU_CPU="$1" QEMU_SET_ENV=LD_SHOW_AUXV=1 "$build/emulated/bitttt" --version |
    awk '/^AT_HWCAP:/ && !n++ { print $2 }'
}

# ctest runs what the Catch2 test spec selects: the test cases' names, as a regular expression.
filter=()
if [ "$quick" = 1 ]; then
  # (Catch2 v2's exit status after a listing is the number of test cases listed.)
  names=$("$build/emulated/bitttt_tests" --list-test-names-only "$QUICK_TESTS") || true
  names=$(sed -e '/^$/d' -e 's/[][\\.*+?^$(){}|]/\\&/g' <<< "$names")
  if [ -z "$names" ]; then
    log "--quick: no test case matches $QUICK_TESTS"
    exit 1
  fi
  filter=(-R "^($(paste -sd'|' <<< "$names"))\$")
  export BITTTT_TEST_QUICK=1  # tests/test_util.h: quick_sweeps()
  log "--quick: $(wc -l <<< "$names") test cases"
fi
status=0
for cpu in "${cpus[@]}"; do
  hwcap=$(hwcap_of "$cpu")
  if [ -z "$hwcap" ]; then
    log "qemu-aarch64 -cpu $cpu: no AT_HWCAP (is the CPU model known to qemu-aarch64 -cpu help?)"
    exit 1
  fi
  dotprod=$(( (16#${hwcap#0x} >> 20) & 1 ))
  case "$cpu" in
    max) [ "$dotprod" = 1 ] || { log "qemu-aarch64 -cpu max reports no asimddp (AT_HWCAP $hwcap)"; exit 1; } ;;
    cortex-a72) [ "$dotprod" = 0 ] || { log "qemu-aarch64 -cpu cortex-a72 reports asimddp (AT_HWCAP $hwcap)"; exit 1; } ;;
  esac
  export QEMU_CPU="$cpu"  # ctest's emulator command and the tests' child programs
  log "qemu-aarch64 -cpu $cpu (AT_HWCAP $hwcap, asimddp $dotprod): $("$build/emulated/bitttt" --version)"
  out="$build/ctest-$cpu.log"
  if (cd "$build" && ctest -V -j "$jobs" "${filter[@]}" >"$out" 2>&1); then
    result="passed"
  else
    result="FAILED"
    status=1
    # The failed tests' output is in the log; name them here.
    sed -n '/The following tests FAILED/,$p' "$out" >&2
  fi
  # Test cases that skipped (a WARN "SKIPPED: ..."; e.g. the AVX2 kernel tests on ARM).
  skipped=$(grep -E '^[0-9]+: +SKIPPED' "$out" | cut -d: -f1 | sort -u | wc -l)
  log "cpu $cpu: $(grep -E 'tests passed|tests failed' "$out" | tail -n 1); $skipped skipped in part or whole; log $out"
  phase_done "tests (-cpu $cpu$([ "$quick" = 1 ] && echo ", quick"))"
  [ "$result" = passed ] || log "tests FAILED on -cpu $cpu"
done
unset QEMU_CPU
summary
exit "$status"
