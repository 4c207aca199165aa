#!/usr/bin/env bash
# Quality per bit of converted stories260K against the F32 reference, as in docs/BENCHMARKS.md:
# perplexity on TinyStories (llama.cpp's method, ctx 256, first CHUNKS chunks), KL divergence
# and top-1 agreement with the F32 model, and stored bits per weight (linear layers, whole
# file), for each fitting method at N = 1..4, for the prefixes of one N = 4 file, and for
# --target-bpw budgets. Calibration uses the calibration text, never the evaluation text.
# Writes WORKDIR/quality.tsv for tools/plot_quality.sh. Needs ../shared and python3.
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
calib_text="$shared/text/tinystories/tinystories_calib.txt"
mkdir -p "$work"
[ -x "$bin/bitttt" ] || "$root/tools/build.sh"
tsv="$work/quality.tsv"
printf 'label\tgroup\tbases\tlinear_bpw\tfile_bpw\tperplexity\tkld\ttop1\n' > "$tsv"

# row LABEL GROUP BASES BTT [perplexity args]: one table line and one TSV line.
row() {
  local label="$1" group="$2" bases="$3" btt="$4"; shift 4
  local conv
  conv=$("$bin/bitttt" inspect "$btt" --json)
  "$bin/bitttt" perplexity "$btt" "$@" --file "$text" --ctx 256 --chunks "$chunks" --kld-base "$model" --json -q |
    python3 -c '
import json, sys
p = json.load(sys.stdin); i = json.loads(sys.argv[5])
lin_bytes = sum(t["size_bytes"] for t in i["tensors"] if t["encoding"] == "ternary")
lin_w = sum(t["shape"][0] * t["shape"][1] for t in i["tensors"] if t["encoding"] == "ternary")
lin = 8 * lin_bytes / lin_w
print("| %s | %.3f | %.3f | %.4f | %.5f | %.2f%% |" % (sys.argv[1], lin, i["file_bits_per_weight"], p["perplexity"],
      p["kld"], 100 * p["top1_agreement"]))
with open(sys.argv[4], "a") as f:
    f.write("%s\t%s\t%s\t%.4f\t%.4f\t%.5f\t%.6f\t%.5f\n" % (sys.argv[1], sys.argv[2], sys.argv[3], lin,
            i["file_bits_per_weight"], p["perplexity"], p["kld"], p["top1_agreement"]))' \
      "$label" "$group" "$bases" "$tsv" "$conv"
}

conv() { "$bin/bitttt" convert "$model" --packing "$packing" -q --force "$@" > /dev/null; }

echo "| model (stories260K, $packing, block 64) | bits/weight, linear | bits/weight, file | perplexity | KL divergence vs F32 | top-1 agreement |"
echo "|---|---|---|---|---|---|"
"$bin/bitttt" perplexity "$model" --file "$text" --ctx 256 --chunks "$chunks" --json -q |
  python3 -c 'import json,sys; j=json.load(sys.stdin); print("| F32 reference | 32 | 32 | %.4f | 0 | 100%% |" % j["perplexity"])'

"$bin/bitttt" calibrate "$model" --file "$calib_text" --ctx 256 --chunks 64 -o "$work/calib.safetensors" -q > /dev/null
cal="$work/calib.safetensors"

for n in 1 2 3 4; do
  conv --bases "$n" --scales free --refine 0 -o "$work/greedy$n.btt"
  row "greedy, N = $n" greedy "$n" "$work/greedy$n.btt"
  conv --bases "$n" --scales free --refine 8 -o "$work/refined$n.btt"
  row "refined (free scales, 8 rounds), N = $n" refined "$n" "$work/refined$n.btt"
  conv --bases "$n" --scales tied -o "$work/tied$n.btt"
  row "tied, N = $n" tied "$n" "$work/tied$n.btt"
  conv --bases "$n" --scales tied --calibration "$cal" --no-error-feedback -o "$work/tiedcal$n.btt"
  row "tied + calibration weights, N = $n" tied+cal "$n" "$work/tiedcal$n.btt"
  conv --bases "$n" --scales tied --calibration "$cal" -o "$work/tiedfb$n.btt"
  row "tied + error feedback, N = $n" tied+feedback "$n" "$work/tiedfb$n.btt"
  conv --bases "$n" --scales free --refine 8 --calibration "$cal" -o "$work/refinedfb$n.btt"
  row "refined + error feedback, N = $n" refined+feedback "$n" "$work/refinedfb$n.btt"
done
for k in 1 2 3; do
  row "greedy N = 4 file, first $k bases" greedy-prefix "$k" "$work/greedy4.btt" --bases "$k"
  row "refined N = 4 file, first $k bases" refined-prefix "$k" "$work/refined4.btt" --bases "$k"
  row "tied N = 4 file, first $k bases" tied-prefix "$k" "$work/tied4.btt" --bases "$k"
done
# Budgets with convert's own packing choice for them (dense unless --packing is given).
for t in 2.5 3.0 3.5 4.0 5.0; do
  "$bin/bitttt" convert "$model" -q --force --bases 4 --target-bpw "$t" -o "$work/budget$t.btt" > /dev/null
  row "tied, dense, --target-bpw $t" budget "-" "$work/budget$t.btt"
  "$bin/bitttt" convert "$model" -q --force --bases 4 --target-bpw "$t" --calibration "$cal" -o "$work/budgetfb$t.btt" > /dev/null
  row "tied + error feedback, dense, --target-bpw $t" budget+feedback "-" "$work/budgetfb$t.btt"
done
for n in 2 3; do
  "$bin/bitttt" convert "$model" -q --force --bases "$n" --packing dense -o "$work/dense$n.btt" > /dev/null
  row "tied, dense, N = $n" tied-dense "$n" "$work/dense$n.btt"
done
echo
echo "TSV for tools/plot_quality.sh: $tsv"
