// PLACEHOLDER (being replaced by the portable implementation): forwards to libm.
#pragma once
#include <cmath>
#include "sgdwalk/hd.hpp"
namespace sgdwalk::pmath {
template <class T>
SGDWALK_FN T exp(T x) { return ::exp(x); }
template <class T>
SGDWALK_FN T log(T x) { return ::log(x); }
}  // namespace sgdwalk::pmath
