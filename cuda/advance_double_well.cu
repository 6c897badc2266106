// Advance kernels for DoubleWell: float and double, every noise model.
#include "advance_kernel.cuh"
#include "initialize_kernel.cuh"

namespace sgdwalk::gpu {
namespace {
using LandscapeF = DoubleWell<float>;
using LandscapeD = DoubleWell<double>;
}  // namespace

SGDWALK_INSTANTIATE_ADVANCE(float, LandscapeF)
SGDWALK_INSTANTIATE_INITIALIZE(float, LandscapeF)
SGDWALK_INSTANTIATE_ADVANCE(double, LandscapeD)
SGDWALK_INSTANTIATE_INITIALIZE(double, LandscapeD)

}  // namespace sgdwalk::gpu
