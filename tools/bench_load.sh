#!/usr/bin/env bash
# Load time and memory of `bitttt run` on .btt files (docs/BENCHMARKS.md, "Load time and
# memory").
#
#   tools/bench_load.sh BITTTT_BINARY REPS FILE...
#
# Per file, one line of JSON:
#   warm_load_s   median stats.load_seconds of REPS runs of `run -n 1 --json` (page cache warm)
#   cold_load_s   the same with the page cache dropped before each run (needs root to write
#                 /proc/sys/vm/drop_caches; null otherwise)
#   one_pss_mib   largest PSS (/proc/PID/smaps_rollup) of one `run -n GEN` process
#   two_pss_mib   largest sum of the PSS of two such processes running at once
#   two_rss_mib   their RSS at that moment, summed (counts shared pages twice)
# The prompt is "Once upon a time"; the file needs a tokenizer. GEN (default 48) tokens
# keep the processes alive long enough to be sampled every 50 ms.
set -euo pipefail

if [[ $# -lt 3 ]]; then
    echo "usage: $0 BITTTT_BINARY REPS FILE..." >&2
    exit 2
fi
BIN=$1
REPS=$2
shift 2
GEN=${GEN:-48}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

load_s() {  # one run's stats.load_seconds
    "$BIN" run "$1" --prompt "Once upon a time" -n 1 --temp 0 --json 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["stats"]["load_seconds"])'
}

can_drop() { [[ -w /proc/sys/vm/drop_caches ]]; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }

pss_kib() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
rss_kib() { awk '/^Rss:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }

# Largest PSS sum (and the RSS sum then) of N processes running FILE at once, in KiB.
peak_pss() {
    local file=$1 n=$2 pids=() best=0 best_rss=0
    for ((i = 0; i < n; i++)); do
        "$BIN" run "$file" --prompt "Once upon a time" -n "$GEN" --temp 0 >/dev/null 2>&1 &
        pids+=($!)
    done
    while :; do
        local alive=0 sum=0 rss=0
        for p in "${pids[@]}"; do
            if kill -0 "$p" 2>/dev/null; then
                alive=$((alive + 1))
                sum=$((sum + $(pss_kib "$p")))
                rss=$((rss + $(rss_kib "$p")))
            fi
        done
        [[ $alive -eq 0 ]] && break
        if [[ $alive -eq $n && $sum -gt $best ]]; then
            best=$sum
            best_rss=$rss
        fi
        sleep 0.05
    done
    wait
    echo "$best $best_rss"
}

for f in "$@"; do
    load_s "$f" >/dev/null  # warm the page cache
    warm=$(for ((r = 0; r < REPS; r++)); do load_s "$f"; done | median)
    cold=null
    if can_drop; then
        cold=$(for ((r = 0; r < REPS; r++)); do drop; load_s "$f"; done | median)
    fi
    load_s "$f" >/dev/null
    read -r one _ < <(peak_pss "$f" 1)
    read -r two two_rss < <(peak_pss "$f" 2)
    printf '{"file": "%s", "bytes": %d, "warm_load_s": %s, "cold_load_s": %s, "one_pss_mib": %.1f, "two_pss_mib": %.1f, "two_rss_mib": %.1f}\n' \
        "$f" "$(stat -c %s "$f")" "$warm" "$cold" "$(echo "$one / 1024" | bc -l)" "$(echo "$two / 1024" | bc -l)" \
        "$(echo "$two_rss / 1024" | bc -l)"
done
