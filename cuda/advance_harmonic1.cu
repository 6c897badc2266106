// Advance kernels for Harmonic<T, 1>: float and double, every noise model.
#include "advance_kernel.cuh"
#include "initialize_kernel.cuh"

namespace sgdwalk::gpu {
namespace {
using LandscapeF = Harmonic<float, 1>;
using LandscapeD = Harmonic<double, 1>;
}  // namespace

SGDWALK_INSTANTIATE_ADVANCE(float, LandscapeF)
SGDWALK_INSTANTIATE_INITIALIZE(float, LandscapeF)
SGDWALK_INSTANTIATE_ADVANCE(double, LandscapeD)
SGDWALK_INSTANTIATE_INITIALIZE(double, LandscapeD)

}  // namespace sgdwalk::gpu
