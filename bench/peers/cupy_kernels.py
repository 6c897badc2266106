"""CUDA C++ sources of the CuPy peer (kept apart from cupy_peer.py so that tests can compile them
for the host without CuPy).

PHYSICS_SOURCE is the update of one walker, shared by both modes; RAW_SOURCE adds the in-kernel
Philox4x32-10 normals and the whole-run kernel; ELEMENTWISE_BODY is the per-step kernel's body.
All of it is plain C++ apart from the CUDA qualifiers, so a shim that defines them away compiles
it with g++ (see test_peers.py).
"""

from peer_common import MODEL

PHYSICS_SOURCE = r"""
// One SGD step of one walker on the two-valley landscape with Hessian noise, and its trackers.
// `sw_real` is double or float (not `real`: CuPy 14 declares that name itself); the constants
// are the paper's defaults (see peer_common.py).
__device__ __forceinline__ void advance(sw_real& x, sw_real& y, bool& flat, int& crossings,
                                        long long& freeze_step, sw_real& y_freeze, sw_real z1, sw_real z2,
                                        long long step, sw_real eta, sw_real two_sigma) {
  const sw_real q = flat ? sw_real(Q_FLAT) : sw_real(Q_SHARP);
  const sw_real ik = flat ? sw_real(IK_FLAT) : sw_real(IK_SHARP);
  const sw_real u = y + sw_real(Y_B), v = y + sw_real(Y_F);
  const sw_real iuv = sw_real(1) / (u * v);
  const sw_real uv = u / v;
  const sw_real h = ik * uv * uv;
  const sw_real hp = h * sw_real(C_HP) * iuv;
  const sw_real hpp = hp * (v - sw_real(3) * u) * iuv;
  const sw_real a = sw_real(2) * q * y / u;
  const sw_real ap = sw_real(2 * Y_B) * q / (u * u);
  const sw_real app = sw_real(-2) * ap / u;
  const sw_real e = exp(-y / sw_real(Y_D));
  const sw_real w = sw_real(2) * x - a;
  const sw_real p = x * (x - a);
  const sw_real gx = w * h;
  const sw_real gy = sw_real(C_L0P) * e + p * hp - x * ap * h;
  const sw_real h11 = sw_real(2) * h;
  const sw_real h12 = w * hp - ap * h;
  const sw_real h22 = sw_real(C_L0PP) * e + p * hpp - sw_real(2) * x * ap * hp - x * app * h;
  const sw_real m = (h11 + h22) / sw_real(2), d = (h11 - h22) / sw_real(2);
  const sw_real r = sqrt(d * d + h12 * h12);
  const sw_real s_plus = sqrt(two_sigma * fmax(m + r, sw_real(0)) + sw_real(EPSILON));
  const sw_real s_minus = sqrt(two_sigma * fmax(m - r, sw_real(0)) + sw_real(EPSILON));
  const sw_real c = r > sw_real(0) ? (s_plus - s_minus) / (sw_real(2) * r) : sw_real(0);
  const sw_real s0 = (s_plus + s_minus) / sw_real(2);
  x -= eta * (gx + (s0 + c * d) * z1 + c * h12 * z2);
  y -= eta * (gy + c * h12 * z1 + (s0 - c * d) * z2);
  const bool now_flat = x >= sw_real(0);
  if (now_flat != flat) {
    crossings += 1;
    freeze_step = step;
    y_freeze = y;
  }
  flat = now_flat;
}

// Histogram slot: 0 below the range, 1..HIST_BINS inside, HIST_BINS + 1 above.
__device__ __forceinline__ int hist_slot(sw_real x) {
  const sw_real u = x * sw_real(HIST_SCALE) + sw_real(HIST_SHIFT);
  return u < sw_real(0) ? 0 : (u >= sw_real(HIST_BINS + 1) ? HIST_BINS + 1 : int(u));
}
"""

