// What the AVX-512 position-vector kernels (avx512_phase.cpp, avx512_phase_groups.cpp) share: the
// lane operations per element type, the accumulator list and the store of a finished tile.
// Only for files built with -mavx512f. Internal linkage on purpose: each of those translation
// units gets its own copy, so no inline function or instantiation is shared with code built
// for another ISA (docs/design.md, "Per-ISA code and the ODR").
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/microkernel.hpp"

namespace tconv::kernels::avx512 {
namespace {

struct F32Lanes {
  using T = float;
  using V = __m512;
  using K = __mmask16;
  static constexpr int L = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static V loadm(const T* p, K k) { return _mm512_maskz_loadu_ps(k, p); }
  static V bcast(const T* p) { return _mm512_set1_ps(*p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
  static void storem(T* p, K k, V v) { _mm512_mask_storeu_ps(p, k, v); }
  // Lanes below n (none for n <= 0, all for n >= L).
  static K first(std::int64_t n) {
    return n >= L ? static_cast<K>(0xFFFF) : static_cast<K>((1u << (n < 0 ? 0 : n)) - 1u);
  }
  // Lanes i with lo <= i < hi (any lo, hi).
  static K range(std::int64_t lo, std::int64_t hi) {
    return static_cast<K>(first(hi) & ~first(lo));
  }
  // Lane e of the result: v[idx[e]] where mask has lane e, else the lane of `into`.
  static V place(V into, K mask, const std::int64_t* idx, V v) {
    const __m512i i = _mm512_setr_epi32(
        static_cast<int>(idx[0]), static_cast<int>(idx[1]), static_cast<int>(idx[2]),
        static_cast<int>(idx[3]), static_cast<int>(idx[4]), static_cast<int>(idx[5]),
        static_cast<int>(idx[6]), static_cast<int>(idx[7]), static_cast<int>(idx[8]),
        static_cast<int>(idx[9]), static_cast<int>(idx[10]), static_cast<int>(idx[11]),
        static_cast<int>(idx[12]), static_cast<int>(idx[13]), static_cast<int>(idx[14]),
        static_cast<int>(idx[15]));
    return _mm512_mask_permutexvar_ps(into, mask, i, v);
  }
};

struct F64Lanes {
  using T = double;
  using V = __m512d;
  using K = __mmask8;
  static constexpr int L = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static V loadm(const T* p, K k) { return _mm512_maskz_loadu_pd(k, p); }
  static V bcast(const T* p) { return _mm512_set1_pd(*p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
  static void storem(T* p, K k, V v) { _mm512_mask_storeu_pd(p, k, v); }
  static K first(std::int64_t n) {
    return n >= L ? static_cast<K>(0xFF) : static_cast<K>((1u << (n < 0 ? 0 : n)) - 1u);
  }
  static K range(std::int64_t lo, std::int64_t hi) {
    return static_cast<K>(first(hi) & ~first(lo));
  }
  static V place(V into, K mask, const std::int64_t* idx, V v) {
    const __m512i i =
        _mm512_setr_epi64(idx[0], idx[1], idx[2], idx[3], idx[4], idx[5], idx[6], idx[7]);
    return _mm512_mask_permutexvar_pd(into, mask, i, v);
  }
};

// Accumulators as named variables (GCC keeps a loop-carried array of vectors in memory, a
// store per FMA); X(i) applies a step to accumulator i when it is in use. A tile holds CO
// channels x PH phases x MV position vectors: accumulator i is channel i / (PH * MV), phase
// (i / MV) % PH, position vector i % MV.
// clang-format off
#define TCONV_ACC24(X)                                                                      \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16) \
  X(17) X(18) X(19) X(20) X(21) X(22) X(23)
// clang-format on

constexpr int kAcc = 24;

// Inside a tile function with S, CO, PH, MV, COUNT = CO * PH * MV and the call g in scope: the
// accumulators r0..r23, each starting from its channel's bias; and, at the end, their spill and
// store to the output at c (macros, since they name the tile's local accumulators).
#define TCONV_TILE_ACC_DECL(i) \
  V r##i = ((i) < COUNT && g.bias) ? S::bcast(g.bias + (i) / (PH * MV)) : S::zero();
#define TCONV_TILE_ACCUMULATORS TCONV_ACC24(TCONV_TILE_ACC_DECL)
#define TCONV_TILE_ACC_SPILL(i) \
  if constexpr ((i) < COUNT) S::store(tmp + (i) * S::L, r##i);
#define TCONV_TILE_STORE(c, len)                 \
  {                                              \
    alignas(64) typename S::T tmp[COUNT * S::L]; \
    TCONV_ACC24(TCONV_TILE_ACC_SPILL)            \
    store_tile<S, CO, PH, MV>(g, tmp, c, len);   \
  }

// Where each lane of an interleaved output vector comes from: output vector j of a group of PH
// (the PH * L outputs of L positions) has lane e = output j * L + e, phase (j * L + e) % PH,
// position (j * L + e) / PH.
template <int L, int PH>
struct Interleave {
  std::int64_t pos[PH][L];
  unsigned mask[PH][PH];  // [j][ph]: the lanes of output vector j taken from phase ph
  constexpr Interleave() : pos(), mask() {
    for (int j = 0; j < PH; ++j)
      for (int e = 0; e < L; ++e) {
        pos[j][e] = (j * L + e) / PH;
        mask[j][(j * L + e) % PH] |= 1u << e;
      }
  }
};

// Stores a finished tile of `len` positions, its accumulators spilled to tmp in their order,
// to the call's output at c (the tile's first position).
// Outputs (position * PH + phase, from the tile's first) at or past `outputs` are not stored:
// the last positions of a row may lack some phases. Negative: all of the tile's positions.
template <class S, int CO, int PH, int MV>
void store_tile(const PhaseCall<typename S::T>& g, const typename S::T* tmp, typename S::T* c,
                std::int64_t len, std::int64_t outputs = -1) {
  using T = typename S::T;
  using V = typename S::V;
  using K = typename S::K;
  constexpr int L = S::L;
  if (outputs < 0 || outputs > len * PH) outputs = len * PH;
  // A contiguous output row (channels_first): the phases interleaved in registers, the
  // outputs past the tile's positions masked off.
  if (g.c_ps == 1 && g.c_ms == PH) {
    static constexpr Interleave<L, PH> il;
    for (int co = 0; co < CO; ++co)
      for (int v = 0; v < MV; ++v) {
        T* out = c + co * g.c_ns + v * L * PH;
        const T* src = tmp + co * PH * MV * L + v * L;
        V s[PH];
        for (int ph = 0; ph < PH; ++ph) s[ph] = S::load(src + ph * MV * L);
        for (int j = 0; j < PH; ++j) {
          V o = S::zero();
          for (int ph = 0; ph < PH; ++ph)
            o = S::place(o, static_cast<K>(il.mask[j][ph]), il.pos[j], s[ph]);
          const std::int64_t done = (v * PH + j) * L;
          if (done + L <= outputs) {
            S::store(out + j * L, o);
          } else if (done < outputs) {
            S::storem(out + j * L, S::first(outputs - done), o);
          }
        }
      }
    return;
  }
  for (int co = 0; co < CO; ++co)
    for (int ph = 0; ph < PH; ++ph) {
      T* out = c + co * g.c_ns + ph * g.c_ps;
      const T* src = tmp + (co * PH + ph) * MV * L;
      const std::int64_t n = outputs > ph ? (outputs - ph + PH - 1) / PH : 0;
      for (std::int64_t r = 0; r < n; ++r) out[r * g.c_ms] = src[r];
    }
}

// A tile shape as a type, for the generic lambdas below (no standard-library templates here).
template <int CO_, int PH_, int MV_>
struct Shape {
  static constexpr int CO = CO_, PH = PH_, MV = MV_;
};

// Runs `tile(Shape<CO, PH, MV>{}, m0, len)` over a call's row of g.m positions: its vectors
// spread evenly over the fewest tiles of at most MOST, so 5 vectors of a 4-vector kind run as
// 3 + 2, never 4 + 1 (a 1-vector tile has too few FMA chains).
template <class S, int CO, int PH, int MOST, class Call, class Tile>
void for_each_tile(const Call& g, Tile tile) {
  constexpr int L = S::L;
  const std::int64_t vectors = (g.m + L - 1) / L;
  const std::int64_t tiles = (vectors + MOST - 1) / MOST;
  std::int64_t v0 = 0;
  for (std::int64_t t = 0; t < tiles; ++t) {
    const std::int64_t mv = (vectors - v0 + (tiles - t) - 1) / (tiles - t);
    const std::int64_t m = v0 * L;
    const std::int64_t len = (v0 + mv) * L <= g.m ? mv * L : g.m - m;
    switch (mv) {
      case 1:
        tile(Shape<CO, PH, 1>{}, m, len);
        break;
      case 2:
        if constexpr (MOST >= 2) tile(Shape<CO, PH, 2>{}, m, len);
        break;
      case 3:
        if constexpr (MOST >= 3) tile(Shape<CO, PH, 3>{}, m, len);
        break;
      case 4:
        if constexpr (MOST >= 4) tile(Shape<CO, PH, 4>{}, m, len);
        break;
      case 5:
        if constexpr (MOST >= 5) tile(Shape<CO, PH, 5>{}, m, len);
        break;
      case 6:
        if constexpr (MOST >= 6) tile(Shape<CO, PH, 6>{}, m, len);
        break;
      default:
        break;
    }
    v0 += mv;
  }
}

// Calls `run(Shape<CO, PH, MOST>{})` for the call's output channels and phases, with MOST the
// widest tile (in position vectors) whose accumulators fit: at most 24 of them, and with the
// input vectors of two pairs at most 28 registers (the rest hold broadcasts). False for a
// shape without a kernel.
template <class Run>
bool with_shape(std::int64_t n, std::int64_t phases, Run run) {
  switch (n * 8 + phases) {
    case 1 * 8 + 2:
      return run(Shape<1, 2, 6>{});
    case 1 * 8 + 3:
      return run(Shape<1, 3, 5>{});
    case 1 * 8 + 4:
      return run(Shape<1, 4, 4>{});
    case 2 * 8 + 2:
      return run(Shape<2, 2, 4>{});
    case 2 * 8 + 3:
      return run(Shape<2, 3, 3>{});
    case 2 * 8 + 4:
      return run(Shape<2, 4, 2>{});
    case 3 * 8 + 2:
      return run(Shape<3, 2, 3>{});
    case 3 * 8 + 3:
      return run(Shape<3, 3, 2>{});
    case 3 * 8 + 4:
      return run(Shape<3, 4, 2>{});
    case 4 * 8 + 2:
      return run(Shape<4, 2, 3>{});
    case 4 * 8 + 3:
      return run(Shape<4, 3, 2>{});
    case 4 * 8 + 4:
      return run(Shape<4, 4, 1>{});
    default:
      return false;
  }
}

}  // namespace
}  // namespace tconv::kernels::avx512
