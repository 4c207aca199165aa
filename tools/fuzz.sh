#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan), builds their seed
# corpora and runs each target for SECONDS, one after the other.
#
# Usage: tools/fuzz.sh SECONDS [WORKDIR]
#   SECONDS  fuzzing time per target (libFuzzer -max_total_time)
#   WORKDIR  build, corpora and findings (default /tmp/bitttt-fuzz); kept between runs,
#            so each run starts from the corpora the previous ones grew
#
# Environment:
#   FUZZ_TARGETS="fuzz_config fuzz_btt"  run only these (default: all five)
#   FUZZ_FORK=0        stop a target at its first finding (default: keep fuzzing after
#                      crashes, timeouts and OOMs in libFuzzer's fork mode, to collect more)
#   FUZZ_FULL_SEEDS=1  also seed fuzz_tokenizer with the whole 9 MB Llama-3 tokenizer.json
#                      (slow to mutate; by default a cut-down copy with the same structure)
#   FUZZ_ARGS          extra libFuzzer flags for every target
#   FUZZ_JOBS          build jobs (default: nproc)
#   FUZZ_PARALLEL      targets fuzzed at once, one core each (default 1)
#   FUZZ_BUILD_TESTS   ON: keep the test suite in the build (as tools/test-sanitize.sh
#                      --fuzz-build makes it), so one instrumented build serves both
#   FUZZ_TRIAGE_MAX    findings per target reproduced for the summary (default 40)
#   BITTTT_SHARED      the shared data folder (default: ../shared beside the repository;
#                      seeds from it are skipped when it is absent)
#
# WORKDIR/build-fuzz    the fuzz build (tests/fuzz, plus bitttt and bitttt-synth for seeds)
# WORKDIR/seeds/T       seed inputs of target T, rebuilt on every run
# WORKDIR/corpus/T      the corpus libFuzzer grows, kept
# WORKDIR/crashes/T     crash-*, timeout-*, oom-*, leak-* inputs; WORKDIR/logs/T.log
# WORKDIR/reports/T     each new finding reproduced, with its symbolised stack
#
# Reproduce a finding: WORKDIR/build-fuzz/tests/fuzz/T FILE; minimise it:
#   WORKDIR/build-fuzz/tests/fuzz/T -minimize_crash=1 -runs=20000 -exact_artifact_path=OUT FILE
# Every target catches bitttt::Error (the clean rejection of a bad file) and nothing else.
# Exit status: 0 if no target found anything, 1 if one did, 2 on bad usage.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
esac
if [ $# -lt 1 ] || [ $# -gt 2 ] || ! [[ "$1" =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ]; then
  usage >&2
  exit 2
fi
seconds="$1"
work="$(realpath -m "${2:-/tmp/bitttt-fuzz}")"
shared="${BITTTT_SHARED:-$root/../shared}"
all_targets=(fuzz_safetensors fuzz_safetensors_index fuzz_config fuzz_tokenizer fuzz_btt)
read -r -a targets <<< "${FUZZ_TARGETS:-${all_targets[*]}}"
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "fuzz: unknown target '$t'" >&2; exit 2; }
done
jobs="${FUZZ_JOBS:-$(nproc)}"
log() { echo "fuzz: $*" >&2; }

"$root/tools/install-deps.sh" --fuzz

# ---- build ---------------------------------------------------------------------------------
build="$work/build-fuzz"
mkdir -p "$work"
t0=$(date +%s)
# -O1 with line tables: the usual fuzzing trade of speed for stacks; no NDEBUG, so
# assertions (nlohmann's included) stay on and count as findings.
# tools/test-sanitize.sh --fuzz-build configures the same way, so the test suite and the
# targets can share one build.
build_tests="${FUZZ_BUILD_TESTS:-OFF}"
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -DBITTTT_FUZZ=ON -DBITTTT_BUILD_TESTS="$build_tests" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only" >/dev/null
cmake --build "$build" -j "$jobs" --target fuzz
log "build took $(( $(date +%s) - t0 )) s"

