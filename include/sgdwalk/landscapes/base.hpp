// What every landscape shares: the portability headers and the basin labels.
//
// Every landscape is a trivially copyable aggregate of its parameters (defaults = the paper's), so
// a kernel receives it by value and the optimiser keeps the parameters in registers. All methods
// are SGDWALK_FN: host+device, always inlined, and use only + - * / sqrt, explicit selects and
// sgdwalk::pmath::exp, so that the CPU and CUDA backends produce bit-identical trajectories.
//
// Interface shared by all landscapes (P = Vec<T, dim>):
//   static constexpr int dim;  using Point = P;  using Hessian = ...;
//   T value(const P&)                   the loss
//   P gradient(const P&)                ∇L
//   Hessian hessian(const P&)           ∇²L (on the branch the point belongs to)
//   void gradient_hessian(const P&, P&, Hessian&)
//                                       both in one pass; the hot loop calls this one. gradient()
//                                       and hessian() are defined through it, so the three agree
//                                       bit for bit (unused work is removed by the inliner).
//   int basin(const P&)                 kFlatBasin or kSharpBasin
//   T progress(const P&)                the "training progress" coordinate (y_freeze, sampling)
#pragma once

#include "sgdwalk/finite.hpp"
#include "sgdwalk/hd.hpp"
#include "sgdwalk/landscapes/describe.hpp"
#include "sgdwalk/portable_math.hpp"
#include "sgdwalk/vec.hpp"

namespace sgdwalk {

/// Basin labels. A walker's basin decides P_flat, freezing times and crossing counts.
inline constexpr int kSharpBasin = 0, kFlatBasin = 1;

}  // namespace sgdwalk
