#!/usr/bin/env bash
# Quality of converted stories260K against the F32 reference, as in docs/BENCHMARKS.md:
# perplexity on TinyStories (llama.cpp's method, ctx 256, first 100 chunks), KL divergence
# and top-1 agreement with the F32 model, for N = 1..4 conversions and for K < 4 bases of
# one N = 4 file. Needs ../shared and python3.
# Usage: tools/bench_quality.sh [WORKDIR] [CHUNKS] [PACKING]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-/tmp/bitttt-quality}"
chunks="${2:-100}"
packing="${3:-2bit}"
bin="$root/build"
shared="${BITTTT_SHARED:-$root/../shared}"
model="$shared/models/stories260K-hf"
text="$shared/text/tinystories/tinystories_eval.txt"
mkdir -p "$work"
[ -x "$bin/bitttt" ] || "$root/tools/build.sh"

row() {  # label, then perplexity args
  local label="$1"; shift
  "$bin/bitttt" perplexity "$@" --file "$text" --ctx 256 --chunks "$chunks" --kld-base "$model" --json -q |
    python3 -c '
import json,sys; j=json.load(sys.stdin)
print("| %s | %.4f ± %.4f | %.5f ± %.5f | %.2f%% |" % (sys.argv[1], j["perplexity"], j["stderr"], j["kld"], j["kld_stderr"], 100*j["top1_agreement"]))' "$label"
}

echo "| model (stories260K, $packing, block 64) | perplexity | KL divergence vs F32 (nats/token) | top-1 agreement |"
echo "|---|---|---|---|"
"$bin/bitttt" perplexity "$model" --file "$text" --ctx 256 --chunks "$chunks" --json -q |
  python3 -c 'import json,sys; j=json.load(sys.stdin); print("| F32 reference | %.4f ± %.4f | 0 | 100%% |" % (j["perplexity"], j["stderr"]))'
for n in 1 2 3 4; do
  "$bin/bitttt" convert "$model" --bases "$n" --packing "$packing" -o "$work/s$n.btt" -q > /dev/null
  row "N = $n" "$work/s$n.btt"
done
for k in 1 2 3; do
  row "N = 4 file, first $k bases (--bases $k)" "$work/s4.btt" --bases "$k"
done
