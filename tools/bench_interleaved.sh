#!/usr/bin/env bash
# Generation speed of several .btt files measured in one run, interleaved, so that the
# machine's drift hits every file alike (docs/BENCHMARKS.md, "Dense tiles against 2bit").
#
#   tools/bench_interleaved.sh BITTTT_BINARY ROUNDS FILE...
#
# A FILE given as OTHER_BINARY::FILE runs with that binary instead (e.g. an older build, to
# compare versions on one file).
#
# Each round runs `bitttt bench FILE -p 0 -n 64 -r 3 --json` once per file, in order; the
# line per file gives the median over rounds of bench's tg median, every round's figure,
# and the bytes read per token. THREADS (default 2) sets -t.
set -euo pipefail
if [[ $# -lt 3 ]]; then
    echo "usage: $0 BITTTT_BINARY ROUNDS FILE..." >&2
    exit 2
fi
BIN=$1
ROUNDS=$2
shift 2
THREADS=${THREADS:-2}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ((r = 0; r < ROUNDS; r++)); do
    i=0
    for f in "$@"; do
        bin=$BIN
        if [[ $f == *::* ]]; then
            bin=${f%%::*}
            f=${f#*::}
        fi
        "$bin" bench "$f" -p 0 -n 64 -r 3 -t "$THREADS" --json -q >"$out/$i.$r.json"
        i=$((i + 1))
    done
done
i=0
for f in "$@"; do
    python3 - "$f" "$out" "$i" "$ROUNDS" <<'EOF'
import json, statistics, sys
f, out, i, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
runs = [json.load(open(f"{out}/{i}.{r}.json")) for r in range(rounds)]
tg = [run["tg_tokens_per_s"]["median"] for run in runs]
print(json.dumps({"file": f, "tg_median": round(statistics.median(tg), 2), "tg_rounds": [round(t, 2) for t in tg],
                  "mb_per_token": round((runs[0]["linear_bytes"] + runs[0]["output_layer_bytes"]) / 1e6, 1),
                  "triad_gb_s_best": round(max(run["bandwidth_gb_s"] for run in runs), 1)}))
EOF
    i=$((i + 1))
done
