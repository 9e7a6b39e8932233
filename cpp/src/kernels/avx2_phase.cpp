// AVX2 + FMA multi-phase position-vector kernel (tiny C_out): vectors over output positions,
// every output channel and every phase of the last dim in registers.
//
// Built with -mavx2 -mfma for this file only; internal linkage except the entry points and no
// standard-library templates, for the same reason as avx2_gemm.cpp.
#include <immintrin.h>

#include <cstdint>

#include "kernels/avx2.hpp"
#include "kernels/avx2_lanes.hpp"

namespace tconv::kernels::avx2 {
namespace {

// ---- multi-phase position kernel: CO channels x PH phases x MV position vectors --------------
// Accumulator i holds channel i / (PH * MV), phase (i / MV) % PH, position vector i % MV.

template <int J, class V>
__attribute__((always_inline)) inline V pick(V a0, V a1, V a2, V a3, V a4, V a5) {
  if constexpr (J == 0) return a0;
  if constexpr (J == 1) return a1;
  if constexpr (J == 2) return a2;
  if constexpr (J == 3) return a3;
  if constexpr (J == 4) return a4;
  return a5;
}

// WA, WB: which input vectors of pair A, B load under their masks ka[v], kb[v].
template <class S, int CO, int PH, int MV, int MASK, int MASKB, int WA = kAll, int WB = kAll>
__attribute__((always_inline)) inline void phase_k(
    const typename S::T* ap, const typename S::T* const* bp, const typename S::T* apb,
    const typename S::T* const* bpb, std::int64_t K, std::int64_t ks, std::int64_t ld,
    TCONV_ACC_REFS(typename S::V), const __m256i* ka = nullptr, const __m256i* kb = nullptr) {
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
  for (std::int64_t k = 0; k < K; ++k) {
#define TCONV_A(v, P, KW, W)                                  \
  V a##v = S::zero();                                         \
  if constexpr ((v) < MV) {                                   \
    if constexpr (masked(W, (v), MV))                         \
      a##v = S::loadm((P) + (v) * L, KW[(v) < MV ? (v) : 0]); \
    else                                                      \
      a##v = S::load((P) + (v) * L);                          \
  }
#define TCONV_STEP(i, M)                                                                         \
  if constexpr ((i) < COUNT && ((M >> (((i) / MV) % PH)) & 1)) {                                 \
    constexpr int ph = ((i) / MV) % PH;                                                          \
    const T* bq = ph == 0 ? b0 : ph == 1 ? b1 : ph == 2 ? b2 : b3;                               \
    r##i = S::fma(pick<(i) % MV>(a0, a1, a2, a3, a4, a5), S::bcast(bq + (i) / (PH * MV)), r##i); \
  }
#define TCONV_STEP_A(i) TCONV_STEP(i, MASK)
#define TCONV_STEP_B(i) TCONV_STEP(i, MASKB)
    {
      TCONV_A(0, ap, ka, WA)
      TCONV_A(1, ap, ka, WA)
      TCONV_A(2, ap, ka, WA)
      TCONV_A(3, ap, ka, WA)
      TCONV_A(4, ap, ka, WA)
      TCONV_A(5, ap, ka, WA)
      TCONV_ACC12(TCONV_STEP_A)
    }
    if constexpr (MASKB != 0) {
      TCONV_A(0, apb, kb, WB)
      TCONV_A(1, apb, kb, WB)
      TCONV_A(2, apb, kb, WB)
      TCONV_A(3, apb, kb, WB)
      TCONV_A(4, apb, kb, WB)
      TCONV_A(5, apb, kb, WB)
      TCONV_ACC12(TCONV_STEP_B)
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

// One pair alone, with phases `mask`, its input vectors loaded under the masks k (a tile at
// a row window's edge; kNone: the pair has no row here). Every vector masked, whatever the
// window's cover: edge tiles are rare, and one variant per phase mask keeps this file small.
template <class S, int CO, int PH, int MV>
__attribute__((always_inline)) inline void phase_one(int mask, int kind, const __m256i* k,
                                                     const typename S::T* ap,
                                                     const typename S::T* const* bp, std::int64_t K,
                                                     std::int64_t ks, std::int64_t ld,
                                                     TCONV_ACC_REFS(typename S::V)) {
  if (kind == kNone) return;
#define TCONV_CASE(M)                                                                   \
  case M:                                                                               \
    if constexpr (M < (1 << PH))                                                        \
      phase_k<S, CO, PH, MV, M, 0, kSome>(ap, bp, ap, bp, K, ks, ld, TCONV_ARGS, k, k); \
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
  constexpr int L = S::L;
  constexpr int COUNT = CO * PH * MV;
  constexpr int FULL = (1 << PH) - 1;
  static_assert(COUNT <= 12 && MV <= 6, "twelve accumulators, six position vectors at most");
#define TCONV_DECL(i) \
  V r##i = ((i) < COUNT && g.bias) ? S::bcast(g.bias + (i) / (PH * MV)) : S::zero();
  TCONV_ACC12(TCONV_DECL)
#undef TCONV_DECL
  for (std::int64_t p = 0; p < g.pairs; ++p) {
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
      const int ca = cover<S, MV>(alo, ahi, len);
      const int cb = cover<S, MV>(blo, bhi, len);
      if (ca != kAll || (partner >= 0 && cb != kAll)) {
        // The masks only here: a tile the windows cover pays nothing for them.
        __m256i ka[MV], kb[MV];
        window_lanes<S, MV>(alo, ahi, len, ka);
        window_lanes<S, MV>(blo, bhi, len, kb);
        // An edge: each pair on its own, every vector under its masks (lanes in its window and
        // below `len`: the lanes a covered vector would add past them are never stored). The
        // partner's phases are the ones pair A lacks: its accumulators are its own, so the
        // sums keep their order. One call site in a loop: phase_one is inlined once.
        for (int side = 0; side < (partner >= 0 ? 2 : 1); ++side) {
          const bool b = side == 1;
          phase_one<S, CO, PH, MV>(b ? FULL ^ mask : mask, b ? cb : ca, b ? kb : ka, b ? apb : ap,
                                   b ? bpb : bp, g.k, g.a_ks, g.b_ld, TCONV_ARGS);
        }
        continue;
      }
    }
#define TCONV_CASE(M)                                                                             \
  case M:                                                                                         \
    if constexpr (M < (1 << PH)) {                                                                \
      if (partner >= 0) {                                                                         \
        if constexpr (M != FULL)                                                                  \
          phase_k<S, CO, PH, MV, M, FULL ^ M>(ap, bp, apb, bpb, g.k, g.a_ks, g.b_ld, TCONV_ARGS); \
      } else {                                                                                    \
        phase_k<S, CO, PH, MV, M, 0>(ap, bp, ap, bp, g.k, g.a_ks, g.b_ld, TCONV_ARGS);            \
      }                                                                                           \
    }                                                                                             \
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
  alignas(32) T tmp[COUNT * L];
#define TCONV_SPILL(i) \
  if constexpr ((i) < COUNT) S::store(tmp + (i) * L, r##i);
  TCONV_ACC12(TCONV_SPILL)
#undef TCONV_SPILL
  // A whole tile into a contiguous output row (channels_first): the phases interleaved in
  // registers, vector stores.
  if (len == MV * L && g.c_ps == 1 && g.c_ms == PH &&
      (PH == 2 || PH == 4 || (PH == 3 && S::kStore3))) {
    for (int co = 0; co < CO; ++co)
      for (int v = 0; v < MV; ++v) {
        T* out = c + co * g.c_ns + v * L * PH;
        const T* src = tmp + co * PH * MV * L + v * L;
        if constexpr (PH == 2) {
          S::store2(out, S::load(src), S::load(src + MV * L));
        } else if constexpr (PH == 3) {
          S::store3(out, S::load(src), S::load(src + MV * L), S::load(src + 2 * MV * L));
        } else if constexpr (PH == 4) {
          S::store4(out, S::load(src), S::load(src + MV * L), S::load(src + 2 * MV * L),
                    S::load(src + 3 * MV * L));
        }
      }
    return;
  }
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
  for (; m + W <= g.m; m += W) phase_tile<S, CO, PH, MV>(g, m, g.a + m, g.c + m * g.c_ms, W);
  // The tail: as few whole vectors as cover it, read past its end into the row buffer's
  // slack (lanes never stored), or with row windows up to the window's end. Masked loads in
  // the k loop would cost the registers that keep the accumulators out of memory.
  const std::int64_t rest = g.m - m;
  const auto* a = g.a + m;
  auto* c = g.c + m * g.c_ms;
  switch ((rest + S::L - 1) / S::L) {
    case 1:
      phase_tile<S, CO, PH, 1>(g, m, a, c, rest);
      break;
    case 2:
      if constexpr (MV >= 2) phase_tile<S, CO, PH, 2>(g, m, a, c, rest);
      break;
    case 3:
      if constexpr (MV >= 3) phase_tile<S, CO, PH, 3>(g, m, a, c, rest);
      break;
    case 4:
      if constexpr (MV >= 4) phase_tile<S, CO, PH, 4>(g, m, a, c, rest);
      break;
    case 5:
      if constexpr (MV >= 5) phase_tile<S, CO, PH, 5>(g, m, a, c, rest);
      break;
    case 6:
      if constexpr (MV >= 6) phase_tile<S, CO, PH, 6>(g, m, a, c, rest);
      break;
    default:
      break;
  }
  return true;
}

template <class S>
bool phase_gemm(const PhaseCall<typename S::T>& g) {
  switch (g.n * 8 + g.phases) {
    case 1 * 8 + 2:
      return phase_tiles<S, 1, 2, 6>(g);
    case 1 * 8 + 3:
      return phase_tiles<S, 1, 3, 4>(g);
    case 1 * 8 + 4:
      return phase_tiles<S, 1, 4, 3>(g);
    case 2 * 8 + 2:
      return phase_tiles<S, 2, 2, 3>(g);
    case 2 * 8 + 3:
      return phase_tiles<S, 2, 3, 2>(g);
    case 2 * 8 + 4:
      return phase_tiles<S, 2, 4, 1>(g);
    case 3 * 8 + 2:
      return phase_tiles<S, 3, 2, 2>(g);
    case 3 * 8 + 3:
      return phase_tiles<S, 3, 3, 1>(g);
    case 3 * 8 + 4:
      return phase_tiles<S, 3, 4, 1>(g);
    case 4 * 8 + 2:
      return phase_tiles<S, 4, 2, 1>(g);
    case 4 * 8 + 3:
      return phase_tiles<S, 4, 3, 1>(g);
    default:
      return false;
  }
}

}  // namespace

bool phase_f32(const PhaseCall<float>& g) { return phase_gemm<F32>(g); }
bool phase_f64(const PhaseCall<double>& g) { return phase_gemm<F64>(g); }

}  // namespace tconv::kernels::avx2

#undef TCONV_ARGS
#undef TCONV_ACC_REFS
#undef TCONV_ACC12
