#!/usr/bin/env bash
# Installs what is missing, builds, converts a model, prints the conversion summary and
# generates a short text with the converted model.
# Usage: tools/quickstart.sh [MODEL] [BASES]
#   MODEL  a Hugging Face Llama folder or .safetensors (default: ../shared/models/stories260K-hf)
#   BASES  number of ternary bases (default 3)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
model="${1:-$root/../shared/models/stories260K-hf}"
bases="${2:-3}"
"$root/tools/build.sh"
if [ ! -e "$model" ]; then
  echo "quickstart: model '$model' not found; pass a Hugging Face Llama folder as the first argument" >&2
  exit 1
fi
out="$root/build/$(basename "${model%/}")-n$bases.btt"
"$root/build/bitttt" convert "$model" --bases "$bases" -o "$out" --force
echo
echo "== bitttt run $(basename "$out") --prompt 'Once upon a time' -n 64 --temp 0"
"$root/build/bitttt" run "$out" --prompt "Once upon a time" -n 64 --temp 0
