#!/usr/bin/env bash
# Quality of the output-layer encodings (docs/BENCHMARKS.md, "Output layer: f16 vs int8 vs
# ternary"): stories260K converted at --bases 3 with --lm-head f16 / int8 / ternary, scored
# like tools/bench_quality.sh (TinyStories, ctx 256, first 100 chunks, KL divergence and
# top-1 agreement against the F32 model). stories260K ties its embeddings, so the table is
# both the embedding and the output layer; to separate the two roles the script also makes
# an untied copy (lm_head.weight = a copy of the embedding, same model, same F32 logits) and
# converts it with each embeddings x lm_head pair. Needs ../shared and python3.
# Usage: tools/bench_lm_head.sh [WORKDIR] [CHUNKS]   (BASES=N: convert at N bases, default 3)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-/tmp/bitttt-lm-head}"
chunks="${2:-100}"
bases="${BASES:-3}"
bin="$root/build"
shared="${BITTTT_SHARED:-$root/../shared}"
model="$shared/models/stories260K-hf"
text="$shared/text/tinystories/tinystories_eval.txt"
mkdir -p "$work"
[ -x "$bin/bitttt" ] || "$root/tools/build.sh"

row() {  # label, size in bytes, then perplexity args
  local label="$1" size="$2"; shift 2
  "$bin/bitttt" perplexity "$@" --file "$text" --ctx 256 --chunks "$chunks" --kld-base "$model" --json -q |
    python3 -c '
import json,sys; j=json.load(sys.stdin)
print("| %s | %s | %.4f ± %.4f | %.5f ± %.5f | %.2f%% |" % (sys.argv[1], sys.argv[2], j["perplexity"], j["stderr"], j["kld"], j["kld_stderr"], 100*j["top1_agreement"]))' "$label" "$size"
}

# The untied copy: same tensors plus lm_head.weight, tie_word_embeddings false.
untied="$work/stories260K-untied"
mkdir -p "$untied"
cp "$model/tokenizer.json" "$untied/"
python3 - "$model" "$untied" <<'PY'
import json, struct, sys
src, dst = sys.argv[1], sys.argv[2]
cfg = json.load(open(src + "/config.json")); cfg["tie_word_embeddings"] = False
json.dump(cfg, open(dst + "/config.json", "w"), indent=2)
raw = open(src + "/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]; hdr = json.loads(raw[8:8 + n]); data = raw[8 + n:]
e = hdr["model.embed_tokens.weight"]; b, t = e["data_offsets"]
hdr["lm_head.weight"] = {"dtype": e["dtype"], "shape": e["shape"], "data_offsets": [len(data), len(data) + t - b]}
data += data[b:t]
h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
open(dst + "/model.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + data)
PY

echo "| stories260K, --bases $bases, 2bit, block 64 | file bytes | perplexity | KL divergence vs F32 (nats/token) | top-1 agreement |"
echo "|---|---|---|---|---|"
for head in f16 int8 ternary; do
  "$bin/bitttt" convert "$model" --bases "$bases" --lm-head "$head" -o "$work/tied-$head.btt" -q --force > /dev/null
  row "tied table --lm-head $head" "$(stat -c %s "$work/tied-$head.btt")" "$work/tied-$head.btt"
done
for emb in f16 int8; do
  for head in f16 int8 ternary; do
    f="$work/untied-$emb-$head.btt"
    "$bin/bitttt" convert "$untied" --bases "$bases" --embeddings "$emb" --lm-head "$head" -o "$f" -q --force > /dev/null
    row "untied copy: --embeddings $emb --lm-head $head" "$(stat -c %s "$f")" "$f"
  done
done