RAW_SOURCE = r"""
__device__ __forceinline__ unsigned int mulhi32(unsigned int a, unsigned int b) {
  return (unsigned int)(((unsigned long long)a * b) >> 32);
}

// Philox4x32-10 (Salmon et al. 2011): four 32-bit random words per (counter, key).
__device__ __forceinline__ void philox(unsigned int c[4], unsigned int k0, unsigned int k1) {
  for (int round = 0; round < 10; ++round) {
    const unsigned int hi0 = mulhi32(0xD2511F53u, c[0]), lo0 = 0xD2511F53u * c[0];
    const unsigned int hi1 = mulhi32(0xCD9E8D57u, c[2]), lo1 = 0xCD9E8D57u * c[2];
    c[0] = hi1 ^ c[1] ^ k0;
    c[1] = lo1;
    c[2] = hi0 ^ c[3] ^ k1;
    c[3] = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
}

// Uniforms in (0, 1] from the random words (53 bits for double, 24 for float).
__device__ __forceinline__ void uniforms(const unsigned int c[4], double& u1, double& u2) {
  const double scale = 1.0 / 9007199254740992.0;  // 2^-53
  u1 = ((((unsigned long long)c[0] << 32) | c[1]) >> 11) * scale + scale;
  u2 = ((((unsigned long long)c[2] << 32) | c[3]) >> 11) * scale + scale;
}
__device__ __forceinline__ void uniforms(const unsigned int c[4], float& u1, float& u2) {
  const float scale = 1.0f / 16777216.0f;  // 2^-24
  u1 = (c[0] >> 8) * scale + scale;
  u2 = (c[1] >> 8) * scale + scale;
}

// sin and cos of π·a (no large-argument reduction, so no local memory).
__device__ __forceinline__ void sin_cos_pi(double a, double* s, double* c) { sincospi(a, s, c); }
__device__ __forceinline__ void sin_cos_pi(float a, float* s, float* c) { sincospif(a, s, c); }

// Two standard normals for (walker, step), Box-Muller.
__device__ __forceinline__ void normals(unsigned long long walker, unsigned long long step,
                                        unsigned long long seed, sw_real& z1, sw_real& z2) {
  unsigned int c[4] = {(unsigned int)step, (unsigned int)(step >> 32), (unsigned int)walker,
                       (unsigned int)(walker >> 32)};
  philox(c, (unsigned int)seed, (unsigned int)(seed >> 32));
  sw_real u1, u2;
  uniforms(c, u1, u2);
  const sw_real radius = sqrt(sw_real(-2) * log(u1));
  sw_real s, co;
  sin_cos_pi(sw_real(2) * u2, &s, &co);
  z1 = radius * co;
  z2 = radius * s;
}

extern "C" __global__ void simulate(long long walkers, long long steps, long long window_lo,
                                    long long window_hi, unsigned long long seed, sw_real eta,
                                    sw_real two_sigma, sw_real* x_out, sw_real* y_out, bool* flat_out,
                                    int* crossings_out, long long* freeze_out,
                                    sw_real* y_freeze_out, unsigned long long* hist) {
  __shared__ unsigned long long block_hist[HIST_BINS + 2];
  for (int b = threadIdx.x; b < HIST_BINS + 2; b += blockDim.x) block_hist[b] = 0;
  __syncthreads();

  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < walkers) {
    sw_real x = (i % 2 == 0) ? sw_real(-X_START) : sw_real(X_START);
    sw_real y = sw_real(Y_START), y_freeze = sw_real(Y_START);
    bool flat = x >= sw_real(0);
    int crossings = 0;
    long long freeze_step = 0;
    if (window_lo == 0) atomicAdd(&block_hist[hist_slot(x)], 1ull);
    for (long long step = 1; step <= steps; ++step) {
      sw_real z1, z2;
      normals(i, step, seed, z1, z2);
      advance(x, y, flat, crossings, freeze_step, y_freeze, z1, z2, step, eta, two_sigma);
      if (step >= window_lo && step <= window_hi) atomicAdd(&block_hist[hist_slot(x)], 1ull);
    }
    x_out[i] = x;
    y_out[i] = y;
    flat_out[i] = flat;
    crossings_out[i] = crossings;
    freeze_out[i] = freeze_step;
    y_freeze_out[i] = y_freeze;
  }
  __syncthreads();
  for (int b = threadIdx.x; b < HIST_BINS + 2; b += blockDim.x) {
    if (block_hist[b] != 0) atomicAdd(&hist[b], block_hist[b]);
  }
}
"""

ELEMENTWISE_BODY = r"""
advance(x, y, flat, crossings, freeze_step, y_freeze, z[i], z[i + n], step, eta, two_sigma);
if (deposit) atomicAdd(&hist[hist_slot(x)], 1ull);
"""


def constants_source(dtype):
    """#defines of the model constants and a typedef of `sw_real` ("float64" or "float32")."""
    real = "double" if dtype == "float64" else "float"
    values = {
        "Q_FLAT": MODEL.q_flat, "Q_SHARP": MODEL.q_sharp,
        "IK_FLAT": MODEL.inv_k(MODEL.q_flat), "IK_SHARP": MODEL.inv_k(MODEL.q_sharp),
        "Y_B": MODEL.y_b, "Y_F": MODEL.y_f, "Y_D": MODEL.y_d,
        "C_HP": 2 * (MODEL.y_f - MODEL.y_b),
        "C_L0P": -MODEL.l_d / MODEL.y_d, "C_L0PP": MODEL.l_d / MODEL.y_d ** 2,
        "EPSILON": MODEL.epsilon, "X_START": MODEL.x_start, "Y_START": MODEL.y_start,
        "HIST_SCALE": MODEL.hist_inv_width,
        "HIST_SHIFT": 1 - MODEL.hist_lo * MODEL.hist_inv_width,
    }
    lines = [f"typedef {real} sw_real;", f"#define HIST_BINS {MODEL.hist_bins}"]
    lines += [f"#define {name} ({value!r})" for name, value in values.items()]
    return "\n".join(lines) + "\n"
