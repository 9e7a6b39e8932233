// AArch64 NEON micro-kernels: broadcast outer-product GEMM tiles over a batch of (A, B) pairs.
//
// NEON is baseline on AArch64, so this file needs no flags of its own; it still keeps to the
// rule of the per-ISA files (internal linkage, no standard-library templates) so that it could
// take extra ones (SVE, dot-product extensions) without sharing code with baseline callers.
#include <arm_neon.h>

#include "kernels/neon.hpp"
#include "kernels/row_window.hpp"

namespace tconv::kernels::neon {
namespace {

// ---- per-type vector operations --------------------------------------------------------------

struct F32 {
  using T = float;
  using V = float32x4_t;
  static constexpr int L = 4;
  static V zero() { return vdupq_n_f32(0.0f); }
  static V load(const T* p) { return vld1q_f32(p); }
  static V dup(const T* p) { return vld1q_dup_f32(p); }
  // c + a * s, one rounding (the by-element FMLA).
  static V fma_n(V c, V a, T s) { return vfmaq_n_f32(c, a, s); }
  static void store(T* p, V v) { vst1q_f32(p, v); }
  // c + a * lane J of b (FMLA by element).
  template <int J>
  static V fma_lane(V c, V a, V b) {
    return vfmaq_laneq_f32(c, a, b, J);
  }
  // Lane j holds p[(F + j) * ms] for F + j < MR; the lanes past MR repeat the first (all zero
  // when F >= MR: nothing is read).
  template <int F, int MR>
  static V gather(const T* p, std::int64_t ms) {
    if constexpr (F >= MR) return zero();
    V v = vld1q_dup_f32(p + F * ms);
    if constexpr (F + 1 < MR) v = vld1q_lane_f32(p + (F + 1) * ms, v, 1);
    if constexpr (F + 2 < MR) v = vld1q_lane_f32(p + (F + 2) * ms, v, 2);
    if constexpr (F + 3 < MR) v = vld1q_lane_f32(p + (F + 3) * ms, v, 3);
    return v;
  }
  // Lanes i with base + i < n read memory, the others are zero (and touch nothing).
  static V load_first(const T* p, int base, std::int64_t n) {
    const std::int64_t cnt = n - base;
    if (cnt >= L) return vld1q_f32(p);
    V v = vdupq_n_f32(0.0f);
    if (cnt > 0) v = vld1q_lane_f32(p, v, 0);
    if (cnt > 1) v = vld1q_lane_f32(p + 1, v, 1);
    if (cnt > 2) v = vld1q_lane_f32(p + 2, v, 2);
    return v;
  }
};

struct F64 {
  using T = double;
  using V = float64x2_t;
  static constexpr int L = 2;
  static V zero() { return vdupq_n_f64(0.0); }
  static V load(const T* p) { return vld1q_f64(p); }
  static V dup(const T* p) { return vld1q_dup_f64(p); }
  static V fma_n(V c, V a, T s) { return vfmaq_n_f64(c, a, s); }
  static void store(T* p, V v) { vst1q_f64(p, v); }
  template <int J>
  static V fma_lane(V c, V a, V b) {
    return vfmaq_laneq_f64(c, a, b, J);
  }
  template <int F, int MR>
  static V gather(const T* p, std::int64_t ms) {
    if constexpr (F >= MR) return zero();
    V v = vld1q_dup_f64(p + F * ms);
    if constexpr (F + 1 < MR) v = vld1q_lane_f64(p + (F + 1) * ms, v, 1);
    return v;
  }
  static V load_first(const T* p, int base, std::int64_t n) {
    const std::int64_t cnt = n - base;
    if (cnt >= L) return vld1q_f64(p);
    V v = vdupq_n_f64(0.0);
    if (cnt > 0) v = vld1q_lane_f64(p, v, 0);
    return v;
  }
};

// Accumulators as named variables (an array of vectors tends to live in memory across the K
// loop). X(i) applies a step to accumulator i when it is in use (i < COUNT).
// clang-format off
#define TCONV_ACC24(X)                                                                  \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) \
  X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)
// clang-format on

// ---- channel-vector kernel: MR output positions x 4 vectors of output channels ----------------
// Accumulator i holds row i / 4, channel vector i % 4. The six input values of a k-step travel in
// lanes (two fp32 / three fp64 vectors), so 24 accumulators, 4 weight vectors and the inputs fit
// the 32 vector registers: one scalar register per row would spill accumulators.

constexpr int kMR = 6;
constexpr int kNV = 4;

// Like S::gather, with the rows outside `rows` read as zeros (their addresses are never formed
// into loads). Only tiles at an input border take it.
template <class S, int F, int MR>
typename S::V gather_rows(const typename S::T* p, std::int64_t ms, unsigned rows) {
  alignas(16) typename S::T v[S::L] = {};
  for (int j = 0; j < S::L; ++j)
    if (F + j < MR && (rows >> (F + j) & 1u)) v[j] = p[(F + j) * ms];
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
  const std::int64_t ks = g.a_ks, ms = g.a_ms, K = g.k;
  for (std::int64_t p = 0; p < g.pairs; ++p) {
    const T* ap = a + g.a_off[p];
    const T* bp = g.b + g.b_off[p];
    const unsigned rows = window_mask<MR>(g, p, m0);
    if (rows == 0) continue;
    const bool all_rows = rows == (1u << MR) - 1u;
    for (std::int64_t k = 0; k < K; ++k) {
      const V w0 = S::load(bp);
      const V w1 = S::load(bp + L);
      const V w2 = S::load(bp + 2 * L);
      const V w3 = S::load(bp + 3 * L);
      // Rows whose taps fall past the input's border read zeros.
      const V x0 =
          all_rows ? S::template gather<0, MR>(ap, ms) : gather_rows<S, 0, MR>(ap, ms, rows);
      const V x1 =
          all_rows ? S::template gather<L, MR>(ap, ms) : gather_rows<S, L, MR>(ap, ms, rows);
      const V x2 = all_rows ? S::template gather<2 * L, MR>(ap, ms)
                            : gather_rows<S, 2 * L, MR>(ap, ms, rows);
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
      bp += NR;
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
void channel_tiles(const GemmCall<typename S::T>& g, std::int64_t m, std::int64_t rows) {
  const auto* a = g.a + m * g.a_ms;
  auto* c = g.c + m * g.c_ms;
  switch (rows) {
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
                   std::int64_t rows) {
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
#define TCONV_STEP(i)                                                               \
  if constexpr ((i) < COUNT) {                                                      \
    const V av = PARTIAL ? S::load_first(ap + ((i) % MV) * L, ((i) % MV) * L, rows) \
                         : S::load(ap + ((i) % MV) * L);                            \
    r##i = S::fma_n(r##i, av, bp[(i) / MV]);                                        \
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
    for (std::int64_t r = 0; r < rows; ++r) out[r * g.c_ms] = src[r];
  }
}

template <class S, int CO, int MV>
void position_tiles(const GemmCall<typename S::T>& g) {
  constexpr std::int64_t W = MV * S::L;
  std::int64_t m = 0;
  for (; m + W <= g.m; m += W) position_tile<S, CO, MV, false>(g, g.a + m, g.c + m * g.c_ms, W);
  // The last, partial tile loads only its own rows lane by lane: the buffer needs no slack.
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

// ---- multi-phase position kernel: CO channels x PH phases x MV position vectors --------------
// Accumulator i holds channel i / (PH * MV), phase (i / MV) % PH, position vector i % MV. One
// load of the input vectors of a k-step feeds every phase the pair has a tap for.

#define TCONV_ACC_REFS(V)                                                                       \
  V &r0, V &r1, V &r2, V &r3, V &r4, V &r5, V &r6, V &r7, V &r8, V &r9, V &r10, V &r11, V &r12, \
      V &r13, V &r14, V &r15, V &r16, V &r17, V &r18, V &r19, V &r20, V &r21, V &r22, V &r23
#define TCONV_ACC_ARGS                                                                           \
  r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, r17, r18, r19, r20, \
      r21, r22, r23

template <int J, class V>
__attribute__((always_inline)) inline V pick(V a0, V a1, V a2, V a3, V a4, V a5) {
  if constexpr (J == 0) return a0;
  if constexpr (J == 1) return a1;
  if constexpr (J == 2) return a2;
  if constexpr (J == 3) return a3;
  if constexpr (J == 4) return a4;
  return a5;
}

// K steps of one pair (phases in MASK) and, when MASKB is not empty, of its partner (the
// complementary phases) in the same pass: each phase's weights come from whichever has it.
template <class S, int CO, int PH, int MV, bool PARTIAL, int MASK, int MASKB>
__attribute__((always_inline)) inline void phase_k(
    const typename S::T* ap, const typename S::T* const* bp, const typename S::T* apb,
    const typename S::T* const* bpb, std::int64_t K, std::int64_t ks, std::int64_t ld,
    std::int64_t rows, TCONV_ACC_REFS(typename S::V)) {
  using V = typename S::V;
  using T = typename S::T;
  constexpr int L = S::L;
  constexpr int COUNT = CO * PH * MV;
  const T* b[4];
  for (int ph = 0; ph < 4; ++ph) b[ph] = ph < PH ? (((MASK >> ph) & 1) ? bp[ph] : bpb[ph]) : bp[0];
  const T* b0 = b[0];
  const T* b1 = b[1];
  const T* b2 = b[2];
  const T* b3 = b[3];
  for (std::int64_t k = 0; k < K; ++k) {
#define TCONV_A(v, P)                                                                             \
  const V a##v =                                                                                  \
      (v) < MV ? (PARTIAL ? S::load_first((P) + (v) * L, (v) * L, rows) : S::load((P) + (v) * L)) \
               : S::zero();
#define TCONV_STEP(i, M)                                                                \
  if constexpr ((i) < COUNT && ((M >> (((i) / MV) % PH)) & 1)) {                        \
    constexpr int ph = ((i) / MV) % PH;                                                 \
    const T* bq = ph == 0 ? b0 : ph == 1 ? b1 : ph == 2 ? b2 : b3;                      \
    r##i = S::fma_n(r##i, pick<(i) % MV>(a0, a1, a2, a3, a4, a5), bq[(i) / (PH * MV)]); \
  }
#define TCONV_STEP_A(i) TCONV_STEP(i, MASK)
#define TCONV_STEP_B(i) TCONV_STEP(i, MASKB)
    {
      TCONV_A(0, ap)
      TCONV_A(1, ap)
      TCONV_A(2, ap)
      TCONV_A(3, ap)
      TCONV_A(4, ap)
      TCONV_A(5, ap)
      TCONV_ACC24(TCONV_STEP_A)
    }
    if constexpr (MASKB != 0) {
      TCONV_A(0, apb)
      TCONV_A(1, apb)
      TCONV_A(2, apb)
      TCONV_A(3, apb)
      TCONV_A(4, apb)
      TCONV_A(5, apb)
      TCONV_ACC24(TCONV_STEP_B)
    }
#undef TCONV_STEP_A
#undef TCONV_STEP_B
#undef TCONV_STEP
#undef TCONV_A
    ap += ks;
    if constexpr (MASKB != 0) apb += ks;
    b0 += ld;
    b1 += ld;
    b2 += ld;
    b3 += ld;
  }
}

template <class S, int CO, int PH, int MV, bool PARTIAL>
void phase_tile(const PhaseCall<typename S::T>& g, const typename S::T* a, typename S::T* c,
                std::int64_t rows) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  constexpr int COUNT = CO * PH * MV;
  constexpr int FULL = (1 << PH) - 1;
  static_assert(COUNT <= 24 && MV <= 6, "24 accumulators, six position vectors at most");
#define TCONV_DECL(i) \
  V r##i = ((i) < COUNT && g.bias) ? S::dup(g.bias + (i) / (PH * MV)) : S::zero();
  TCONV_ACC24(TCONV_DECL)
#undef TCONV_DECL
  for (std::int64_t p = 0; p < g.pairs; ++p) {
    const std::int64_t partner = g.partner ? g.partner[p] : -1;
    if (partner == -2) continue;  // ran with the pair that names it
    const T* ap = a + g.a_off[p];
    const T* bp[4] = {g.b, g.b, g.b, g.b};
    int mask = 0;
    for (int ph = 0; ph < PH; ++ph) {
      const std::int64_t off = g.b_off[p * PH + ph];
      if (off >= 0) {
        bp[ph] = g.b + off;
        mask |= 1 << ph;
      }
    }
    const T* apb = ap;
    const T* bpb[4] = {g.b, g.b, g.b, g.b};
    if (partner >= 0) {
      apb = a + g.a_off[partner];
      for (int ph = 0; ph < PH; ++ph) {
        const std::int64_t off = g.b_off[partner * PH + ph];
        if (off >= 0) bpb[ph] = g.b + off;
      }
    }
#define TCONV_CASE(M)                                                                         \
  case M:                                                                                     \
    if constexpr (M < (1 << PH)) {                                                            \
      if (partner >= 0) {                                                                     \
        if constexpr (M != FULL)                                                              \
          phase_k<S, CO, PH, MV, PARTIAL, M, FULL ^ M>(ap, bp, apb, bpb, g.k, g.a_ks, g.b_ld, \
                                                       rows, TCONV_ACC_ARGS);                 \
      } else {                                                                                \
        phase_k<S, CO, PH, MV, PARTIAL, M, 0>(ap, bp, ap, bp, g.k, g.a_ks, g.b_ld, rows,      \
                                              TCONV_ACC_ARGS);                                \
      }                                                                                       \
    }                                                                                         \
    break;
    switch (mask) {
      TCONV_CASE(1)
      TCONV_CASE(2)
      TCONV_CASE(3)
      TCONV_CASE(4)
      TCONV_CASE(5)
      TCONV_CASE(6)
      TCONV_CASE(7)
      TCONV_CASE(8)
      TCONV_CASE(9)
      TCONV_CASE(10)
      TCONV_CASE(11)
      TCONV_CASE(12)
      TCONV_CASE(13)
      TCONV_CASE(14)
      TCONV_CASE(15)
      default:
        break;
    }
#undef TCONV_CASE
  }
  alignas(16) T tmp[COUNT * L];
#define TCONV_SPILL(i) \
  if constexpr ((i) < COUNT) S::store(tmp + (i) * L, r##i);
  TCONV_ACC24(TCONV_SPILL)
#undef TCONV_SPILL
  for (int co = 0; co < CO; ++co)
    for (int ph = 0; ph < PH; ++ph) {
      T* out = c + co * g.c_ns + ph * g.c_ps;
      const T* src = tmp + (co * PH + ph) * MV * L;
      for (std::int64_t r = 0; r < rows; ++r) out[r * g.c_ms] = src[r];
    }
}

template <class S, int CO, int PH, int MV>
bool phase_tiles(const PhaseCall<typename S::T>& g) {
  constexpr std::int64_t W = MV * S::L;
  std::int64_t m = 0;
  for (; m + W <= g.m; m += W) phase_tile<S, CO, PH, MV, false>(g, g.a + m, g.c + m * g.c_ms, W);
  // The rest one vector at a time, the last one loading only its own rows lane by lane (the
  // buffer needs no slack). One-vector tiles keep the instantiations, and the build, small.
  for (; m + S::L <= g.m; m += S::L)
    phase_tile<S, CO, PH, 1, false>(g, g.a + m, g.c + m * g.c_ms, S::L);
  if (m < g.m) phase_tile<S, CO, PH, 1, true>(g, g.a + m, g.c + m * g.c_ms, g.m - m);
  return true;
}

// 12-18 accumulators plus up to six input vectors and the weight scalars: within the 32
// registers.
template <class S>
bool phase_gemm(const PhaseCall<typename S::T>& g) {
  switch (g.n * 8 + g.phases) {
    case 1 * 8 + 2:
      return phase_tiles<S, 1, 2, 6>(g);
    case 1 * 8 + 3:
      return phase_tiles<S, 1, 3, 4>(g);
    case 1 * 8 + 4:
      return phase_tiles<S, 1, 4, 4>(g);
    case 2 * 8 + 2:
      return phase_tiles<S, 2, 2, 4>(g);
    case 2 * 8 + 3:
      return phase_tiles<S, 2, 3, 3>(g);
    case 2 * 8 + 4:
      return phase_tiles<S, 2, 4, 2>(g);
    case 3 * 8 + 2:
      return phase_tiles<S, 3, 2, 3>(g);
    case 3 * 8 + 3:
      return phase_tiles<S, 3, 3, 2>(g);
    case 3 * 8 + 4:
      return phase_tiles<S, 3, 4, 1>(g);
    case 4 * 8 + 2:
      return phase_tiles<S, 4, 2, 2>(g);
    case 4 * 8 + 3:
      return phase_tiles<S, 4, 3, 1>(g);
    case 4 * 8 + 4:
      return phase_tiles<S, 4, 4, 1>(g);
    default:
      return false;
  }
}

bool phase_f32(const PhaseCall<float>& g) { return phase_gemm<F32>(g); }
bool phase_f64(const PhaseCall<double>& g) { return phase_gemm<F64>(g); }

void channel_f32(const GemmCall<float>& g) { channel_gemm<F32>(g); }
void channel_f64(const GemmCall<double>& g) { channel_gemm<F64>(g); }
void position_f32(const GemmCall<float>& g) { position_gemm<F32>(g); }
void position_f64(const GemmCall<double>& g) { position_gemm<F64>(g); }

}  // namespace

// The position kernels read nothing past their last row (lane-wise tails): no slack needed. No
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
