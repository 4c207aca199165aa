#!/usr/bin/env bash
# Installs what is missing, builds, converts a model and prints the conversion summary.
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
"$root/build/bitttt" convert "$model" --bases "$bases" -o "$out"
echo
"$root/build/bitttt" inspect "$out" | head -n 8
