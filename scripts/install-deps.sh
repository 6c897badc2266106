#!/usr/bin/env bash
# Installs the Debian packages sgdwalk builds and runs with, skipping those already present.
# The CUDA toolkit is optional and not installed here (the CPU backend always builds). Open MPI is
# optional for a build (-DSGDWALK_MPI) but installed here, so that the MPI tests run. ccache is
# optional: installed when the packages can be installed (it makes the test suite's second
# compilation of the core a cache hit, scripts/test.sh), and never a reason to stop.
set -euo pipefail
packages=(build-essential cmake libgtest-dev libtoml11-dev libcli11-dev nlohmann-json3-dev
          libhdf5-dev libfmt-dev python3 python3-numpy python3-h5py python3-matplotlib
          python3-venv openmpi-bin libopenmpi-dev)
optional_packages=(ccache)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
can_install() { [ "$(id -u)" -eq 0 ] || { command -v sudo >/dev/null && sudo -n true 2>/dev/null; }; }
missing=()
for package in "${packages[@]}"; do
  installed "$package" || missing+=("$package")
done
for package in "${optional_packages[@]}"; do
  if ! installed "$package" && can_install; then missing+=("$package"); fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  # Not root: use sudo only where it works without a password prompt we cannot answer;
  # otherwise say what is needed and stop (a cluster login node, a container without sudo).
  if ! command -v sudo >/dev/null || ! sudo -n true 2>/dev/null; then
    echo "sgdwalk: these Debian packages are needed and not installed: ${missing[*]}" >&2
    echo "sgdwalk: ask an administrator to run: apt-get install ${missing[*]}" >&2
    echo "sgdwalk: (or provide toml11, CLI11, nlohmann-json, HDF5, fmt and GoogleTest otherwise" \
      "and point CMake at them with CMAKE_PREFIX_PATH; MPI is optional: -DSGDWALK_MPI=OFF)" >&2
    exit 1
  fi
  sudo_cmd=(sudo -n)
fi
echo "sgdwalk: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
