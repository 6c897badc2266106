#!/usr/bin/env bash
# Installs the Debian packages sgdwalk builds and runs with, skipping those already present.
# The CUDA toolkit is optional and not installed here (the CPU backend always builds).
set -euo pipefail
packages=(build-essential cmake libgtest-dev libtoml11-dev libcli11-dev nlohmann-json3-dev
          libhdf5-dev libfmt-dev python3 python3-numpy python3-h5py python3-matplotlib)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "sgdwalk: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