fuzzdir="$build/tests/fuzz"
cli="$build/bitttt"
gen="$fuzzdir/bitttt-fuzz-seeds"
scratch="/dev/shm/bitttt-fuzz-$$"
[ -d /dev/shm ] && [ -w /dev/shm ] || scratch="$work/tmp/scratch-$$"
mkdir -p "$scratch" "$work/tmp"
trap 'rm -rf "$scratch"' EXIT
export BITTTT_FUZZ_TMP="$scratch"  # the targets' own files (fuzz_common.h)
export TMPDIR="$work/tmp"          # libFuzzer's fork-mode folders
# The instrumented tools that make seeds: leaks there are not what this run is about.
export ASAN_OPTIONS="detect_leaks=0"

# ---- seeds ---------------------------------------------------------------------------------
seeds="$work/seeds"
rm -rf "$seeds"
mkdir -p "$seeds/models"
for t in "${all_targets[@]}"; do mkdir -p "$seeds/$t"; done
"$gen" hostile "$seeds"

m="$seeds/models"
"$gen" tiny-model "$m/tiny-sp"
"$gen" tiny-model "$m/tiny-bl" bl
seed_convert() {  # OUT.btt INPUT convert-args...: a .btt for the seeds, or a warning
  local out="$1" in="$2"
  shift 2
  "$cli" convert "$in" -q -t 1 -o "$out" "$@" >/dev/null 2>"$out.log" || log "warning: convert $in $* failed: $(tail -1 "$out.log")"
}
seed_convert "$m/tiny-sp-n2.btt" "$m/tiny-sp" --bases 2
seed_convert "$m/tiny-sp-n2-rows.btt" "$m/tiny-sp" --bases 2 --arrangement rows --packing dense
seed_convert "$m/tiny-sp-n1-dense-free.btt" "$m/tiny-sp" --bases 1 --packing dense --scales free --refine 1
seed_convert "$m/tiny-sp-n3-8bit.btt" "$m/tiny-sp" --bases 3 --scale-bits 8 --block-size 32
seed_convert "$m/tiny-bl-n2.btt" "$m/tiny-bl" --bases 2 --lm-head f16 --embeddings ternary
"$build/bitttt-synth" gaussian --rows 16 --cols 128 --dtype f16 -o "$m/gauss.safetensors" >/dev/null
seed_convert "$m/weights-only.btt" "$m/gauss.safetensors" --bases 2
calib_text="$m/calib.txt"
printf 'Once upon a time, there was a little girl named Lily. She liked to play in the park.\nThe end.\n' > "$calib_text"
"$cli" calibrate "$m/tiny-sp" --file "$calib_text" -o "$m/calib-full.safetensors" --ctx 8 --chunks 2 -t 1 >/dev/null 2>&1 ||
  log "warning: calibrate (full) failed"
"$cli" calibrate "$m/tiny-sp" --file "$calib_text" -o "$m/calib-diag.safetensors" --ctx 8 --chunks 2 --stats diag -t 1 \
  >/dev/null 2>&1 || log "warning: calibrate (diag) failed"

stories="$shared/models/stories260K-hf"
if [ -d "$stories" ]; then
  seed_convert "$m/stories260K-n1.btt" "$stories" --bases 1
  cp "$stories/config.json" "$seeds/fuzz_config/stories260K"
  cp "$stories/tokenizer.json" "$seeds/fuzz_tokenizer/stories260K"
  { cat "$stories/tokenizer.json"; printf '\0Once upon a time <s> there\0\xe2\x96\x81the\0'; } > "$seeds/fuzz_tokenizer/stories260K-texts"
  # The header and the first part of the data: a truncated copy, and the header in the
  # "header NUL data" form with a little data.
  head -c 65536 "$stories/model.safetensors" > "$seeds/fuzz_safetensors/stories260K-truncated"
  "$gen" split "$stories/model.safetensors" "$seeds/fuzz_safetensors/stories260K-split" 4096
else
  log "no $stories: seeds from it skipped"
fi
llama3_tok="$shared/models/llama3-tokenizer/tokenizer.json"
if [ -f "$llama3_tok" ]; then
  "$gen" shrink-tokenizer "$llama3_tok" "$seeds/fuzz_tokenizer/llama3-2000" 2000
  [ "${FUZZ_FULL_SEEDS:-0}" = 1 ] && cp "$llama3_tok" "$seeds/fuzz_tokenizer/llama3-full"
