// AArch64 NEON multi-phase position-vector kernel (tiny C_out): vectors over output positions,
// every output channel and every phase of the last dim in registers.
//
// Internal linkage except the entry points and no standard-library templates, for the same
// reason as neon_gemm.cpp.
#include <arm_neon.h>

#include <cstdint>

#include "kernels/neon.hpp"
#include "kernels/neon_lanes.hpp"

namespace tconv::kernels::neon {
namespace {

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
    std::int64_t len, TCONV_ACC_REFS(typename S::V)) {
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
#define TCONV_A(v, P)                                                                            \
  const V a##v =                                                                                 \
      (v) < MV ? (PARTIAL ? S::load_first((P) + (v) * L, (v) * L, len) : S::load((P) + (v) * L)) \
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
                std::int64_t len) {
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
#define TCONV_CASE(M)                                                                              \
  case M:                                                                                          \
    if constexpr (M < (1 << PH)) {                                                                 \
      if (partner >= 0) {                                                                          \
        if constexpr (M != FULL)                                                                   \
          phase_k<S, CO, PH, MV, PARTIAL, M, FULL ^ M>(ap, bp, apb, bpb, g.k, g.a_ks, g.b_ld, len, \
                                                       TCONV_ACC_ARGS);                            \
      } else {                                                                                     \
        phase_k<S, CO, PH, MV, PARTIAL, M, 0>(ap, bp, ap, bp, g.k, g.a_ks, g.b_ld, len,            \
                                              TCONV_ACC_ARGS);                                     \
      }                                                                                            \
    }                                                                                              \
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
      for (std::int64_t r = 0; r < len; ++r) out[r * g.c_ms] = src[r];
    }
}

template <class S, int CO, int PH, int MV>
bool phase_tiles(const PhaseCall<typename S::T>& g) {
  constexpr std::int64_t W = MV * S::L;
  std::int64_t m = 0;
  for (; m + W <= g.m; m += W) phase_tile<S, CO, PH, MV, false>(g, g.a + m, g.c + m * g.c_ms, W);
  // The rest one vector at a time, the last one loading only its own positions lane by lane (the
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

}  // namespace

bool phase_f32(const PhaseCall<float>& g) { return phase_gemm<F32>(g); }
bool phase_f64(const PhaseCall<double>& g) { return phase_gemm<F64>(g); }

}  // namespace tconv::kernels::neon
