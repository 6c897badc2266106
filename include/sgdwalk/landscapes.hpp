// Loss landscapes a walker can live on, written once for the CPU and the GPU: one header per
// landscape in landscapes/, all of them listed in landscapes/registry.hpp (included here).
//
// Every landscape is a trivially copyable aggregate of its parameters (defaults = the paper's), so
// a kernel receives it by value and the optimiser keeps the parameters in registers. All methods
// are SGDWALK_FN: host+device, always inlined, and use only + - * / sqrt, explicit selects and
// sgdwalk::pmath::exp, so that the CPU and CUDA backends produce bit-identical trajectories.
// The interface is described in landscapes/base.hpp, the description in landscapes/describe.hpp.
#pragma once

#include "sgdwalk/landscapes/registry.hpp"
