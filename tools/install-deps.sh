#!/usr/bin/env bash
# Installs the Debian packages bitttt builds with, if any is missing (Debian 12).
# Runs apt-get as root, or through sudo when not root.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libcli11-dev        # command line
  nlohmann-json3-dev  # JSON headers (safetensors, config.json, .btt header)
  libeigen3-dev       # linear algebra (the GEMMs of bitttt calibrate; converter side only)
  libspdlog-dev       # logging
  catch2              # tests (Catch2 v2)
  libxxhash-dev       # XXH64 checksums in .btt files
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
  else
    echo "install-deps: missing packages (${missing[*]}) and not root; install them with apt-get" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
