#!/usr/bin/env bash
# Conversion measurements for docs/BENCHMARKS.md (needs python3 for the tables).
#   1. a 4096x4096 Gaussian matrix at N = 1, 2, 3, both packings: size vs F16, error
#   2. stories260K from ../shared at N = 1, 2, 3: per-base errors
#   3. block-size sweep (error vs bits per weight)
#   4. throughput and peak memory on synthetic Llama-3-8B shapes (1 and 2 layers, full
#      vocab), and the projection to the full 32-layer model
# Usage: tools/bench_convert.sh [WORKDIR] [RUNS]   (WORKDIR needs ~10 GB; default /tmp/bitttt-bench)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-/tmp/bitttt-bench}"
runs="${2:-3}"
bin="$root/build"
shared="${BITTTT_SHARED:-$root/../shared}"
mkdir -p "$work"
[ -x "$bin/bitttt" ] || "$root/tools/build.sh"

json() { "$bin/bitttt" convert "$@" --json -q --force; }

echo "## Gaussian 4096x4096 (N(0, 0.02), F32 source)"
[ -f "$work/gauss.safetensors" ] || "$bin/bitttt-synth" gaussian --rows 4096 --cols 4096 --dtype f32 -o "$work/gauss.safetensors" >/dev/null
echo "| packing | N | size | % of F16 | bits/weight | rel. error after 1..N bases |"
echo "|---|---|---|---|---|---|"
for p in 2bit dense; do
  for n in 1 2 3; do
    json "$work/gauss.safetensors" --bases "$n" --packing "$p" -o "$work/g.btt" | python3 -c '
import json,sys; j=json.load(sys.stdin)
print("| %s | %d | %d | %.1f%% | %.3f | %s |" % (j["packing"], j["bases"], j["size_bytes"], 100.0*j["size_bytes"]/j["f16_size_bytes"], j["bits_per_weight"], " ".join("%.4f" % e for e in j["relative_error_by_base"])))'
  done
done

if [ -d "$shared/models/stories260K-hf" ]; then
  echo; echo "## stories260K (../shared/models/stories260K-hf, F32 source, block 64)"
  echo "| packing | N | file size | ternary bits/weight | rel. error after 1..N bases | worst tensor (final error) |"
  echo "|---|---|---|---|---|---|"
  for p in 2bit dense; do
    for n in 1 2 3 4; do
      json "$shared/models/stories260K-hf" --bases "$n" --packing "$p" -o "$work/s.btt" | python3 -c '
import json,sys; j=json.load(sys.stdin)
t=[t for t in j["tensors"] if t["encoding"]=="ternary"]; w=max(t, key=lambda t: t["relative_error_by_base"][-1])
print("| %s | %d | %d | %.3f | %s | %s %.4f |" % (j["packing"], j["bases"], j["size_bytes"], j["bits_per_weight"], " ".join("%.4f" % e for e in j["relative_error_by_base"]), w["name"], w["relative_error_by_base"][-1]))'
    done
  done
fi

if [ -d "$shared/models/stories260K-hf" ]; then
  echo; echo "## Fitting rule (stories260K, block 64, 2bit)"
  echo "| method | N | rel. error after 1..N bases |"
  echo "|---|---|---|"
  for m in greedy absmean absmean-tensor; do
    json "$shared/models/stories260K-hf" --bases 3 --method "$m" -o "$work/m.btt" | python3 -c '
import json,sys; j=json.load(sys.stdin)
print("| %s | 3 | %s |" % (j["method"], " ".join("%.4f" % e for e in j["relative_error_by_base"])))'
  done
fi

echo; echo "## Block size (N = 3)"
echo "| block | source | 2bit bits/weight | dense bits/weight | rel. error after 1..3 bases |"
echo "|---|---|---|---|---|"
for b in 32 64 128 256; do
  for src in "$work/gauss.safetensors" "$shared/models/stories260K-hf"; do
    [ -e "$src" ] || continue
    a=$(json "$src" --bases 3 --block-size "$b" --packing 2bit -o "$work/b.btt")
    d=$(json "$src" --bases 3 --block-size "$b" --packing dense -o "$work/b.btt")
    python3 -c '
import json,sys; a=json.loads(sys.argv[1]); d=json.loads(sys.argv[2])
print("| %d | %s | %.3f | %.3f | %s |" % (a["block_size"], sys.argv[3], a["bits_per_weight"], d["bits_per_weight"], " ".join("%.4f" % e for e in a["relative_error_by_base"])))' "$a" "$d" "$(basename "$src")"
  done
done

echo; echo "## Throughput and peak memory, synthetic Llama-3-8B shapes (BF16 source)"
# Linear layers: 4 layers of real 8B shapes with a small vocabulary, so the q/k/v/o/gate/
# up/down matrices dominate. Embedding + lm_head: 1 layer with the full 128256 vocabulary.
[ -f "$work/synth8b-4L/model.safetensors" ] || "$bin/bitttt-synth" model --preset llama3-8b --layers 4 --vocab 1024 -o "$work/synth8b-4L" >/dev/null
[ -f "$work/synth8b-1L/model.safetensors" ] || "$bin/bitttt-synth" model --preset llama3-8b --layers 1 -o "$work/synth8b-1L" >/dev/null
cat "$work"/synth8b-*/model.safetensors > /dev/null  # warm the page cache once
echo "| N | packing | model | runs | median seconds | median weights/s | peak RSS (max of runs) |"
echo "|---|---|---|---|---|---|---|"
: > "$work/raw.txt"
for p in 2bit dense; do
  for n in 1 2 3; do
    for m in 4L 1L; do
      for ((r = 0; r < runs; r++)); do
        json "$work/synth8b-$m" --bases "$n" --packing "$p" -o "$work/x.btt" 2>/dev/null | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["seconds"], j["weights_per_second"], j["peak_rss_bytes"], j["parameters"])'
      done | python3 -c '
import sys,statistics
rows=[list(map(float,l.split())) for l in sys.stdin if l.strip()]
t=statistics.median(r[0] for r in rows)
print("| %s | %s | %s | %d | %.2f | %.1f M | %.0f MB |" % (sys.argv[1], sys.argv[2], "8B x 4 layers, vocab 1024" if sys.argv[3]=="4L" else "8B x 1 layer, vocab 128256", len(rows), t, statistics.median(r[1] for r in rows)/1e6, max(r[2] for r in rows)/1e6))
open(sys.argv[4],"a").write("%s %s %s %f\n" % (sys.argv[1], sys.argv[2], sys.argv[3], t))' "$n" "$p" "$m" "$work/raw.txt"
    done
  done
done
echo
echo "Projection to Llama-3-8B (32 layers, untied 128256 vocabulary):"
echo "per layer = t(4 layers, vocab 1024) / 4; embeddings + lm_head = t(1 layer, full vocab) - per layer"
python3 - "$work/raw.txt" <<'PY'
import sys
t = {}
for line in open(sys.argv[1]):
    n, p, m, s = line.split()
    t[(n, p, m)] = float(s)
print("| N | packing | per layer (s) | embeddings + lm_head (s) | projected 8B total |")
print("|---|---|---|---|---|")
for (n, p, m), s in sorted(t.items()):
    if m != "4L" or (n, p, "1L") not in t: continue
    per = s / 4
    fixed = t[(n, p, "1L")] - per
    total = fixed + 32 * per
    print("| %s | %s | %.2f | %.2f | %.0f s (%.1f min) |" % (n, p, per, fixed, total, total / 60))
PY
