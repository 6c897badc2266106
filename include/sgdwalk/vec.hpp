// Small fixed-size vectors and symmetric matrices used as walker state, gradients and Hessians.
//
// They are aggregates (trivially copyable), so they live in registers inside kernels and can be
// passed by value to device code. Arithmetic is written out element by element so that host and
// device evaluate exactly the same operations in the same order.
#pragma once

#include "sgdwalk/hd.hpp"

namespace sgdwalk {

/// A point or direction in the landscape's D-dimensional parameter space.
template <class T, int D>
struct Vec {
  T v[D];
  SGDWALK_FN T& operator[](int i) { return v[i]; }
  SGDWALK_FN const T& operator[](int i) const { return v[i]; }
};

/// Symmetric 2x2 matrix [[xx, xy], [xy, yy]] (the Hessian of a 2-D landscape).
template <class T>
struct Sym2 {
  T xx, xy, yy;
};

/// Diagonal D x D matrix (the Hessian of an axis-aligned harmonic well).
template <class T, int D>
struct Diag {
  T d[D];
};

}  // namespace sgdwalk