else
  log "no $llama3_tok: seed skipped"
fi

for f in "$m"/tiny-sp/config.json "$m"/tiny-bl/config.json; do cp "$f" "$seeds/fuzz_config/$(basename "$(dirname "$f")")"; done
for f in "$m"/*/model.safetensors "$m"/gauss.safetensors "$m"/calib-*.safetensors; do
  [ -f "$f" ] || continue
  name="$(basename "$(dirname "$f")")-$(basename "$f" .safetensors)"
  cp "$f" "$seeds/fuzz_safetensors/$name"
  "$gen" split "$f" "$seeds/fuzz_safetensors/$name-split"
done
for f in "$m"/*.btt; do
  [ -f "$f" ] || continue
  cp "$f" "$seeds/fuzz_btt/$(basename "$f" .btt)"
  "$gen" split "$f" "$seeds/fuzz_btt/$(basename "$f" .btt)-split"
done
if [ -f "$m/tiny-sp-n2.btt" ]; then
  "$gen" btt-hostile "$m/tiny-sp-n2.btt" "$seeds/fuzz_btt"
fi
rm -rf "$m"

# ---- fuzzing -------------------------------------------------------------------------------
dict_of() { echo "$root/tests/fuzz/dict/${1#fuzz_}.dict"; }
fork_args=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
[ "${FUZZ_FORK:-1}" = 0 ] && fork_args=()
read -r -a extra <<< "${FUZZ_ARGS:-}"
# No symbolisation while fuzzing (each crash would cost seconds); the triage below
# reproduces every finding with it.
export ASAN_OPTIONS="detect_leaks=1:symbolize=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:symbolize=0"
mkdir -p "$work/logs"
fuzz_one() {  # T: fuzz one target; writes its summary row to WORKDIR/tmp/row-T
  local t="$1" corpus="$work/corpus/$1" crashes="$work/crashes/$1" logfile="$work/logs/$1.log"
  local before after new start took status=0 execs files bytes
  mkdir -p "$corpus" "$crashes"
  touch "$work/tmp/start-$t"
  before="$(find "$crashes" -maxdepth 1 -type f | wc -l)"
  log "$t: fuzzing for $seconds s (log: $logfile)"
  start=$(date +%s)
  "$fuzzdir/$t" "$corpus" "$seeds/$t" -dict="$(dict_of "$t")" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -timeout=10 -artifact_prefix="$crashes/" -print_final_stats=1 "${fork_args[@]}" "${extra[@]}" \
    </dev/null >"$logfile" 2>&1 || status=$?
  took=$(( $(date +%s) - start ))
  # Executions: the final statistics (one process), or fork mode's last progress line.
  execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logfile" | tail -1 | grep -o '[0-9]*$' || true)"
  [ -n "$execs" ] || execs="$(grep -oE '^#[0-9]+' "$logfile" | tail -1 | tr -d '#' || true)"
  files="$(find "$corpus" -type f | wc -l)"
  bytes="$(du -sb "$corpus" | cut -f1)"
  after="$(find "$crashes" -maxdepth 1 -type f | wc -l)"
  new=$((after - before))
  # A non-zero exit without an artifact (e.g. the harness died) counts too.
  if [ "$new" -eq 0 ] && [ "$status" -ne 0 ]; then new=1; fi
  printf '%-24s %8s %12s %8s %12s %8s\n' "$t" "$took" "${execs:-?}" "$files" "$bytes" "$new" >"$work/tmp/row-$t"
  log "$t: done ($took s, ${execs:-?} executions, $new new findings)"
}
# FUZZ_PARALLEL targets at a time (each one process in fork mode: one core each).
parallel="${FUZZ_PARALLEL:-1}"
pids=()
for t in "${targets[@]}"; do
  rm -f "$work/tmp/row-$t"
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
  fuzz_one "$t" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
rows=()
found=0
for t in "${targets[@]}"; do
  if [ -f "$work/tmp/row-$t" ]; then
    row="$(cat "$work/tmp/row-$t")"
  else
    row="$(printf '%-24s %8s %12s %8s %12s %8s' "$t" '?' '?' '?' '?' 1)"
  fi
  rows+=("$row")
  [ "$(awk '{print $NF}' <<< "$row")" = 0 ] || found=1
done

# ---- triage --------------------------------------------------------------------------------
# Reproduces each new finding (symbolised) into WORKDIR/reports/T/NAME.txt and names it by
# its kind and the innermost frame in bitttt's own sources.
export ASAN_OPTIONS="detect_leaks=1:symbolize=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:symbolize=1"
max_triage="${FUZZ_TRIAGE_MAX:-40}"
signature() {  # REPORT -> "kind|where"
  local r="$1" kind where
  kind="$(grep -m1 -o "terminate called after throwing an instance of '[^']*'" "$r" | sed "s/.*of '\(.*\)'/uncaught \1/" || true)"
  [ -n "$kind" ] || kind="$(grep -m1 -o 'ERROR: AddressSanitizer: [a-z-]*' "$r" | sed 's/ERROR: AddressSanitizer: /asan /' || true)"
  [ -n "$kind" ] || kind="$(grep -m1 -o 'runtime error: .*' "$r" | cut -c16- | sed -E 's/-?[0-9][0-9.e+-]*/N/g' | cut -c1-70 || true)"
  [ -n "$kind" ] || kind="$(grep -m1 -oE 'ERROR: (libFuzzer|LeakSanitizer): [a-z -]*' "$r" | sed -E 's/ERROR: [A-Za-z]*: //; s/ after *$//' || true)"
  [ -n "$kind" ] || kind="not reproduced"
  where="$(grep -oE "(in [^ ]+ )?$root/(src|include)/[^ :]+:[0-9]+" "$r" | head -1 | sed "s|$root/||" || true)"
  [ -n "$where" ] || where="$(grep -oE "$root/src/[^ :]+:[0-9]+" "$r" | head -1 | sed "s|$root/||" || true)"
  echo "$kind|${where:-?}"
}
findings=()
for t in "${targets[@]}"; do
  crashes="$work/crashes/$t"
  reports="$work/reports/$t"
  mkdir -p "$reports"
  n=0
  declare -A seen=()
  while IFS= read -r f; do
    n=$((n + 1))
    [ "$n" -le "$max_triage" ] || { log "$t: more than $max_triage new findings; the rest not triaged"; break; }
    rep="$reports/$(basename "$f").txt"
    timeout 300 "$fuzzdir/$t" -rss_limit_mb=2048 -timeout=10 "$f" </dev/null >"$rep" 2>&1 || true
    # A stack overflow's report shows only the innermost frames of the recursion: ask gdb
    # for the outermost ones, which name the caller.
    if grep -q 'AddressSanitizer: stack-overflow' "$rep" && command -v gdb >/dev/null; then
      { echo "---- gdb: outermost frames"
        timeout 300 gdb -q -batch -ex run -ex 'bt -30' --args "$fuzzdir/$t" -rss_limit_mb=2048 -timeout=10 "$f" </dev/null 2>&1 |
          grep -E '^#[0-9]+ ' || true
      } >>"$rep"
    fi
    sig="$(signature "$rep")"
    if [ -z "${seen[$sig]:-}" ]; then
      seen[$sig]="$f"
      findings+=("$(printf '%-22s %-44s %-60s %9s  %s' "$t" "${sig%%|*}" "${sig#*|}" "$(stat -c %s "$f")" "$f")")
    fi
  done < <(find "$crashes" -maxdepth 1 -type f -newer "$work/tmp/start-$t" | sort)
  unset seen
done

echo
printf '%-24s %8s %12s %8s %12s %8s\n' target seconds executions corpus bytes crashes
for r in "${rows[@]}"; do echo "$r"; done
echo
if [ "$found" = 1 ]; then
  echo "distinct findings of this run (kind, innermost bitttt frame, input bytes, input); reports in $work/reports/"
  for f in "${findings[@]}"; do echo "$f"; done
  exit 1
fi
echo "no findings"
