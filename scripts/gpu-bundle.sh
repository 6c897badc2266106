#!/usr/bin/env bash
# Builds what a GPU machine needs to verify and measure sgdwalk, on a CPU machine of this kind
# (nvcc is installed here; the GPU machine lacks our Debian -dev packages and has no network), and
# packs it into gpu-bundle/sgdwalk-gpu-bundle.tar.xz (git-ignored, at most 64 MiB):
#
#   bin/  sgdwalk, sgdwalk_bench and every CUDA test, built for sm_90 (+ compute_90 PTX) with
#         portable host flags (x86-64-v3, no -march=native); RPATH $ORIGIN/../lib
#   lib/  the shared libraries they load that a bare machine may lack (glibc, the CUDA driver and
#         libcurand stay out: the machine has them)
#   MANIFEST  commit, flags, file list
#
# Nothing in it names this checkout: the tests take their data from SGDWALK_SOURCE_DIR (which
# scripts/gpu-check.sh sets to the repository it runs in). Then bring the repository with
# gpu-bundle/ to the GPU machine and run `scripts/gpu-check.sh OUTDIR` there (docs/CUDA.md).
#
#   scripts/gpu-bundle.sh [BUILD_DIR [OUT_DIR [CMAKE_ARG...]]]   # defaults build-gpu-bundle, gpu-bundle
#
# Extra CMake arguments go to the configure step and into the MANIFEST (the packaging test passes
# -DSGDWALK_CUDA_LANDSCAPES=TwoValley: it checks the kit, not every landscape's kernels).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
build=${1:-build-gpu-bundle}
out=${2:-gpu-bundle}
extra_cmake_args=("${@:3}")
./scripts/install-deps.sh
if [ ! -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null; then
  echo "gpu-bundle: nvcc not found: the bundle needs the CUDA toolkit" >&2
  exit 2
fi
cuda_tests=(test_backend_equivalence test_cuda_golden test_cuda_schedule test_ffs_backends)
targets=(sgdwalk sgdwalk_bench "${cuda_tests[@]}")
# The RPATH is literally $ORIGIN/../lib: the loader resolves it relative to each binary.
# Host code names sources relative to the checkout (-ffile-prefix-map, from CMakeLists.txt in
# optimised builds); the test binaries' default data directory is "." (SGDWALK_SOURCE_DIR says where
# it is at run time). The device code's line tables (-lineinfo, for compute-sanitizer and
# profilers) keep the source file names as labels. No MPI in the kit: the GPU machine runs one
# process and has no Open MPI to load.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSGDWALK_CUDA=ON -DSGDWALK_NATIVE=OFF -DSGDWALK_MPI=OFF \
  -DCMAKE_CXX_FLAGS="-march=x86-64-v3" \
  -DCMAKE_CUDA_ARCHITECTURES="90-real;90-virtual" -DSGDWALK_TEST_DATA_DIR=. \
  -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON "-DCMAKE_INSTALL_RPATH=\$ORIGIN/../lib" \
  -DSGDWALK_CUDA_LANDSCAPES=all "${extra_cmake_args[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/sgdwalk-gpu-bundle
mkdir -p "$root/bin" "$root/lib"
cp "$build/sgdwalk" "$build/bench/sgdwalk_bench" "$root/bin/"
for test in "${cuda_tests[@]}"; do cp "$build/tests/$test" "$root/bin/"; done
strip --strip-debug "$root"/bin/*

# Shared libraries: everything ldd resolves except the C library family, the CUDA driver and
# libcurand (the GPU machine's toolkit provides it; it is ~100 MB).
skip='^(libc|libm|libdl|librt|libpthread|libresolv|ld-linux-x86-64|linux-vdso|libcuda|libcurand)\.'
for binary in "$root"/bin/*; do
  ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}'
done | sort -u | while read -r name path; do
  if ! [[ $name =~ $skip ]]; then cp -L "$path" "$root/lib/$name"; fi
done

{
  echo "sgdwalk GPU bundle"
  echo "commit: $(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$repo" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), $(nvcc --version 2>/dev/null | tail -1 || /usr/local/cuda/bin/nvcc --version | tail -1)"
  echo "host flags: -march=x86-64-v3 (SGDWALK_NATIVE=OFF); CUDA architectures: 90-real;90-virtual"
  echo "extra CMake arguments: ${extra_cmake_args[*]:-none}"
  echo "files:"
  (cd "$root" && find bin lib -type f -printf '  %p %s\n' | sort)
} >"$root/MANIFEST"

mkdir -p "$out"
# Every binary links the same CUDA kernels (about 50 MB of each ~55 MB binary): with a dictionary
# larger than one binary, xz stores them once (a full kit of a4df2d5: 62.5 MB with xz's default
# 8 MiB dictionary, 20.0 MB with 256 MiB; unpacking needs 256 MiB of memory). The dictionary does
# the work, so the fastest preset suffices: the full kit of ecb3564 is 36.4 MiB at preset 1 against
# 34.9 MiB at preset 6, and a one-landscape kit 14.0 MB in 11 CPU-s against 12.6 MB in 56 CPU-s.
tar -C "$stage" -cf - sgdwalk-gpu-bundle | xz -T1 --lzma2=preset=1,dict=256MiB >"$out/sgdwalk-gpu-bundle.tar.xz"
size=$(stat -c %s "$out/sgdwalk-gpu-bundle.tar.xz")
echo "gpu-bundle: $out/sgdwalk-gpu-bundle.tar.xz, $((size / 1024 / 1024)) MiB"
if [ "$size" -gt $((60 * 1024 * 1024)) ]; then
  echo "gpu-bundle: the bundle is over 60 MiB: it would not travel to the GPU machine" >&2
  exit 1
fi
