// What the AVX2 kernel files (avx2_gemm.cpp, avx2_phase.cpp) share: the vector operations per
// element type, the accumulator list and the row windows' lane masks. Only for files built
// with -mavx2 -mfma. Internal linkage on purpose: each of those translation units gets its own
// copy, so no inline function or instantiation is shared with code built for another ISA
// (docs/design.md, "Per-ISA code and the ODR").
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/microkernel.hpp"

namespace tconv::kernels::avx2 {
namespace {

// ---- per-type vector operations --------------------------------------------------------------

struct F32 {
  using T = float;
  using V = __m256;
  static constexpr int L = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static V bcast(const T* p) { return _mm256_broadcast_ss(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  // Lanes i with base + i < n read memory, the others are zero (and touch nothing).
  // Interleaved stores of PH phase vectors: p[i * PH + ph] = v_ph[i] for i < 8.
  static void store2(T* p, V a, V b) {
    const V lo = _mm256_unpacklo_ps(a, b), hi = _mm256_unpackhi_ps(a, b);
    _mm256_storeu_ps(p, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(p + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
  }
  static void store3(T* p, V a, V b, V c) {
    // Output vector j holds elements 8j..8j+7 of the interleaved sequence; element e comes
    // from phase e % 3, position e / 3. Each source is permuted into place, then blended.
    const __m256i ia0 = _mm256_setr_epi32(0, 0, 0, 1, 0, 0, 2, 0);
    const __m256i ib0 = _mm256_setr_epi32(0, 0, 0, 0, 1, 0, 0, 2);
    const __m256i ic0 = _mm256_setr_epi32(0, 0, 0, 0, 0, 1, 0, 0);
    const __m256i ia1 = _mm256_setr_epi32(0, 3, 0, 0, 4, 0, 0, 5);
    const __m256i ib1 = _mm256_setr_epi32(0, 0, 3, 0, 0, 4, 0, 0);
    const __m256i ic1 = _mm256_setr_epi32(2, 0, 0, 3, 0, 0, 4, 0);
    const __m256i ia2 = _mm256_setr_epi32(0, 0, 6, 0, 0, 7, 0, 0);
    const __m256i ib2 = _mm256_setr_epi32(5, 0, 0, 6, 0, 0, 7, 0);
    const __m256i ic2 = _mm256_setr_epi32(0, 5, 0, 0, 6, 0, 0, 7);
    const V a0 = _mm256_permutevar8x32_ps(a, ia0), b0 = _mm256_permutevar8x32_ps(b, ib0),
            c0 = _mm256_permutevar8x32_ps(c, ic0);
    _mm256_storeu_ps(p, _mm256_blend_ps(_mm256_blend_ps(a0, b0, 0x92), c0, 0x24));
    const V a1 = _mm256_permutevar8x32_ps(a, ia1), b1 = _mm256_permutevar8x32_ps(b, ib1),
            c1 = _mm256_permutevar8x32_ps(c, ic1);
    _mm256_storeu_ps(p + 8, _mm256_blend_ps(_mm256_blend_ps(a1, b1, 0x24), c1, 0x49));
    const V a2 = _mm256_permutevar8x32_ps(a, ia2), b2 = _mm256_permutevar8x32_ps(b, ib2),
            c2 = _mm256_permutevar8x32_ps(c, ic2);
    _mm256_storeu_ps(p + 16, _mm256_blend_ps(_mm256_blend_ps(a2, b2, 0x49), c2, 0x92));
  }
  static constexpr bool kStore3 = true;
  static void store4(T* p, V a, V b, V c, V d) {
    const V t0 = _mm256_unpacklo_ps(a, b), t1 = _mm256_unpackhi_ps(a, b),
            t2 = _mm256_unpacklo_ps(c, d), t3 = _mm256_unpackhi_ps(c, d);
    const V u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
            u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    _mm256_storeu_ps(p, _mm256_permute2f128_ps(u0, u1, 0x20));
    _mm256_storeu_ps(p + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
    _mm256_storeu_ps(p + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
    _mm256_storeu_ps(p + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
  }
  static V load_first(const T* p, int base, std::int64_t n) {
    const __m256i lane =
        _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(base));
    const int lim = n < base + L ? static_cast<int>(n) : base + L;
    return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(lim), lane));
  }
  // The lanes i with lo <= base + i < hi (0 <= lo, hi <= the tile's width), for loadm.
  static __m256i lanes(int base, int lo, int hi) {
    const __m256i lane =
        _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(base));
    return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(lo), lane),
                               _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), lane));
  }
  static V loadm(const T* p, __m256i k) { return _mm256_maskload_ps(p, k); }
};

struct F64 {
  using T = double;
  using V = __m256d;
  static constexpr int L = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static V bcast(const T* p) { return _mm256_broadcast_sd(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static void store2(T* p, V a, V b) {
    const V lo = _mm256_unpacklo_pd(a, b), hi = _mm256_unpackhi_pd(a, b);
    _mm256_storeu_pd(p, _mm256_permute2f128_pd(lo, hi, 0x20));
    _mm256_storeu_pd(p + 4, _mm256_permute2f128_pd(lo, hi, 0x31));
  }
  static void store3(T*, V, V, V) {}
  static constexpr bool kStore3 = false;
  static void store4(T* p, V a, V b, V c, V d) {
    const V t0 = _mm256_unpacklo_pd(a, b), t1 = _mm256_unpackhi_pd(a, b),
            t2 = _mm256_unpacklo_pd(c, d), t3 = _mm256_unpackhi_pd(c, d);
    _mm256_storeu_pd(p, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(p + 4, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(p + 8, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(p + 12, _mm256_permute2f128_pd(t1, t3, 0x31));
  }
  static V load_first(const T* p, int base, std::int64_t n) {
    const __m256i lane = _mm256_add_epi64(_mm256_setr_epi64x(0, 1, 2, 3), _mm256_set1_epi64x(base));
    const long long lim = n < base + L ? static_cast<long long>(n) : base + L;
    return _mm256_maskload_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(lim), lane));
  }
  static __m256i lanes(int base, int lo, int hi) {
    const __m256i lane = _mm256_add_epi64(_mm256_setr_epi64x(0, 1, 2, 3), _mm256_set1_epi64x(base));
    return _mm256_andnot_si256(_mm256_cmpgt_epi64(_mm256_set1_epi64x(lo), lane),
                               _mm256_cmpgt_epi64(_mm256_set1_epi64x(hi), lane));
  }
  static V loadm(const T* p, __m256i k) { return _mm256_maskload_pd(p, k); }
};

// Twelve accumulators as named variables: GCC keeps a loop-carried array of vectors in memory
// (a store per FMA), named variables stay in registers. X(i) applies a step to accumulator i
// when it is in use (i < COUNT); the operands of one k-step are loaded once (CSE).
#define TCONV_ACC12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define TCONV_ACC_REFS(V) \
  V &r0, V &r1, V &r2, V &r3, V &r4, V &r5, V &r6, V &r7, V &r8, V &r9, V &r10, V &r11
#define TCONV_ARGS r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11

// How a pair's row window [lo, hi) (relative to a tile's first row) meets a tile, and so
// which of its input vectors the k loop loads under a mask: not at all (kNone: the pair adds
// only zeros there, skipped), none (kAll: the window covers every lane the unmasked loop
// reads), the first or the last (kFirst, kLast: the window covers the others), or every one
// (kSome).
enum Cover { kNone, kAll, kFirst, kLast, kSome };

// For a tile of `len` positions whose unmasked loop reads MV whole vectors.
template <class S, int MV>
int cover(std::int64_t lo, std::int64_t hi, std::int64_t len) {
  constexpr int L = S::L;
  if (hi <= lo || hi <= 0 || lo >= len) return kNone;
  if (hi >= MV * L) return lo <= 0 ? kAll : lo <= L ? kFirst : kSome;
  return hi >= (MV - 1) * L && lo <= 0 ? kLast : kSome;
}

// k[v]: the lanes of vector v in the window [lo, hi) and below `len`.
template <class S, int MV>
void window_lanes(std::int64_t lo, std::int64_t hi, std::int64_t len, __m256i* k) {
  const int l = static_cast<int>(lo > 0 ? lo : 0);
  const int h = static_cast<int>(hi < len ? (hi > 0 ? hi : 0) : len);
  for (int v = 0; v < MV; ++v) k[v] = S::lanes(v * S::L, l, h);
}

// Whether input vector v of a pair read as `W` says loads under its mask.
constexpr bool masked(int W, int v, int MV) {
  return W == kSome || (W == kFirst && v == 0) || (W == kLast && v == MV - 1);
}

}  // namespace
}  // namespace tconv::kernels::avx2
