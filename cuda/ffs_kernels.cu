// FFS kernels for every (precision, landscape, noise) the physics dispatch knows
// (host/backend/physics_dispatch.hpp): keep this list in step with it.
#include "ffs_kernel.cuh"

namespace sgdwalk::gpu {

SGDWALK_INSTANTIATE_FFS(float, TwoValley<float>)
SGDWALK_INSTANTIATE_FFS(double, TwoValley<double>)
SGDWALK_INSTANTIATE_FFS(float, TwoValleySlice<float>)
SGDWALK_INSTANTIATE_FFS(double, TwoValleySlice<double>)
SGDWALK_INSTANTIATE_FFS(float, DoubleWell<float>)
SGDWALK_INSTANTIATE_FFS(double, DoubleWell<double>)
using HarmonicF1 = Harmonic<float, 1>;
using HarmonicD1 = Harmonic<double, 1>;
using HarmonicF2 = Harmonic<float, 2>;
using HarmonicD2 = Harmonic<double, 2>;
using HarmonicF3 = Harmonic<float, 3>;
using HarmonicD3 = Harmonic<double, 3>;
SGDWALK_INSTANTIATE_FFS(float, HarmonicF1)
SGDWALK_INSTANTIATE_FFS(double, HarmonicD1)
SGDWALK_INSTANTIATE_FFS(float, HarmonicF2)
SGDWALK_INSTANTIATE_FFS(double, HarmonicD2)
SGDWALK_INSTANTIATE_FFS(float, HarmonicF3)
SGDWALK_INSTANTIATE_FFS(double, HarmonicD3)

}  // namespace sgdwalk::gpu
