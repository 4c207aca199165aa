#!/usr/bin/env bash
# What the scales cost and buy, as in docs/BENCHMARKS.md ("Cheaper scales"):
#  1. stories260K (tied scales, N = 2 and 3, no calibration): perplexity on TinyStories
#     (llama.cpp's method, ctx 256, first CHUNKS chunks), KL divergence and top-1 agreement
#     against F32, for block sizes 16..64 with 16-bit and two-level (8-bit) scales. Bits per
#     weight are given as stored here (stories260K's 64- and 172-column rows pad) and as the
#     same layout costs on 4096-column rows.
#  2. A 4096 x 4096 Gaussian (N = 3, tied, dense): relative error and stored bits for block
#     sizes 32..256 with both scale widths. stories260K's rows are too short to measure
#     blocks above 64 by perplexity (a 64-column row is one block either way), so larger
#     blocks are compared here by reconstruction error only.
# Usage: tools/bench_scales.sh [WORKDIR] [CHUNKS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-/tmp/bitttt-scales}"
chunks="${2:-100}"
bin="$root/build"
shared="${BITTTT_SHARED:-$root/../shared}"
model="$shared/models/stories260K-hf"
text="$shared/text/tinystories/tinystories_eval.txt"
mkdir -p "$work"
[ -x "$bin/bitttt" ] || "$root/tools/build.sh"

# Stored bits per weight of the tied layout on a 4096-column row.
nominal() {  # BASES BLOCK SCALE_BITS PACKING
  python3 -c '
import sys
n, b, bits, p = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
g = b // 4 if p == "2bit" else (b + 4) // 5
row = (2 if bits == 8 else 0) + (4096 // b) * ((1 if bits == 8 else 2) + n * g)
print("%.3f" % (row * 8 / 4096))' "$@"
}

echo "| stories260K, tied, 2bit | block | scales | bits/weight, linear (stored here) | bits/weight at 4096 columns | perplexity | KL divergence | top-1 agreement |"
echo "|---|---|---|---|---|---|---|---|"
for n in 2 3; do
  for cfg in "64 16" "64 8" "32 16" "32 8" "16 8"; do
    set -- $cfg
    b=$1 sb=$2
    out="$work/s-n$n-b$b-s$sb.btt"
    "$bin/bitttt" convert "$model" -q --force --bases "$n" --block-size "$b" --scale-bits "$sb" -o "$out" > /dev/null
    info=$("$bin/bitttt" inspect "$out" --json)
    "$bin/bitttt" perplexity "$out" --file "$text" --ctx 256 --chunks "$chunks" --kld-base "$model" --json -q |
      python3 -c '
import json, sys
p = json.load(sys.stdin); i = json.loads(sys.argv[5])
lin_bytes = sum(t["size_bytes"] for t in i["tensors"] if t["encoding"] == "ternary")
lin_w = sum(t["shape"][0] * t["shape"][1] for t in i["tensors"] if t["encoding"] == "ternary")
print("| N = %s | %s | %s | %.3f | %s | %.4f | %.5f | %.2f%% |" % (sys.argv[1], sys.argv[2],
      "two-level" if sys.argv[3] == "8" else "16-bit", 8 * lin_bytes / lin_w, sys.argv[4], p["perplexity"],
      p["kld"], 100 * p["top1_agreement"]))' "$n" "$b" "$sb" "$(nominal "$n" "$b" "$sb" 2bit)" "$info"
  done
done

echo
gauss="$work/gauss.safetensors"
[ -f "$gauss" ] || "$bin/bitttt-synth" gaussian --rows 4096 --cols 4096 -o "$gauss" > /dev/null
echo "| 4096 x 4096 Gaussian, N = 3, tied, dense | block | scales | bits/weight | % of F16 | relative error |"
echo "|---|---|---|---|---|---|"
for b in 32 64 128 256; do
  for sb in 16 8; do
    "$bin/bitttt" convert "$gauss" -q --force --bases 3 --packing dense --block-size "$b" --scale-bits "$sb" \
      -o "$work/g.btt" --json |
      python3 -c '
import json, sys
j = json.load(sys.stdin)
print("| | %s | %s | %.3f | %.1f%% | %.4f |" % (sys.argv[1], "two-level" if sys.argv[2] == "8" else "16-bit",
      j["bits_per_weight"], 100 * j["size_bytes"] / j["f16_size_bytes"], j["relative_error_by_base"][-1]))' "$b" "$sb"
  done
done
