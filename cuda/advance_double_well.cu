// Advance kernels for DoubleWell: float and double, every noise model.
#include "advance_kernel.cuh"

namespace sgdwalk::gpu {
namespace {
using LandscapeF = DoubleWell<float>;
using LandscapeD = DoubleWell<double>;
}  // namespace

SGDWALK_INSTANTIATE_ADVANCE(float, LandscapeF)
SGDWALK_INSTANTIATE_ADVANCE(double, LandscapeD)

}  // namespace sgdwalk::gpu
