#!/usr/bin/env bash
# bitttt and llama.cpp side by side on the same synthetic weights, interleaved
# (docs/BENCHMARKS.md, "Against llama.cpp, side by side").
#
#   tools/compare-llamacpp.sh [--json] LLAMA_CPP_BUILD_DIR [WORKDIR]
#
# LLAMA_CPP_BUILD_DIR: a llama.cpp build made outside this repository from its public
# source, holding llama-bench and llama-quantize (in bin/ or at its top). Nothing of
# llama.cpp is vendored or copied; only those two programs are run.
#
# Steps, each skipped when its output is already in WORKDIR (default ./compare-work):
#   1. bitttt-synth model --preset $PRESET (default 1b-body): one HF checkpoint (BF16);
#   2. bitttt-synth gguf: the same weights as a GGUF F16 file;
#   3. llama-quantize to each of $TYPES (default TQ1_0 TQ2_0 Q2_K Q3_K_M Q4_0 Q4_K_M);
#   4. bitttt convert --bases N for N in $BASES (default 1 2 3), the defaults otherwise;
#   5. $ROUNDS rounds (default 2); in each, for each thread count in $THREADS (default
#      "2 1"), every llama.cpp type and every bitttt file in turn:
#        llama-bench -m F -p $PP -n $TG -r $REPS -t T -o json
#        bitttt bench F -p $PP -n $TG -r $REPS -t T --json   (also the memory bandwidth:
#        the STREAM triad and a read-only stream)
#      with PP = 256, TG = 64, REPS = 3 and BANDWIDTH_MIB (the triad's arrays) = 256 by
#      default.
# Output: one table (median over rounds of each engine's mean tokens/s; ratios to
# llama.cpp Q4_0 at the same thread count; for bitttt the share of the bandwidth limits,
# best triad or best read-only stream / weight bytes per token, measured in the same
# process). With --json, one
# JSON line per measurement instead: engine ("llama.cpp" or "bitttt"), type (llama.cpp's
# type name, or N1, N2, N3), bits_per_weight (file bits / parameters), threads, round,
# test ("tg" or "pp"), tokens_per_s; bitttt tg lines add bandwidth_limit_tokens_per_s
# (triad) and read_limit_tokens_per_s.
#
# BITTTT_BUILD (default ./build) holds bitttt and bitttt-synth.
set -euo pipefail

json=0
if [[ ${1:-} == --json ]]; then
    json=1
    shift
