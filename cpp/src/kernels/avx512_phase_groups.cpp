// AVX-512F multi-phase position-vector kernel over groups of shifts (tiny C_out).
//
// A PhaseCall with group > 1 lists, for each input row, the shifts of the last dim that some
// phase has a tap at, as `group` consecutive pairs. This kernel runs a group in one pass over
// the input channels: at each channel it loads the row's position vectors at every shift and
// feeds every phase from them, so the lines a step reads serve all the shifts while they are in
// L1. One pass per shift instead (avx512_phase.cpp) streams the row's channels once per
// shift; when the rows are read in place from an NCHW input whose channel planes are a
// multiple of 4 KiB apart, all those channels fall into a few L1 sets and each pass reloads
// them from L2 (FSRCNN x3 with the input in place: 66 against 81 GFLOP/s copied into
// buffers).
//
// The summation order of every output is fixed by the call: input row, then channel, then
// shift; the same whether A is a row buffer or the input itself.
//
// Built with -mavx512f -mavx2 -mfma for this file only; internal linkage except the entry
// points and no standard-library templates, for the same reason as avx2_gemm.cpp.
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "kernels/avx512.hpp"
#include "kernels/avx512_lanes.hpp"
#include "kernels/avx512_shift_pass.hpp"

namespace tconv::kernels::avx512 {
namespace {

// Accumulator i holds channel i / (PH * MV), phase (i / MV) % PH, position vector i % MV.
// MASKED: the input vectors load under per-shift lane masks (a window cuts the tile).
template <class S, int CO, int PH, int MV, bool MASKED>
void groups_tile(const PhaseCall<typename S::T>& g, std::int64_t m0, const typename S::T* a,
                 typename S::T* c, std::int64_t len) {
  using T = typename S::T;
  using V = typename S::V;
  using K = typename S::K;
  constexpr int L = S::L;
  constexpr int COUNT = CO * PH * MV;
  static_assert(COUNT <= kAcc && MV <= 6, "24 accumulators, six position vectors at most");
  const K last = S::first(len - (MV - 1) * L);
  TCONV_TILE_ACCUMULATORS
  const std::int64_t U = g.group, K_ = g.k, ks = g.a_ks, ld = g.b_ld;
  for (std::int64_t p0 = 0; K_ > 0 && p0 < g.pairs; p0 += U) {
    // Per shift: its input row, its phases and their weights, its lanes.
    const T* ap[kMaxGroup];
    const T* bp[kMaxGroup][4];
    int mask[kMaxGroup];
    K km[kMaxGroup][6];
    int used = 0;
    for (std::int64_t u = 0; u < U; ++u) {
      const std::int64_t p = p0 + u;
      int msk = 0;
      const T* b4[4] = {g.b, g.b, g.b, g.b};
      for (int ph = 0; ph < PH; ++ph) {
        const std::int64_t off = g.b_off[p * PH + ph];
        if (off >= 0) {
          b4[ph] = g.b + off;
          msk |= 1 << ph;
        }
      }
      if (g.m_lo) {
        const std::int64_t lo = g.m_lo[p] - m0;
        const std::int64_t hi = (g.m_hi[p] - m0 < len ? g.m_hi[p] - m0 : len);
        if (hi <= lo || hi <= 0 || lo >= len) msk = 0;  // no position of the tile has this shift
        if constexpr (MASKED)
          for (int v = 0; v < MV; ++v)
            km[used][v] = static_cast<K>(S::first(hi - v * L) & ~S::first(lo - v * L));
      }
      if (msk == 0) continue;
      ap[used] = a + g.a_off[p];
      for (int ph = 0; ph < 4; ++ph) bp[used][ph] = b4[ph];
      mask[used] = msk;
      ++used;
    }
    // Channels in chunks of kChunk, each chunk through every shift: the chunk's lines stay in
    // L1 from one shift to the next (kChunk lines per L1 set even when the channel planes
    // alias), and the shift's setup is paid once per chunk.
    for (std::int64_t k0 = 0; k0 < K_; k0 += kChunk) {
      const std::int64_t kn = K_ - k0 < kChunk ? K_ - k0 : kChunk;
      for (int u = 0; u < used; ++u) {
        const T* x = ap[u] + k0 * ks;
        const T* w0 = bp[u][0] + k0 * ld;
        const T* w1 = bp[u][1] + k0 * ld;
        const T* w2 = bp[u][2] + k0 * ld;
        const T* w3 = bp[u][3] + k0 * ld;
        const K* kmu = km[u];
#define TCONV_STEP(i)                                                                      \
  if constexpr ((i) < COUNT && ((M >> (((i) / MV) % PH)) & 1)) {                           \
    constexpr int ph = ((i) / MV) % PH;                                                    \
    constexpr int v = (i) % MV;                                                            \
    const T* wq = ph == 0 ? w0 : ph == 1 ? w1 : ph == 2 ? w2 : w3;                         \
    const V xv = v == 0 ? x0 : v == 1 ? x1 : v == 2 ? x2 : v == 3 ? x3 : v == 4 ? x4 : x5; \
    r##i = S::fma(xv, S::bcast(wq + (i) / (PH * MV)), r##i);                               \
  }
#define TCONV_CASE(MM)                                                                    \
  case MM:                                                                                \
    if constexpr (MM < (1 << PH)) {                                                       \
      constexpr int M = MM;                                                               \
      for (std::int64_t k = 0; k < kn; ++k) {                                             \
        V x0 = S::zero(), x1 = S::zero(), x2 = S::zero(), x3 = S::zero(), x4 = S::zero(), \
          x5 = S::zero();                                                                 \
        TCONV_LOAD_VECTORS                                                                \
        TCONV_ACC24(TCONV_STEP)                                                           \
        x += ks;                                                                          \
        w0 += ld;                                                                         \
        w1 += ld;                                                                         \
        w2 += ld;                                                                         \
        w3 += ld;                                                                         \
      }                                                                                   \
    }                                                                                     \
    break;
        switch (mask[u]) {
          TCONV_MASK_CASES
          default:
            break;
        }
#undef TCONV_CASE
#undef TCONV_STEP
      }
    }
  }
  TCONV_TILE_STORE(c, len)
}

// Whether some shift's window cuts the tile [m0, m0 + len) (and covers some of it).
template <class T>
bool window_cuts(const PhaseCall<T>& g, std::int64_t m0, std::int64_t len) {
  if (!g.m_lo) return false;
  for (std::int64_t p = 0; p < g.pairs; ++p) {
    const std::int64_t lo = g.m_lo[p] - m0, hi = g.m_hi[p] - m0;
    if (lo > 0 || hi < len) return true;
  }
  return false;
}

template <class S, int CO, int PH, int MV>
void groups_tile_any(const PhaseCall<typename S::T>& g, std::int64_t m0, std::int64_t len) {
  const auto* a = g.a + m0;
  auto* c = g.c + m0 * g.c_ms;
  // Doubles keep the masked variant only: half the code for the rarer dtype.
  if constexpr (std::is_same_v<typename S::T, double>)
    groups_tile<S, CO, PH, MV, true>(g, m0, a, c, len);
  else if (window_cuts(g, m0, len))
    groups_tile<S, CO, PH, MV, true>(g, m0, a, c, len);
  else
    groups_tile<S, CO, PH, MV, false>(g, m0, a, c, len);
}

// Accumulators plus one shift's input vectors: at most 30 registers.
template <class S>
bool groups_gemm(const PhaseCall<typename S::T>& g) {
  if (g.group < 1 || g.group > kMaxGroup || g.pairs % g.group != 0) return false;
  return with_shape(g.n, g.phases, [&](auto shape) {
    using Sh = decltype(shape);  // Sh::MV: the widest tile
    auto run = [&](auto tile, std::int64_t m, std::int64_t len) {
      groups_tile_any<S, Sh::CO, Sh::PH, decltype(tile)::MV>(g, m, len);
    };
    for_each_tile<S, Sh::CO, Sh::PH, Sh::MV>(g, run);
    return true;
  });
}

}  // namespace

bool groups_f32(const PhaseCall<float>& g) { return groups_gemm<F32>(g); }
bool groups_f64(const PhaseCall<double>& g) { return groups_gemm<F64>(g); }

}  // namespace tconv::kernels::avx512

#undef TCONV_LOAD
#undef TCONV_PIN
#undef TCONV_LOAD_VECTORS
#undef TCONV_MASK_CASES
#undef TCONV_ACC24
#undef TCONV_TILE_ACC_DECL
#undef TCONV_TILE_ACCUMULATORS
#undef TCONV_TILE_ACC_SPILL
#undef TCONV_TILE_STORE
