// AVX-512F grid kernel (tiny C_out): every row and column phase of an input row's
// positions at once, over groups of shifts read in place, like the shift-group kernel of
// avx512_phase_groups.cpp (whose pass over a shift's vectors it shares, avx512_shift_pass.hpp).
//
// Templates with internal linkage, included only by avx512_grid_f32.cpp and
// avx512_grid_f64.cpp: one translation unit per dtype, so each gets its own optimisation
// level and both cores compile them at once.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "kernels/avx512.hpp"
#include "kernels/avx512_lanes.hpp"
#include "kernels/avx512_shift_pass.hpp"

namespace tconv::kernels::avx512 {
namespace {

// acc + x * (*w in every lane); FOLD: the broadcast folded into the FMA's memory operand,
// once per FMA (GCC broadcasts a weight used twice into a register once).
template <class S, bool FOLD>
typename S::V fma_bcast(typename S::V x, const typename S::T* w, typename S::V acc) {
  if constexpr (!FOLD)
    return S::fma(x, S::bcast(w), acc);
  else if constexpr (sizeof(typename S::T) == 4)
    __asm__("vfmadd231ps %[w]%{1to16%}, %[x], %[acc]" : [acc] "+v"(acc) : [x] "v"(x), [w] "m"(*w));
  else
    __asm__("vfmadd231pd %[w]%{1to8%}, %[x], %[acc]" : [acc] "+v"(acc) : [x] "v"(x), [w] "m"(*w));
  return acc;
}

template <int N>
struct RYC {
  static constexpr int value = N;
};

// The tile function's pass over a group of pairs (macros, as they name its locals).
#define TCONV_STEP(i)                                                                           \
  if constexpr ((i) < COUNT && ((i) / MV) % PH == PHI && ((M >> ((i) / (CO * PH * MV))) & 1)) { \
    constexpr int ry = (i) / (CO * PH * MV);                                                    \
    constexpr int co = ((i) / (PH * MV)) % CO;                                                  \
    constexpr int v = (i) % MV;                                                                 \
    const V xv = v == 0 ? x0 : v == 1 ? x1 : v == 2 ? x2 : v == 3 ? x3 : v == 4 ? x4 : x5;      \
    r##i = fma_bcast < S, FOLD && !STEPS > (xv, w + (ry * PH + PHI) * CO + co, r##i);           \
  }
#define TCONV_PHASE(ph)       \
  if constexpr ((ph) < PH) {  \
    constexpr int PHI = (ph); \
    if (cm & (1 << (ph))) {   \
      TCONV_ACC24(TCONV_STEP) \
    }                         \
  }
#define TCONV_SHIFT_STEP                                                              \
  {                                                                                   \
    V x0 = S::zero(), x1 = S::zero(), x2 = S::zero(), x3 = S::zero(), x4 = S::zero(), \
      x5 = S::zero();                                                                 \
    TCONV_LOAD_VECTORS                                                                \
    TCONV_PHASE(0)                                                                    \
    TCONV_PHASE(1)                                                                    \
    TCONV_PHASE(2)                                                                    \
    TCONV_PHASE(3)                                                                    \
  }
// Few FMAs per loaded vector (C_out x vectors <= 2): at each k, every shift in turn. Else a
// shift at a time over a few k (each vector feeds enough independent FMAs). Either way the
// inner loop runs over one group (gr, its row phases the case) at k or from k0.
#define TCONV_CASE_STEPS(MM)              \
  case MM:                                \
    if constexpr (MM < (1 << RY)) {       \
      constexpr int M = MM;               \
      for (int u = 0; u < gr.used; ++u) { \
        const T* x = gr.ap[u] + k * ks;   \
        const T* w = gr.bp[u] + k * ld;   \
        const K* kmu = gr.km[u];          \
        const int cm = gr.cmask[u];       \
        TCONV_SHIFT_STEP                  \
      }                                   \
    }                                     \
    break;
#define TCONV_CASE_CHUNK(MM)                    \
  case MM:                                      \
    if constexpr (MM < (1 << RY)) {             \
      constexpr int M = MM;                     \
      for (int u = 0; u < gr.used; ++u) {       \
        const T* x = gr.ap[u] + k0 * ks;        \
        const T* w = gr.bp[u] + k0 * ld;        \
        const K* kmu = gr.km[u];                \
        const int cm = gr.cmask[u];             \
        for (std::int64_t k = 0; k < kn; ++k) { \
          TCONV_SHIFT_STEP                      \
          x += ks;                              \
          w += ld;                              \
        }                                       \
      }                                         \
    }                                           \
    break;

// The groups a grid tile runs in one pass over k: so a group whose shifts feed few phases
// (an input row at the kernel's edge: few accumulators, short FMA chains) interleaves with
// groups feeding them all, rather than waiting on its own chains and loop overhead.
constexpr int kGridBatch = 4;

// A group of pairs (one input row at its column shifts) as a tile reads it: the pairs whose
// window meets the tile, [0, used), and the group's row phases.
template <class S>
struct GridGroup {
  const typename S::T* ap[kMaxGroup];
  const typename S::T* bp[kMaxGroup];
  int cmask[kMaxGroup];
  typename S::K km[kMaxGroup][6];
  int used = 0, row_mask = 0;
};

// Group p0's pairs for the tile of `len` positions from m0 (with lane masks, where MASKED);
// and its share of the next call's first row to fetch.
template <class S, int MV, bool MASKED>
void grid_group(const GridCall<typename S::T>& g, std::int64_t p0, std::int64_t m0,
                std::int64_t len, GridGroup<S>& gr) {
  using T = typename S::T;
  using K = typename S::K;
  constexpr int L = S::L;
  const std::int64_t U = g.group, K_ = g.k;
  gr.used = 0;
  gr.row_mask = static_cast<int>(g.row_mask[p0]);  // the same for the whole group
  for (std::int64_t u = 0; u < U; ++u) {
    const std::int64_t p = p0 + u;
    const std::int64_t lo = g.m_lo[p] - m0;
    const std::int64_t hi = (g.m_hi[p] - m0 < len ? g.m_hi[p] - m0 : len);
    if (hi <= lo || hi <= 0 || lo >= len) continue;  // no position of the tile has this shift
    if constexpr (MASKED)
      for (int v = 0; v < MV; ++v)
        gr.km[gr.used][v] = static_cast<K>(S::first(hi - v * L) & ~S::first(lo - v * L));
    gr.ap[gr.used] = g.a + m0 + g.a_off[p];
    gr.bp[gr.used] = g.b + g.b_off[p];
    gr.cmask[gr.used] = static_cast<int>(g.col_mask[p]);
    ++gr.used;
  }
  if (g.prefetch) {
    // The next call's first row, a share per group (input row): all of it at once would fill
    // the miss queue and stall the loads the FMAs wait for.
    const std::int64_t groups = g.pairs / U, gi = p0 / U;
    const std::int64_t c0 = K_ * gi / groups, c1 = K_ * (gi + 1) / groups;
    constexpr std::int64_t kLine = 64 / static_cast<std::int64_t>(sizeof(T));
    const T* pf = g.prefetch + m0;
    for (std::int64_t ci = c0; ci < c1; ++ci)
      for (std::int64_t e = 0; e < len + L; e += kLine)
        _mm_prefetch(reinterpret_cast<const char*>(pf + ci * g.a_ks + e), _MM_HINT_T2);
  }
}

// Every row and column phase of an input row's positions at once (GridCall). Accumulator i
// holds output row phase ry = i / (CO * PH * MV), channel (i / (PH * MV)) % CO, column phase
// (i / MV) % PH, position vector i % MV. Up to kGridBatch groups of pairs (each an input row
// at its column shifts) share one pass over k that loads each shift's vectors in turn: a
// group's row phases are a template case, a shift's column phases a branch that goes the same
// way at every step and in every group (so predicted).
template <class S, int CO, int RY, int PH, int MV, bool MASKED, bool FOLD>
void grid_tile(const GridCall<typename S::T>& g, std::int64_t m0, std::int64_t len) {
  using T = typename S::T;
  using V = typename S::V;
  using K = typename S::K;
  constexpr int L = S::L;
  constexpr int COUNT = CO * RY * PH * MV;
  static_assert(COUNT <= kAcc && MV <= 6, "24 accumulators, six position vectors at most");
  // Few FMAs per loaded vector: the pass over k steps through every shift at each k (see
  // TCONV_CASE_STEPS). Measured: folding the weights' broadcasts into the FMAs pays in the
  // other case only, and only on cores that split a 512-bit FMA in two (FOLD, see
  // avx512_gemm.cpp; docs/design.md).
  constexpr bool STEPS = CO * MV <= 2;
  const K last = S::first(len - (MV - 1) * L);
#define TCONV_ROWS_ACC_DECL(i) \
  V r##i = ((i) < COUNT && g.bias) ? S::bcast(g.bias + ((i) / (PH * MV)) % CO) : S::zero();
  TCONV_ACC24(TCONV_ROWS_ACC_DECL)
#undef TCONV_ROWS_ACC_DECL
  const std::int64_t U = g.group, K_ = g.k, ks = g.a_ks, ld = g.b_ld;
  GridGroup<S> batch[kGridBatch];
  for (std::int64_t p0 = 0; K_ > 0 && p0 < g.pairs; p0 += U * kGridBatch) {
    int groups = 0;
    for (int b = 0; b < kGridBatch && p0 + b * U < g.pairs; ++b) {
      grid_group<S, MV, MASKED>(g, p0 + b * U, m0, len, batch[groups]);
      if (batch[groups].used > 0) ++groups;
    }
    if constexpr (STEPS) {
      for (std::int64_t k = 0; k < K_; ++k)
        for (int b = 0; b < groups; ++b) {
          const GridGroup<S>& gr = batch[b];
#define TCONV_CASE(MM) TCONV_CASE_STEPS(MM)
          switch (gr.row_mask) {
            TCONV_MASK_CASES
            default:
              break;
          }
        }
    } else {
      for (std::int64_t k0 = 0; k0 < K_; k0 += kChunk) {
        const std::int64_t kn = K_ - k0 < kChunk ? K_ - k0 : kChunk;
        for (int b = 0; b < groups; ++b) {
          const GridGroup<S>& gr = batch[b];
#undef TCONV_CASE
#define TCONV_CASE(MM) TCONV_CASE_CHUNK(MM)
          switch (gr.row_mask) {
            TCONV_MASK_CASES
            default:
              break;
          }
        }
      }
    }
#undef TCONV_CASE
  }
  constexpr int COUNT_ROW = CO * PH * MV;
  alignas(64) T tmp[COUNT * L];
#define TCONV_ROWS_SPILL(i) \
  if constexpr ((i) < COUNT) S::store(tmp + (i) * L, r##i);
  TCONV_ACC24(TCONV_ROWS_SPILL)
#undef TCONV_ROWS_SPILL
  PhaseCall<T> out{};
  out.c_ms = g.c_ms;
  out.c_ps = g.c_ps;
  out.c_ns = g.c_ns;
  const std::int64_t outputs = g.outputs - m0 * PH;
  for (int ry = 0; ry < RY && ry < g.rows_valid && outputs > 0; ++ry)
    store_tile<S, CO, PH, MV>(out, tmp + ry * COUNT_ROW * L, g.c + ry * g.c_rs + m0 * g.c_ms, len,
                              outputs);
}

#undef TCONV_CASE_CHUNK
#undef TCONV_CASE_STEPS
#undef TCONV_SHIFT_STEP
#undef TCONV_PHASE
#undef TCONV_STEP

template <class T>
bool grid_window_cuts(const GridCall<T>& g, std::int64_t m0, std::int64_t len) {
  for (std::int64_t p = 0; p < g.pairs; ++p)
    if (g.m_lo[p] - m0 > 0 || g.m_hi[p] - m0 < len) return true;
  return false;
}

// (channels, row phases, column phases) -> the widest tile whose accumulators fit in 24.
template <class Run>
bool with_grid_shape(std::int64_t n, std::int64_t ry, std::int64_t ph, Run run) {
#define TCONV_SHAPE(N, RYN, PHN)                                          \
  if (n == (N) && ry == (RYN) && ph == (PHN)) {                           \
    constexpr int most = 24 / ((N) * (RYN) * (PHN));                      \
    return run(Shape<(N), (PHN), (most > 6 ? 6 : most)>{}, RYC<(RYN)>{}); \
  }
  TCONV_SHAPE(1, 2, 2)
  TCONV_SHAPE(1, 2, 3)
  TCONV_SHAPE(1, 2, 4)
  TCONV_SHAPE(1, 3, 2)
  TCONV_SHAPE(1, 3, 3)
  TCONV_SHAPE(1, 3, 4)
  TCONV_SHAPE(1, 4, 2)
  TCONV_SHAPE(1, 4, 3)
  TCONV_SHAPE(1, 4, 4)
  TCONV_SHAPE(2, 2, 2)
  TCONV_SHAPE(2, 2, 3)
  TCONV_SHAPE(2, 2, 4)
  TCONV_SHAPE(2, 3, 2)
  TCONV_SHAPE(2, 3, 3)
  TCONV_SHAPE(2, 3, 4)
  TCONV_SHAPE(2, 4, 2)
  TCONV_SHAPE(2, 4, 3)
  TCONV_SHAPE(3, 2, 2)
  TCONV_SHAPE(3, 2, 3)
  TCONV_SHAPE(3, 2, 4)
  TCONV_SHAPE(3, 3, 2)
  TCONV_SHAPE(3, 4, 2)
  TCONV_SHAPE(4, 2, 2)
  TCONV_SHAPE(4, 2, 3)
  TCONV_SHAPE(4, 3, 2)
#undef TCONV_SHAPE
  return false;
}

template <class S, bool FOLD>
bool grid_gemm(const GridCall<typename S::T>& g) {
  if (g.group < 1 || g.group > kMaxGroup || g.pairs % g.group != 0 || !g.m_lo || !g.m_hi)
    return false;
  return with_grid_shape(g.n, g.row_phases, g.phases, [&](auto shape, auto ry) {
    using Sh = decltype(shape);  // Sh::MV: the widest tile
    constexpr int RY = decltype(ry)::value;
    auto run = [&](auto tile, std::int64_t m, std::int64_t len) {
      constexpr int MV = decltype(tile)::MV;
      // Doubles keep the masked variant only: half the code for the rarer dtype.
      if constexpr (std::is_same_v<typename S::T, double>)
        grid_tile<S, Sh::CO, RY, Sh::PH, MV, true, FOLD>(g, m, len);
      else if (grid_window_cuts(g, m, len))
        grid_tile<S, Sh::CO, RY, Sh::PH, MV, true, FOLD>(g, m, len);
      else
        grid_tile<S, Sh::CO, RY, Sh::PH, MV, false, FOLD>(g, m, len);
    };
    for_each_tile<S, Sh::CO, Sh::PH, Sh::MV>(g, run);
    return true;
  });
}

}  // namespace
}  // namespace tconv::kernels::avx512
