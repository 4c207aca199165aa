#!/usr/bin/env bash
# Installs the Debian packages bitttt builds with, if any is missing (Debian 12).
# Runs apt-get as root, or through sudo when not root.
#
# Usage: tools/install-deps.sh [--fuzz]
#   --fuzz  also what tools/fuzz.sh needs: clang, its runtime libraries (libFuzzer and the
#           sanitizers, in libclang-rt-dev) and llvm-symbolizer (llvm) for readable stacks
set -euo pipefail

fuzz=0
for arg in "$@"; do
  case "$arg" in
    --fuzz) fuzz=1 ;;
    -h|--help) sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-deps: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

packages=(
  cmake g++ make pkg-config
  libcli11-dev        # command line
  nlohmann-json3-dev  # JSON headers (safetensors, config.json, .btt header)
  libeigen3-dev       # linear algebra (the GEMMs of bitttt calibrate; converter side only)
  libspdlog-dev       # logging
  catch2              # tests (Catch2 v2)
  libxxhash-dev       # XXH64 checksums in .btt files
)
if [ "$fuzz" = 1 ]; then
  packages+=(
    clang               # libFuzzer targets are built with clang
    libclang-rt-dev     # libFuzzer, ASan and UBSan runtimes for clang
    llvm                # llvm-symbolizer: file:line in sanitizer and libFuzzer stacks
  )
fi

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
