// Floating-point helpers that must behave identically on host and device and under any flags.
//
// Finiteness is tested on the bit pattern (exponent all ones = inf or NaN), so the check cannot be
// folded away by -ffinite-math-only / fast-math, and needs no libm. sqrt_rn is the correctly
// rounded square root (IEEE on the host; sqrtf/sqrt with --prec-sqrt=true on the device) and fma_rn
// the fused multiply-add (exact product, one rounding, on both sides): the only non-arithmetic
// operations the physics headers may use besides sgdwalk::pmath.
#pragma once

#include <cmath>
#include <cstdint>

#include "sgdwalk/hd.hpp"
#include "sgdwalk/vec.hpp"

namespace sgdwalk {

/// True unless x is ±inf or NaN. On the GPU as |x| < inf: one FSETP with the |.| modifier
/// instead of an AND and a compare on the bits (the same answer for every float, NaN compares
/// false; nvcc has no finite-math-only mode that could fold it), 2 instructions per walker-step of
/// the float kernels' finiteness test.
SGDWALK_FN bool is_finite(float x) {
#if defined(__CUDA_ARCH__)
  return __builtin_fabsf(x) < __builtin_huge_valf();
#else
  std::uint32_t bits;
  __builtin_memcpy(&bits, &x, sizeof bits);
  return (bits & 0x7f800000u) != 0x7f800000u;
#endif
}

/// True unless x is ±inf or NaN.
SGDWALK_FN bool is_finite(double x) {
  std::uint64_t bits;
  __builtin_memcpy(&bits, &x, sizeof bits);
  return (bits & 0x7ff0000000000000ull) != 0x7ff0000000000000ull;
}

/// True when every component is finite (a walker whose state or gradient fails this has diverged).
template <class T, int D>
SGDWALK_FN bool all_finite(const Vec<T, D>& v) {
  bool ok = true;
  for (int i = 0; i < D; ++i) ok = ok & is_finite(v[i]);
  return ok;
}

template <class T>
SGDWALK_FN bool all_finite(const Sym2<T>& h) {
  return is_finite(h.xx) && is_finite(h.xy) && is_finite(h.yy);
}

template <class T, int D>
SGDWALK_FN bool all_finite(const Diag<T, D>& h) {
  bool ok = true;
  for (int i = 0; i < D; ++i) ok = ok && is_finite(h.d[i]);
  return ok;
}

/// c ? a : b computed as a bit blend of both operands. Use it where one arm is a constant that
/// simplifies the surrounding arithmetic (x / (c ? y : 1), x * (c ? y : 0)): with a plain select
/// gcc sees the simpler expression on one path, moves the (possibly trapping) float operation into
/// a branch and then cannot if-convert the CPU lane loop. The blend keeps it unconditional.
SGDWALK_FN float select_bits(bool c, float a, float b) {
  std::uint32_t ua, ub;
  __builtin_memcpy(&ua, &a, sizeof ua);
  __builtin_memcpy(&ub, &b, sizeof ub);
  const std::uint32_t m = 0u - static_cast<std::uint32_t>(c);
  const std::uint32_t r = (ua & m) | (ub & ~m);
  float x;
  __builtin_memcpy(&x, &r, sizeof x);
  return x;
}

SGDWALK_FN double select_bits(bool c, double a, double b) {
  std::uint64_t ua, ub;
  __builtin_memcpy(&ua, &a, sizeof ua);
  __builtin_memcpy(&ub, &b, sizeof ub);
  const std::uint64_t m = 0u - static_cast<std::uint64_t>(c);
  const std::uint64_t r = (ua & m) | (ub & ~m);
  double x;
  __builtin_memcpy(&x, &r, sizeof x);
  return x;
}

/// Correctly rounded square root, same result on host and device.
SGDWALK_FN float sqrt_rn(float x) {
#if defined(__CUDA_ARCH__)
  return ::sqrtf(x);
#else
  return std::sqrt(x);
#endif
}

SGDWALK_FN double sqrt_rn(double x) {
#if defined(__CUDA_ARCH__)
  return ::sqrt(x);
#else
  return std::sqrt(x);
#endif
}

/// Fused multiply-add x·y + z with a single rounding (use only where written explicitly).
SGDWALK_FN float fma_rn(float x, float y, float z) {
#if defined(__CUDA_ARCH__)
  return ::fmaf(x, y, z);
#else
  return std::fma(x, y, z);
#endif
}

SGDWALK_FN double fma_rn(double x, double y, double z) {
#if defined(__CUDA_ARCH__)
  return ::fma(x, y, z);
#else
  return std::fma(x, y, z);
#endif
}

}  // namespace sgdwalk
