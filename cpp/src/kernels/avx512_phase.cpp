// AVX-512F multi-phase position-vector kernel (tiny C_out): vectors over output positions, every
// output channel and every phase of the last dim in registers, like the AVX2 one in
// avx2_gemm.cpp.
//
// What the 512-bit form changes: 32 registers hold up to 24 accumulators (a 64-position row
// of three or four phases in one tile instead of two or three), and the last vector of a tile
// is loaded and stored under a mask register, so a tail reads nothing past the row and needs
// no second code path. The phases are interleaved into the output row with lane permutes,
// tails included. The calls it measured no faster on go to the AVX2 kernel (see use_avx2).
//
// The position-vector GEMM without phases stays the AVX2 one: its rows are short (one phase)
// and at this width its 1-channel tiles hold half as many accumulators, which lost on
// stride-1 layers here.
//
// Built with -mavx512f -mavx2 -mfma for this file only; internal linkage except the entry
// points and no standard-library templates, for the same reason as avx2_gemm.cpp.
#include <immintrin.h>

#include <cstdint>

#include "kernels/avx2.hpp"
#include "kernels/avx512.hpp"
#include "kernels/avx512_lanes.hpp"

namespace tconv::kernels::avx512 {
namespace {

struct F32 : F32Lanes {
  // Calls the AVX2 kernel runs as fast: rows of one vector (too few FMA chains at this width),
  // and 3 channels x 2 phases (DCGAN's RGB head: measured even with AVX2 at every row length
  // tried; its six broadcasts per step are the bottleneck at either width).
  static bool use_avx2(const PhaseCall<T>& g) {
    return (g.m <= L || (g.n == 3 && g.phases == 2)) && !(g.n == 4 && g.phases == 4);
  }
  static bool fallback(const PhaseCall<T>& g) { return avx2::phase_f32(g); }
  static bool fused(const PhaseCall<T>& g) { return groups_f32(g); }
};

struct F64 : F64Lanes {
  static bool use_avx2(const PhaseCall<T>& g) { return g.m <= L && !(g.n == 4 && g.phases == 4); }
  static bool fallback(const PhaseCall<T>& g) { return avx2::phase_f64(g); }
  static bool fused(const PhaseCall<T>& g) { return groups_f64(g); }
};

// ---- multi-phase position kernel: CO channels x PH phases x MV position vectors --------------
// Accumulator i holds channel i / (PH * MV), phase (i / MV) % PH, position vector i % MV.

#define TCONV_ACC_REFS(V)                                                                       \
  V &r0, V &r1, V &r2, V &r3, V &r4, V &r5, V &r6, V &r7, V &r8, V &r9, V &r10, V &r11, V &r12, \
      V &r13, V &r14, V &r15, V &r16, V &r17, V &r18, V &r19, V &r20, V &r21, V &r22, V &r23

// With row windows (WIN == kSome) input vector v of pair A (B) is loaded under the mask ka[v]
// (kb[v]), the lanes of its window in the tile.
enum Cover { kNone, kAll, kSome };

template <class S, int CO, int PH, int MV, int MASK, int MASKB, int WIN = kNone>
__attribute__((always_inline)) inline void phase_k(
    const typename S::T* ap, const typename S::T* const* bp, const typename S::T* apb,
    const typename S::T* const* bpb, std::int64_t K, std::int64_t ks, std::int64_t ld,
    typename S::K last, TCONV_ACC_REFS(typename S::V), const typename S::K* ka = nullptr,
    const typename S::K* kb = nullptr) {
  using V = typename S::V;
  using T = typename S::T;
  constexpr int L = S::L;
  constexpr int COUNT = CO * PH * MV;
  // Phase ph reads its weights from pair A when MASK has it, else from pair B.
  const T* b[4];
  for (int ph = 0; ph < 4; ++ph) b[ph] = ph < PH ? (((MASK >> ph) & 1) ? bp[ph] : bpb[ph]) : bp[0];
  const T* b0 = b[0];
  const T* b1 = b[1];
  const T* b2 = b[2];
  const T* b3 = b[3];
  // The input vectors of step k + 1 are loaded during step k, into the registers step k has
  // just finished with: values carried across iterations stay in registers, where a load used
  // by several FMAs in the same step is folded into each of them by the compiler (a 64-byte
  // load per FMA, most of them split across cache lines). The last step reloads its own row
  // (no read past the pair's last input channel).
#define TCONV_LOAD(v, P, KW)                                \
  if constexpr ((v) < MV) {                                 \
    if constexpr (WIN == kSome)                             \
      P##v = S::loadm(P + (v) * L, KW[(v) < MV ? (v) : 0]); \
    else if constexpr (WIN == kNone && (v) == MV - 1)       \
      P##v = S::loadm(P + (v) * L, last);                   \
    else                                                    \
      P##v = S::load(P + (v) * L);                          \
  }
#define TCONV_A(v, P, USE, KW) \
  V P##v = S::zero();          \
  if constexpr (USE) {         \
    TCONV_LOAD(v, P, KW)       \
  }
  TCONV_A(0, ap, true, ka)
  TCONV_A(1, ap, true, ka)
  TCONV_A(2, ap, true, ka)
  TCONV_A(3, ap, true, ka)
  TCONV_A(4, ap, true, ka)
  TCONV_A(5, ap, true, ka)
  TCONV_A(0, apb, MASKB != 0, kb)
  TCONV_A(1, apb, MASKB != 0, kb)
  TCONV_A(2, apb, MASKB != 0, kb)
  TCONV_A(3, apb, MASKB != 0, kb)
  TCONV_A(4, apb, MASKB != 0, kb)
  TCONV_A(5, apb, MASKB != 0, kb)
#undef TCONV_A
  for (std::int64_t k = 0; k < K; ++k) {
    const std::int64_t step = k + 1 < K ? ks : 0;
#define TCONV_STEP(i, M, P)                                        \
  if constexpr ((i) < COUNT && ((M >> (((i) / MV) % PH)) & 1)) {   \
    constexpr int ph = ((i) / MV) % PH;                            \
    constexpr int v = (i) % MV;                                    \
    const T* bq = ph == 0 ? b0 : ph == 1 ? b1 : ph == 2 ? b2 : b3; \
    const V av = v == 0   ? P##0                                   \
                 : v == 1 ? P##1                                   \
                 : v == 2 ? P##2                                   \
                 : v == 3 ? P##3                                   \
                 : v == 4 ? P##4                                   \
                          : P##5;                                  \
    r##i = S::fma(av, S::bcast(bq + (i) / (PH * MV)), r##i);       \
  }
#define TCONV_STEP_A(i) TCONV_STEP(i, MASK, ap)
#define TCONV_STEP_B(i) TCONV_STEP(i, MASKB, apb)
    TCONV_ACC24(TCONV_STEP_A)
    ap += step;
    TCONV_LOAD(0, ap, ka)
    TCONV_LOAD(1, ap, ka)
    TCONV_LOAD(2, ap, ka)
    TCONV_LOAD(3, ap, ka)
    TCONV_LOAD(4, ap, ka)
    TCONV_LOAD(5, ap, ka)
    if constexpr (MASKB != 0) {
      TCONV_ACC24(TCONV_STEP_B)
      apb += step;
      TCONV_LOAD(0, apb, kb)
      TCONV_LOAD(1, apb, kb)
      TCONV_LOAD(2, apb, kb)
      TCONV_LOAD(3, apb, kb)
      TCONV_LOAD(4, apb, kb)
      TCONV_LOAD(5, apb, kb)
    }
#undef TCONV_STEP_A
#undef TCONV_STEP_B
#undef TCONV_LOAD
#undef TCONV_STEP
    b0 += ld;
    b1 += ld;
    b2 += ld;
    b3 += ld;
  }
}

#define TCONV_ARGS                                                                               \
  r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, r17, r18, r19, r20, \
      r21, r22, r23

// How a pair's row window [lo, hi) (relative to a tile's first position) meets a tile of `len`
// positions: not at all (kNone: the pair adds only zeros there), over all of them (kAll: the
// unmasked loop reads those positions only), or less (kSome).
int cover(std::int64_t lo, std::int64_t hi, std::int64_t len) {
  if (hi <= lo || hi <= 0 || lo >= len) return kNone;
  return lo <= 0 && hi >= len ? kAll : kSome;
}

// k[v]: the lanes of vector v in the window [lo, hi) and below `len`.
template <class S, int MV>
void lanes(std::int64_t lo, std::int64_t hi, std::int64_t len, typename S::K* k) {
  if (hi > len) hi = len;
  for (int v = 0; v < MV; ++v) k[v] = S::range(lo - v * S::L, hi - v * S::L);
}

// One pair alone, with phases `mask`, its input vectors loaded under the masks k (a tile at
// a row window's edge; kNone: the pair has no row here). Every vector masked, whatever the
// window's cover: edge tiles are rare, and one variant per phase mask keeps this file small.
template <class S, int CO, int PH, int MV>
__attribute__((always_inline)) inline void phase_one(int mask, int kind, const typename S::K* k,
                                                     const typename S::T* ap,
                                                     const typename S::T* const* bp, std::int64_t K,
                                                     std::int64_t ks, std::int64_t ld,
                                                     typename S::K last,
                                                     TCONV_ACC_REFS(typename S::V)) {
  if (kind == kNone) return;
#define TCONV_CASE(M)                                                                         \
  case M:                                                                                     \
    if constexpr (M < (1 << PH))                                                              \
      phase_k<S, CO, PH, MV, M, 0, kSome>(ap, bp, ap, bp, K, ks, ld, last, TCONV_ARGS, k, k); \
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

// m0: the tile's first row (where the row windows are read).
template <class S, int CO, int PH, int MV>
void phase_tile(const PhaseCall<typename S::T>& g, std::int64_t m0, const typename S::T* a,
                typename S::T* c, std::int64_t len) {
  using T = typename S::T;
  using V = typename S::V;
  using K = typename S::K;
  constexpr int L = S::L;
  constexpr int COUNT = CO * PH * MV;
  constexpr int FULL = (1 << PH) - 1;
  static_assert(COUNT <= kAcc && MV <= 6, "24 accumulators, six position vectors at most");
  const K last = S::first(len - (MV - 1) * L);
  TCONV_TILE_ACCUMULATORS
  // k == 0 (no input channels) reads nothing: the first step's vectors load before its loop.
  for (std::int64_t p = 0; g.k > 0 && p < g.pairs; ++p) {
    const std::int64_t partner = g.partner ? g.partner[p] : -1;
    if (partner == -2) continue;
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
    if (g.m_lo) {
      const std::int64_t alo = g.m_lo[p] - m0, ahi = g.m_hi[p] - m0;
      const std::int64_t blo = partner >= 0 ? g.m_lo[partner] - m0 : 0;
      const std::int64_t bhi = partner >= 0 ? g.m_hi[partner] - m0 : 0;
      const int ca = cover(alo, ahi, len);
      const int cb = cover(blo, bhi, len);
      if (ca != kAll || (partner >= 0 && cb != kAll)) {
        // The masks only here: a tile the windows cover pays nothing for them.
        K ka[MV], kb[MV];
        lanes<S, MV>(alo, ahi, len, ka);
        lanes<S, MV>(blo, bhi, len, kb);
        // An edge: each pair on its own, every vector under its masks (lanes in its window and
        // below `len`, so a covered vector loads as the unmasked loop would). The partner's
        // phases are the ones pair A lacks: its accumulators are its own, so the sums keep
        // their order. One call site in a loop: phase_one is inlined once.
        for (int side = 0; side < (partner >= 0 ? 2 : 1); ++side) {
          const bool b = side == 1;
          phase_one<S, CO, PH, MV>(b ? FULL ^ mask : mask, b ? cb : ca, b ? kb : ka, b ? apb : ap,
                                   b ? bpb : bp, g.k, g.a_ks, g.b_ld, last, TCONV_ARGS);
        }
        continue;
      }
    }
#define TCONV_CASE(M)                                                                        \
  case M:                                                                                    \
    if constexpr (M < (1 << PH)) {                                                           \
      if (partner >= 0) {                                                                    \
        if constexpr (M != FULL)                                                             \
          phase_k<S, CO, PH, MV, M, FULL ^ M>(ap, bp, apb, bpb, g.k, g.a_ks, g.b_ld, last,   \
                                              TCONV_ARGS);                                   \
      } else {                                                                               \
        phase_k<S, CO, PH, MV, M, 0>(ap, bp, ap, bp, g.k, g.a_ks, g.b_ld, last, TCONV_ARGS); \
      }                                                                                      \
    }                                                                                        \
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
  TCONV_TILE_STORE(c, len)
}

template <class S>
bool phase_gemm(const PhaseCall<typename S::T>& g) {
  // Groups of shifts: one pass per group (avx512_phase_groups.cpp), when it takes the call.
  if (g.group > 1 && S::fused(g)) return true;
  if (S::use_avx2(g)) return S::fallback(g);
  return with_shape(g.n, g.phases, [&](auto shape) {
    using Sh = decltype(shape);  // Sh::MV: the widest tile
    auto run = [&](auto tile, std::int64_t m, std::int64_t len) {
      phase_tile<S, Sh::CO, Sh::PH, decltype(tile)::MV>(g, m, g.a + m, g.c + m * g.c_ms, len);
    };
    for_each_tile<S, Sh::CO, Sh::PH, Sh::MV>(g, run);
    return true;
  });
}

}  // namespace

bool phase_f32(const PhaseCall<float>& g) { return phase_gemm<F32>(g); }
bool phase_f64(const PhaseCall<double>& g) { return phase_gemm<F64>(g); }

}  // namespace tconv::kernels::avx512

#undef TCONV_ARGS
#undef TCONV_ACC24
#undef TCONV_TILE_ACC_DECL
#undef TCONV_TILE_ACCUMULATORS
#undef TCONV_TILE_ACC_SPILL
#undef TCONV_TILE_STORE
#undef TCONV_ACC_REFS
