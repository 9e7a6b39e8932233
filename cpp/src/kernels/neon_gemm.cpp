// AArch64 NEON micro-kernels: broadcast outer-product GEMM tiles over a batch of (A, B) pairs
// (the multi-phase tiles: neon_phase.cpp).
//
// NEON is baseline on AArch64, so this file needs no flags of its own; it still keeps to the
// rule of the per-ISA files (internal linkage, no standard-library templates) so that it could
// take extra ones (SVE, dot-product extensions) without sharing code with baseline callers.
#include <arm_neon.h>

#include "kernels/neon.hpp"
#include "kernels/neon_lanes.hpp"
#include "kernels/row_window.hpp"

namespace tconv::kernels::neon {
namespace {

// ---- channel-vector kernel: MR output positions x 4 vectors of output channels ----------------
// Accumulator i holds position i / 4, channel vector i % 4. The six input values of a k-step travel
// in lanes (two fp32 / three fp64 vectors), so 24 accumulators, 4 weight vectors and the inputs fit
// the 32 vector registers: one scalar register per position would spill accumulators.

constexpr int kMR = 6;
constexpr int kNV = 4;

// Like S::gather, with the positions outside `live` read as zeros (their addresses are never formed
// into loads). Only tiles at an input border take it.
template <class S, int F, int MR>
typename S::V gather_live(const typename S::T* p, std::int64_t ms, unsigned live) {
  alignas(16) typename S::T v[S::L] = {};
  for (int j = 0; j < S::L; ++j)
    if (F + j < MR && (live >> (F + j) & 1u)) v[j] = p[(F + j) * ms];
  return S::load(v);
}

template <class S, int MR>
void channel_tile(const GemmCall<typename S::T>& g, std::int64_t m0, const typename S::T* a,
                  typename S::T* c) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  constexpr int NR = kNV * L;
  constexpr int COUNT = kNV * MR;
  static_assert(MR <= 3 * L, "three vectors of input values at most");
  alignas(16) T init[NR];
  for (int j = 0; j < NR; ++j) init[j] = (g.bias && j < g.n) ? g.bias[j] : T(0);
#define TCONV_DECL(i) V r##i = S::load(init + ((i) % kNV) * L);
  TCONV_ACC24(TCONV_DECL)
#undef TCONV_DECL
  const std::int64_t ks = g.a_ks, ms = g.a_ms, K = g.k, ld = g.b_ld;
  for (std::int64_t p = 0; p < g.pairs; ++p) {
    const T* ap = a + g.a_off[p];
    const T* bp = g.b + g.b_off[p];
    const unsigned live = window_mask<MR>(g, p, m0);
    if (live == 0) continue;
    const bool all_live = live == (1u << MR) - 1u;
    for (std::int64_t k = 0; k < K; ++k) {
      const V w0 = S::load(bp);
      const V w1 = S::load(bp + L);
      const V w2 = S::load(bp + 2 * L);
      const V w3 = S::load(bp + 3 * L);
      // Rows whose taps fall past the input's border read zeros.
      const V x0 =
          all_live ? S::template gather<0, MR>(ap, ms) : gather_live<S, 0, MR>(ap, ms, live);
      const V x1 =
          all_live ? S::template gather<L, MR>(ap, ms) : gather_live<S, L, MR>(ap, ms, live);
      const V x2 = all_live ? S::template gather<2 * L, MR>(ap, ms)
                            : gather_live<S, 2 * L, MR>(ap, ms, live);
#define TCONV_STEP(i)                                                           \
  if constexpr ((i) < COUNT) {                                                  \
    constexpr int v = (i) % kNV, row = (i) / kNV, lane = row % L, xv = row / L; \
    r##i = S::template fma_lane<lane>(r##i,                                     \
                                      v == 0   ? w0                             \
                                      : v == 1 ? w1                             \
                                      : v == 2 ? w2                             \
                                               : w3,                            \
                                      xv == 0   ? x0                            \
                                      : xv == 1 ? x1                            \
                                                : x2);                          \
  }
      TCONV_ACC24(TCONV_STEP)
#undef TCONV_STEP
      ap += ks;
      bp += ld;
    }
  }
  if (g.c_ns == 1 && g.n == NR) {
#define TCONV_STORE(i) \
  if constexpr ((i) < COUNT) S::store(c + ((i) / kNV) * g.c_ms + ((i) % kNV) * L, r##i);
    TCONV_ACC24(TCONV_STORE)
#undef TCONV_STORE
    return;
  }
  alignas(16) T tmp[COUNT * L];
#define TCONV_SPILL(i) \
  if constexpr ((i) < COUNT) S::store(tmp + (i) * L, r##i);
  TCONV_ACC24(TCONV_SPILL)
#undef TCONV_SPILL
  for (int m = 0; m < MR; ++m) {
    T* row = c + m * g.c_ms;
    for (std::int64_t j = 0; j < g.n; ++j) row[j * g.c_ns] = tmp[m * NR + j];
  }
}

template <class S>
void channel_tiles(const GemmCall<typename S::T>& g, std::int64_t m, std::int64_t len) {
  const auto* a = g.a + m * g.a_ms;
  auto* c = g.c + m * g.c_ms;
  switch (len) {
    case 6:
      channel_tile<S, 6>(g, m, a, c);
      break;
    case 5:
      channel_tile<S, 5>(g, m, a, c);
      break;
    case 4:
      channel_tile<S, 4>(g, m, a, c);
      break;
    case 3:
      channel_tile<S, 3>(g, m, a, c);
      break;
    case 2:
      channel_tile<S, 2>(g, m, a, c);
      break;
    case 1:
      channel_tile<S, 1>(g, m, a, c);
      break;
    default:
      break;
  }
}

template <class S>
void channel_gemm(const GemmCall<typename S::T>& g) {
  std::int64_t m = 0;
  for (; m + kMR <= g.m; m += kMR) channel_tile<S, kMR>(g, m, g.a + m * g.a_ms, g.c + m * g.c_ms);
  channel_tiles<S>(g, m, g.m - m);
}

// ---- position-vector kernel: MV vectors of consecutive output positions x CO channels ---------
// Accumulator i holds channel i / MV, position vector i % MV.

template <class S, int CO, int MV, bool PARTIAL>
void position_tile(const GemmCall<typename S::T>& g, const typename S::T* a, typename S::T* c,
                   std::int64_t len) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  constexpr int COUNT = CO * MV;
  static_assert(COUNT <= 24, "twenty-four accumulators at most");
#define TCONV_DECL(i) V r##i = ((i) < COUNT && g.bias) ? S::dup(g.bias + (i) / MV) : S::zero();
  TCONV_ACC24(TCONV_DECL)
#undef TCONV_DECL
  const std::int64_t ks = g.a_ks, K = g.k, ld = g.b_ld;
  for (std::int64_t p = 0; p < g.pairs; ++p) {
    const T* ap = a + g.a_off[p];
    const T* bp = g.b + g.b_off[p];
    for (std::int64_t k = 0; k < K; ++k) {
#define TCONV_STEP(i)                                                              \
  if constexpr ((i) < COUNT) {                                                     \
    const V av = PARTIAL ? S::load_first(ap + ((i) % MV) * L, ((i) % MV) * L, len) \
                         : S::load(ap + ((i) % MV) * L);                           \
    r##i = S::fma_n(r##i, av, bp[(i) / MV]);                                       \
  }
      TCONV_ACC24(TCONV_STEP)
#undef TCONV_STEP
      ap += ks;
      bp += ld;
    }
  }
  alignas(16) T tmp[COUNT * L];
#define TCONV_SPILL(i) \
  if constexpr ((i) < COUNT) S::store(tmp + (i) * L, r##i);
  TCONV_ACC24(TCONV_SPILL)
#undef TCONV_SPILL
  for (int o = 0; o < CO; ++o) {
    T* out = c + o * g.c_ns;
    const T* src = tmp + o * MV * L;
    for (std::int64_t r = 0; r < len; ++r) out[r * g.c_ms] = src[r];
  }
}

template <class S, int CO, int MV>
void position_tiles(const GemmCall<typename S::T>& g) {
  constexpr std::int64_t W = MV * S::L;
  std::int64_t m = 0;
  for (; m + W <= g.m; m += W) position_tile<S, CO, MV, false>(g, g.a + m, g.c + m * g.c_ms, W);
  // The last, partial tile loads only its own positions lane by lane: the buffer needs no slack.
  if (m < g.m) position_tile<S, CO, MV, true>(g, g.a + m, g.c + m * g.c_ms, g.m - m);
}

// 8-16 accumulators: enough independent FMA chains, few enough to leave the loads registers.
template <class S>
void position_gemm(const GemmCall<typename S::T>& g) {
  switch (g.n) {
    case 1:
      position_tiles<S, 1, 8>(g);
      break;
    case 2:
      position_tiles<S, 2, 6>(g);
      break;
    case 3:
      position_tiles<S, 3, 4>(g);
      break;
    case 4:
      position_tiles<S, 4, 4>(g);
      break;
    default:
      break;
  }
}

// ---- transposes: 4 x 4 (fp32) / 2 x 2 (fp64) register blocks, scalar edges ------------------

void transpose4x4(const float* s, std::int64_t sl, float* d, std::int64_t dl) {
  const float32x4_t r0 = vld1q_f32(s), r1 = vld1q_f32(s + sl), r2 = vld1q_f32(s + 2 * sl),
                    r3 = vld1q_f32(s + 3 * sl);
  // Pairs of rows interleaved, then 64-bit halves exchanged.
  const float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(r0, r1)),
                    t1 = vreinterpretq_f64_f32(vtrn2q_f32(r0, r1)),
                    t2 = vreinterpretq_f64_f32(vtrn1q_f32(r2, r3)),
                    t3 = vreinterpretq_f64_f32(vtrn2q_f32(r2, r3));
  vst1q_f32(d, vreinterpretq_f32_f64(vtrn1q_f64(t0, t2)));
  vst1q_f32(d + dl, vreinterpretq_f32_f64(vtrn1q_f64(t1, t3)));
  vst1q_f32(d + 2 * dl, vreinterpretq_f32_f64(vtrn2q_f64(t0, t2)));
  vst1q_f32(d + 3 * dl, vreinterpretq_f32_f64(vtrn2q_f64(t1, t3)));
}

void transpose2x2(const double* s, std::int64_t sl, double* d, std::int64_t dl) {
  const float64x2_t r0 = vld1q_f64(s), r1 = vld1q_f64(s + sl);
  vst1q_f64(d, vtrn1q_f64(r0, r1));
  vst1q_f64(d + dl, vtrn2q_f64(r0, r1));
}

template <class T, int B, void (*Block)(const T*, std::int64_t, T*, std::int64_t)>
void transpose(const T* src, std::int64_t sl, T* dst, std::int64_t dl, std::int64_t rows,
               std::int64_t cols, bool dst_order) {
  const std::int64_t rb = rows / B * B, cb = cols / B * B;
  if (dst_order) {
    for (std::int64_t j = 0; j < cb; j += B) {
      for (std::int64_t i = 0; i < rb; i += B) Block(src + i * sl + j, sl, dst + j * dl + i, dl);
      for (std::int64_t jj = j; jj < j + B; ++jj)
        for (std::int64_t i = rb; i < rows; ++i) dst[jj * dl + i] = src[i * sl + jj];
    }
    for (std::int64_t j = cb; j < cols; ++j)
      for (std::int64_t i = 0; i < rows; ++i) dst[j * dl + i] = src[i * sl + j];
    return;
  }
  for (std::int64_t i = 0; i < rb; i += B) {
    for (std::int64_t j = 0; j < cb; j += B) Block(src + i * sl + j, sl, dst + j * dl + i, dl);
    for (std::int64_t j = cb; j < cols; ++j)
      for (std::int64_t ii = i; ii < i + B; ++ii) dst[j * dl + ii] = src[ii * sl + j];
  }
  for (std::int64_t i = rb; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) dst[j * dl + i] = src[i * sl + j];
}

void transpose_f32(const float* s, std::int64_t sl, float* d, std::int64_t dl, std::int64_t rows,
                   std::int64_t cols, bool dst_order) {
  transpose<float, 4, transpose4x4>(s, sl, d, dl, rows, cols, dst_order);
}
void transpose_f64(const double* s, std::int64_t sl, double* d, std::int64_t dl, std::int64_t rows,
                   std::int64_t cols, bool dst_order) {
  transpose<double, 2, transpose2x2>(s, sl, d, dl, rows, cols, dst_order);
}

void channel_f32(const GemmCall<float>& g) { channel_gemm<F32>(g); }
void channel_f64(const GemmCall<double>& g) { channel_gemm<F64>(g); }
void position_f32(const GemmCall<float>& g) { position_gemm<F32>(g); }
void position_f64(const GemmCall<double>& g) { position_gemm<F64>(g); }

}  // namespace

// The position kernels read nothing past their last position (lane-wise tails): no slack needed. No
// depthwise kernels: depthwise layers take the phase driver on NEON.
KernelSet<float> kernels_f32() {
  KernelSet<float> ks{channel_f32,   kNV * F32::L, position_f32, 0,
                      transpose_f32, phase_f32,    nullptr,      nullptr};
  ks.channel_windows = true;
  return ks;
}
KernelSet<double> kernels_f64() {
  KernelSet<double> ks{channel_f64,   kNV * F64::L, position_f64, 0,
                       transpose_f64, phase_f64,    nullptr,      nullptr};
  ks.channel_windows = true;
  return ks;
}

}  // namespace tconv::kernels::neon
