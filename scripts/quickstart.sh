#!/usr/bin/env bash
# Sets up sgdwalk and runs the embedded quickstart (the CPU backend when there is no GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
./build/sgdwalk run --out runs/quickstart --force "$@"
