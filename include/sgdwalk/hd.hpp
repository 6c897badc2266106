// Host/device portability macros shared by every physics header.
//
// Everything a walker update calls is written once, marked SGDWALK_HD, and compiled by g++ for the
// CPU backend and by nvcc for the CUDA backend. Outside nvcc the macro is empty.
#pragma once

#if defined(__CUDACC__)
#define SGDWALK_HD __host__ __device__
#define SGDWALK_INLINE __forceinline__
#else
#define SGDWALK_HD
#define SGDWALK_INLINE inline __attribute__((always_inline))
#endif

/// Function qualifier for physics code: host+device, always inlined (the hot loop must not call).
#define SGDWALK_FN SGDWALK_HD SGDWALK_INLINE