fi
if [[ $# -lt 1 || $# -gt 2 || ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
LLAMA=$1
WORK=${2:-./compare-work}
BUILD=${BITTTT_BUILD:-./build}
PRESET=${PRESET:-1b-body}
TYPES=${TYPES:-TQ1_0 TQ2_0 Q2_K Q3_K_M Q4_0 Q4_K_M}
BASES=${BASES:-1 2 3}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-2 1}
PP=${PP:-256}
TG=${TG:-64}
REPS=${REPS:-3}
BANDWIDTH_MIB=${BANDWIDTH_MIB:-256}

find_tool() {
    local name=$1
    for p in "$LLAMA/bin/$name" "$LLAMA/$name"; do
        if [[ -x $p ]]; then
            echo "$p"
            return
        fi
    done
    echo "compare-llamacpp: no $name in $LLAMA or $LLAMA/bin (build llama.cpp's llama-bench and llama-quantize there)" >&2
    exit 2
}
BENCH=$(find_tool llama-bench)
QUANT=$(find_tool llama-quantize)
for t in bitttt bitttt-synth; do
    if [[ ! -x $BUILD/$t ]]; then
        echo "compare-llamacpp: no $BUILD/$t (build bitttt first, or set BITTTT_BUILD)" >&2
        exit 2
    fi
done
BUILD=$(cd "$BUILD" && pwd)
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
log() { echo "compare-llamacpp: $*" >&2; }

# 1-4: the weights, written once.
hf=$WORK/$PRESET-hf
if [[ ! -f $hf/model.safetensors ]]; then
    log "writing the synthetic $PRESET checkpoint"
    rm -rf "$hf"
    "$BUILD/bitttt-synth" model --preset "$PRESET" -o "$hf" >&2
fi
f16=$WORK/$PRESET-f16.gguf
if [[ ! -f $f16 ]]; then
    log "exporting it as GGUF F16"
    "$BUILD/bitttt-synth" gguf "$hf" -o "$f16" >&2
fi
for t in $TYPES; do
    if [[ ! -f $WORK/$PRESET-$t.gguf ]]; then
        log "llama-quantize $t"
        "$QUANT" "$f16" "$WORK/$PRESET-$t.gguf.part" "$t" >"$WORK/quantize-$t.log" 2>&1 ||
            { log "llama-quantize $t failed: see $WORK/quantize-$t.log"; exit 1; }
        mv "$WORK/$PRESET-$t.gguf.part" "$WORK/$PRESET-$t.gguf"
    fi
done
for n in $BASES; do
    if [[ ! -f $WORK/$PRESET-N$n.btt ]]; then
        log "bitttt convert --bases $n"
        "$BUILD/bitttt" convert "$hf" --bases "$n" -o "$WORK/$PRESET-N$n.btt" -q >&2
    fi
done

# 5: the measurements, interleaved, one JSON line each into $WORK/results.jsonl.
params=$(python3 -c "import json,sys; c=json.load(open(sys.argv[1])); h,i,l,v=c['hidden_size'],c['intermediate_size'],c['num_hidden_layers'],c['vocab_size']; hd=c.get('head_dim', h//c['num_attention_heads']); q=c['num_attention_heads']*hd; kv=c['num_key_value_heads']*hd; print(v*h*(1 if c['tie_word_embeddings'] else 2) + h + l*(2*h + 2*h*q + 2*h*kv + 3*h*i))" "$hf/config.json")
results=$WORK/results.jsonl
: >"$results"
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT
for ((r = 1; r <= ROUNDS; r++)); do
    for th in $THREADS; do
        for t in $TYPES; do
            f=$WORK/$PRESET-$t.gguf
            log "round $r, $th thread(s): llama.cpp $t"
            "$BENCH" -m "$f" -p "$PP" -n "$TG" -r "$REPS" -t "$th" -o json >"$raw/out.json" 2>"$raw/err.log" ||
                { cat "$raw/err.log" >&2; exit 1; }
            python3 - "$raw/out.json" "$t" "$th" "$r" "$(stat -c %s "$f")" "$params" >>"$results" <<'EOF'
import json, sys
out, typ, th, rnd, size, params = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
for m in json.load(open(out)):
    test = "pp" if m["n_prompt"] > 0 else "tg"
    print(json.dumps({"engine": "llama.cpp", "type": typ, "bits_per_weight": round(8 * size / params, 3), "threads": th,
                      "round": rnd, "test": test, "tokens_per_s": round(m["avg_ts"], 2)}))
EOF
        done
        for n in $BASES; do
            f=$WORK/$PRESET-N$n.btt
            log "round $r, $th thread(s): bitttt N$n"
            "$BUILD/bitttt" bench "$f" -p "$PP" -n "$TG" -r "$REPS" -t "$th" --bandwidth-mib "$BANDWIDTH_MIB" --json -q \
                >"$raw/out.json"
            python3 - "$raw/out.json" "N$n" "$th" "$r" "$(stat -c %s "$f")" "$params" >>"$results" <<'EOF'
import json, sys
out, typ, th, rnd, size, params = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
j = json.load(open(out))
for test, key in (("pp", "pp_tokens_per_s"), ("tg", "tg_tokens_per_s")):
    if key in j:
        line = {"engine": "bitttt", "type": typ, "bits_per_weight": round(8 * size / params, 3), "threads": th,
                "round": rnd, "test": test, "tokens_per_s": round(j[key]["mean"], 2)}
        if test == "tg" and "tg_bandwidth_limit_tokens_per_s" in j:
            line["bandwidth_limit_tokens_per_s"] = round(j["tg_bandwidth_limit_tokens_per_s"], 2)
        if test == "tg" and "tg_read_limit_tokens_per_s" in j:
            line["read_limit_tokens_per_s"] = round(j["tg_read_limit_tokens_per_s"], 2)
        print(json.dumps(line))
EOF
        done
    done
done

if [[ $json == 1 ]]; then
    cat "$results"
    exit 0
fi
python3 - "$results" "$PRESET" "$PP" "$TG" "$ROUNDS" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
preset, pp, tg, rounds = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
threads = sorted({r["threads"] for r in rows}, reverse=True)
keys = []
for r in rows:
    k = (r["engine"], r["type"])
    if k not in keys:
        keys.append(k)
def med(engine, typ, th, test, field="tokens_per_s"):
    v = [r[field] for r in rows if (r["engine"], r["type"], r["threads"], r["test"]) == (engine, typ, th, test) and field in r]
    return statistics.median(v) if v else None
def rounds_of(engine, typ, th, test):
    return [r["tokens_per_s"] for r in rows if (r["engine"], r["type"], r["threads"], r["test"]) == (engine, typ, th, test)]
print(f"{preset}: median of {rounds} interleaved rounds (each the engine's mean over its repetitions), tokens/s; "
      f"ratios to llama.cpp Q4_0 at the same thread count")
print()
print("| engine, type | bits/weight (file) | threads | tg%s | tg / Q4_0 | tg / triad limit | tg / read limit | pp%s | pp / Q4_0 |" % (tg, pp))
print("|---|---|---|---|---|---|---|---|---|")
for th in threads:
    ref_tg, ref_pp = med("llama.cpp", "Q4_0", th, "tg"), med("llama.cpp", "Q4_0", th, "pp")
    for engine, typ in keys:
        bpw = next(r["bits_per_weight"] for r in rows if (r["engine"], r["type"]) == (engine, typ))
        t, p = med(engine, typ, th, "tg"), med(engine, typ, th, "pp")
        lim = med(engine, typ, th, "tg", "bandwidth_limit_tokens_per_s")
        rlim = med(engine, typ, th, "tg", "read_limit_tokens_per_s")
        share = lambda v: "-" if v is None or t is None else f"{t / v:.0%}"
        fmt = lambda v: "-" if v is None else f"{v:.1f}"
        ratio = lambda a, b: "-" if a is None or not b else f"{a / b:.2f}"
        tr = "/".join(f"{v:.1f}" for v in rounds_of(engine, typ, th, "tg"))
        pr = "/".join(f"{v:.1f}" for v in rounds_of(engine, typ, th, "pp"))
        print(f"| {engine} {typ} | {bpw:.2f} | {th} | {fmt(t)} ({tr}) | {ratio(t, ref_tg)} | "
              f"{share(lim)} | {share(rlim)} | {fmt(p)} ({pr}) | {ratio(p, ref_pp)} |")
EOF
