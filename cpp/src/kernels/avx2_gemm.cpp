// AVX2 + FMA micro-kernels: broadcast outer-product GEMM tiles over a batch of (A, B) pairs.
//
// Built with -mavx2 -mfma for this file only. Everything here has internal linkage and uses no
// standard-library templates, so no code generated with these flags can be picked by the linker
// for a baseline caller (nm on this object shows no weak symbols).
#include <immintrin.h>

#include "kernels/avx2.hpp"
#include "kernels/window_rows.hpp"

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
    const __m256i lane = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                          _mm256_set1_epi32(base));
    const int lim = n < base + L ? static_cast<int>(n) : base + L;
    return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(lim), lane));
  }
  // The lanes i with lo <= base + i < hi (0 <= lo, hi <= the tile's width), for loadm.
  static __m256i lanes(int base, int lo, int hi) {
    const __m256i lane = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                          _mm256_set1_epi32(base));
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
    const __m256i lane = _mm256_add_epi64(_mm256_setr_epi64x(0, 1, 2, 3),
                                          _mm256_set1_epi64x(base));
    const long long lim = n < base + L ? static_cast<long long>(n) : base + L;
    return _mm256_maskload_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(lim), lane));
  }
  static __m256i lanes(int base, int lo, int hi) {
    const __m256i lane = _mm256_add_epi64(_mm256_setr_epi64x(0, 1, 2, 3),
                                          _mm256_set1_epi64x(base));
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

// For a tile of `rows` rows whose unmasked loop reads MV whole vectors.
template <class S, int MV>
int cover(std::int64_t lo, std::int64_t hi, std::int64_t rows) {
  constexpr int L = S::L;
  if (hi <= lo || hi <= 0 || lo >= rows) return kNone;
  if (hi >= MV * L) return lo <= 0 ? kAll : lo <= L ? kFirst : kSome;
  return hi >= (MV - 1) * L && lo <= 0 ? kLast : kSome;
}

// k[v]: the lanes of vector v in the window [lo, hi) and below `rows`.
template <class S, int MV>
void window_lanes(std::int64_t lo, std::int64_t hi, std::int64_t rows, __m256i* k) {
  const int l = static_cast<int>(lo > 0 ? lo : 0);
  const int h = static_cast<int>(hi < rows ? (hi > 0 ? hi : 0) : rows);
  for (int v = 0; v < MV; ++v) k[v] = S::lanes(v * S::L, l, h);
}

// Whether input vector v of a pair read as `W` says loads under its mask.
constexpr bool masked(int W, int v, int MV) {
  return W == kSome || (W == kFirst && v == 0) || (W == kLast && v == MV - 1);
}

// ---- channel-vector kernel: MR output positions x 2 vectors of output channels ----------------
// Accumulator i holds row i / 2, channel vector i % 2.

constexpr int kMR = 6;


template <class S, int MR>
void channel_tile(const GemmCall<typename S::T>& g, std::int64_t m0, const typename S::T* a,
                  typename S::T* c) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  constexpr int NR = 2 * L;
  constexpr int COUNT = 2 * MR;
  // The output lines are fetched for writing now, while the K loop runs: a layer whose output
  // does not fit in cache otherwise stalls on the store misses of each tile.
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * g.c_ms), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * g.c_ms + (NR - 1) * g.c_ns), _MM_HINT_T0);
  }
  alignas(32) T init[NR];
  for (int j = 0; j < NR; ++j) init[j] = (g.bias && j < g.n) ? g.bias[j] : T(0);
#define TCONV_DECL(i) V r##i = S::load(init + ((i) % 2) * L);
  TCONV_ACC12(TCONV_DECL)
#undef TCONV_DECL
  const std::int64_t ks = g.a_ks, ms = g.a_ms, K = g.k;
  for (std::int64_t p = 0; p < g.pairs; ++p) {
    const T* ap = a + g.a_off[p];
    const T* bp = g.b + g.b_off[p];
    const unsigned rows = window_rows<MR>(g, p, m0);
    if (rows == 0) continue;
    if (rows != (1u << MR) - 1u) {
      // Some rows' taps fall past the input's border: only the others read and accumulate.
      for (std::int64_t k = 0; k < K; ++k) {
        const V w0 = S::load(bp);
        const V w1 = S::load(bp + L);
#define TCONV_STEP(i)                                                        \
  if constexpr ((i) < COUNT) {                                               \
    if (rows >> ((i) / 2) & 1u)                                              \
      r##i = S::fma(S::bcast(ap + ((i) / 2) * ms), (i) % 2 ? w1 : w0, r##i); \
  }
        TCONV_ACC12(TCONV_STEP)
#undef TCONV_STEP
        ap += ks;
        bp += NR;
      }
      continue;
    }
    for (std::int64_t k = 0; k < K; ++k) {
      const V w0 = S::load(bp);
      const V w1 = S::load(bp + L);
#define TCONV_STEP(i)                                                   \
  if constexpr ((i) < COUNT) {                                          \
    r##i = S::fma(S::bcast(ap + ((i) / 2) * ms), (i) % 2 ? w1 : w0, r##i); \
  }
      TCONV_ACC12(TCONV_STEP)
#undef TCONV_STEP
      ap += ks;
      bp += NR;
    }
  }
  if (g.c_ns == 1 && g.n == NR) {
#define TCONV_STORE(i) \
  if constexpr ((i) < COUNT) S::store(c + ((i) / 2) * g.c_ms + ((i) % 2) * L, r##i);
    TCONV_ACC12(TCONV_STORE)
#undef TCONV_STORE
    return;
  }
  alignas(32) T tmp[COUNT * L];
#define TCONV_SPILL(i) \
  if constexpr ((i) < COUNT) S::store(tmp + (i) * L, r##i);
  TCONV_ACC12(TCONV_SPILL)
#undef TCONV_SPILL
  for (int m = 0; m < MR; ++m) {
    T* row = c + m * g.c_ms;
    for (std::int64_t j = 0; j < g.n; ++j) row[j * g.c_ns] = tmp[m * NR + j];
  }
}

template <class S>
void channel_rows(const GemmCall<typename S::T>& g, std::int64_t m, std::int64_t rows) {
  const auto* a = g.a + m * g.a_ms;
  auto* c = g.c + m * g.c_ms;
  switch (rows) {
    case 6: channel_tile<S, 6>(g, m, a, c); break;
    case 5: channel_tile<S, 5>(g, m, a, c); break;
    case 4: channel_tile<S, 4>(g, m, a, c); break;
    case 3: channel_tile<S, 3>(g, m, a, c); break;
    case 2: channel_tile<S, 2>(g, m, a, c); break;
    case 1: channel_tile<S, 1>(g, m, a, c); break;
    default: break;
  }
}

template <class S>
void channel_gemm(const GemmCall<typename S::T>& g) {
  // A 1- or 2-row tile keeps 2-4 FMA chains busy, too few to hide the FMA latency: a remainder
  // of 1-2 rows is merged with the last full tile and the pair split evenly (8 = 4 + 4).
  std::int64_t full = g.m / kMR, rest = g.m % kMR;
  if (rest > 0 && rest < 3 && full > 0) {
    --full;
    rest += kMR;
  }
  std::int64_t m = 0;
  for (std::int64_t t = 0; t < full; ++t, m += kMR)
    channel_tile<S, kMR>(g, m, g.a + m * g.a_ms, g.c + m * g.c_ms);
  if (rest > kMR) {
    const std::int64_t first = (rest + 1) / 2;
    channel_rows<S>(g, m, first);
    m += first;
    rest -= first;
  }
  channel_rows<S>(g, m, rest);
}

// ---- spatial-vector kernel: MV vectors of consecutive output positions x CO channels ---------
// Accumulator i holds channel i / MV, position vector i % MV.

// One masked k-step's FMAs for position vector VV: its input vector is loaded once (a masked
// load does not fold into the FMA as a plain one does) and the channel broadcasts are shared
// across the vectors.
template <class S, int CO, int MV, int VV>
__attribute__((always_inline)) inline void spatial_mstep(typename S::V av,
                                                         const typename S::T* bp,
                                                         TCONV_ACC_REFS(typename S::V)) {
  constexpr int COUNT = CO * MV;
#define TCONV_STEP(i) \
  if constexpr ((i) < COUNT && (i) % MV == VV) r##i = S::fma(av, S::bcast(bp + (i) / MV), r##i);
  TCONV_ACC12(TCONV_STEP)
#undef TCONV_STEP
}

// A pair whose window covers the tile's lanes in part, its vectors loaded as W says (the
// masks mk: window_lanes).
template <class S, int CO, int MV, int W>
__attribute__((always_inline)) inline void spatial_masked(const typename S::T* ap,
                                                          const typename S::T* bp,
                                                          std::int64_t K, std::int64_t ks,
                                                          std::int64_t ld, const __m256i* mk,
                                                          TCONV_ACC_REFS(typename S::V)) {
  constexpr int L = S::L;
  for (std::int64_t k = 0; k < K; ++k) {
#define TCONV_VEC(v)                                                                     \
  if constexpr ((v) < MV)                                                                \
    spatial_mstep<S, CO, MV, (v)>(masked(W, (v), MV)                                     \
                                      ? S::loadm(ap + (v) * L, mk[(v) < MV ? (v) : 0])   \
                                      : S::load(ap + (v) * L),                           \
                                  bp, TCONV_ARGS);
    TCONV_VEC(0) TCONV_VEC(1) TCONV_VEC(2) TCONV_VEC(3) TCONV_VEC(4) TCONV_VEC(5) TCONV_VEC(6)
    TCONV_VEC(7)
#undef TCONV_VEC
    ap += ks;
    bp += ld;
  }
}

// m0: the tile's first row (where the row windows are read).
template <class S, int CO, int MV, bool PARTIAL, bool WIN>
void spatial_tile(const GemmCall<typename S::T>& g, std::int64_t m0, const typename S::T* a,
                  typename S::T* c, std::int64_t rows) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  constexpr int COUNT = CO * MV;
  static_assert(COUNT <= 12 && MV <= 8, "twelve accumulators, eight position vectors at most");
#define TCONV_DECL(i) V r##i = ((i) < COUNT && g.bias) ? S::bcast(g.bias + (i) / MV) : S::zero();
  TCONV_ACC12(TCONV_DECL)
#undef TCONV_DECL
  const std::int64_t ks = g.a_ks, K = g.k, ld = g.b_ld;
  for (std::int64_t p = 0; p < g.pairs; ++p) {
    const T* ap = a + g.a_off[p];
    const T* bp = g.b + g.b_off[p];
    if constexpr (WIN) {
      const std::int64_t lo = g.m_lo[p] - m0, hi = g.m_hi[p] - m0;
      // A partial tile's unmasked loop reads its rows only (it masks at `rows`).
      const int kind = !PARTIAL                             ? cover<S, MV>(lo, hi, rows)
                       : hi <= lo || hi <= 0 || lo >= rows ? kNone
                       : lo <= 0 && hi >= rows             ? kAll
                                                           : kSome;
      if (kind == kNone) continue;
      if (kind != kAll) {
        __m256i mk[MV];
        window_lanes<S, MV>(lo, hi, rows, mk);
        if (kind == kFirst)
          spatial_masked<S, CO, MV, kFirst>(ap, bp, K, ks, ld, mk, TCONV_ARGS);
        else if (kind == kLast)
          spatial_masked<S, CO, MV, kLast>(ap, bp, K, ks, ld, mk, TCONV_ARGS);
        else
          spatial_masked<S, CO, MV, kSome>(ap, bp, K, ks, ld, mk, TCONV_ARGS);
        continue;
      }
    }
    for (std::int64_t k = 0; k < K; ++k) {
#define TCONV_STEP(i)                                                                    \
  if constexpr ((i) < COUNT) {                                                           \
    const V av = PARTIAL ? S::load_first(ap + ((i) % MV) * L, ((i) % MV) * L, rows)      \
                         : S::load(ap + ((i) % MV) * L);                                 \
    r##i = S::fma(av, S::bcast(bp + (i) / MV), r##i);                                    \
  }
      TCONV_ACC12(TCONV_STEP)
#undef TCONV_STEP
      ap += ks;
      bp += ld;
    }
  }
  alignas(32) T tmp[COUNT * L];
#define TCONV_SPILL(i) \
  if constexpr ((i) < COUNT) S::store(tmp + (i) * L, r##i);
  TCONV_ACC12(TCONV_SPILL)
#undef TCONV_SPILL
  for (int o = 0; o < CO; ++o) {
    T* out = c + o * g.c_ns;
    const T* src = tmp + o * MV * L;
    for (std::int64_t r = 0; r < rows; ++r) out[r * g.c_ms] = src[r];
  }
}

template <class S, int CO, int MV, bool WIN>
void spatial_rows(const GemmCall<typename S::T>& g) {
  constexpr std::int64_t W = MV * S::L;
  std::int64_t m = 0;
  for (; m + W <= g.m; m += W)
    spatial_tile<S, CO, MV, false, WIN>(g, m, g.a + m, g.c + m * g.c_ms, W);
  // The last, partial tile loads only its own rows (masked): the buffer needs no slack.
  if (m < g.m) spatial_tile<S, CO, MV, true, WIN>(g, m, g.a + m, g.c + m * g.c_ms, g.m - m);
}

template <class S, int CO, int MV>
void spatial_rows(const GemmCall<typename S::T>& g) {
  if (g.m_lo)
    spatial_rows<S, CO, MV, true>(g);
  else
    spatial_rows<S, CO, MV, false>(g);
}

// Tile widths keep 8-12 accumulators live (enough independent FMA chains for two pipes).
template <class S>
void spatial_gemm(const GemmCall<typename S::T>& g) {
  switch (g.n) {
    case 1: spatial_rows<S, 1, 8>(g); break;
    case 2: spatial_rows<S, 2, 4>(g); break;
    case 3: spatial_rows<S, 3, 3>(g); break;
    case 4: spatial_rows<S, 4, 2>(g); break;
    default: break;
  }
}

// ---- transposes: 8 x 8 (fp32) / 4 x 4 (fp64) register blocks, scalar edges ------------------

void transpose8x8(const float* s, std::int64_t sl, float* d, std::int64_t dl) {
  __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + sl), r2 = _mm256_loadu_ps(s + 2 * sl),
         r3 = _mm256_loadu_ps(s + 3 * sl), r4 = _mm256_loadu_ps(s + 4 * sl),
         r5 = _mm256_loadu_ps(s + 5 * sl), r6 = _mm256_loadu_ps(s + 6 * sl),
         r7 = _mm256_loadu_ps(s + 7 * sl);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1),
         t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3),
         t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
         t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  r0 = _mm256_shuffle_ps(t0, t2, 0x44);
  r1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  r2 = _mm256_shuffle_ps(t1, t3, 0x44);
  r3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  r4 = _mm256_shuffle_ps(t4, t6, 0x44);
  r5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  r6 = _mm256_shuffle_ps(t5, t7, 0x44);
  r7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(d, _mm256_permute2f128_ps(r0, r4, 0x20));
  _mm256_storeu_ps(d + dl, _mm256_permute2f128_ps(r1, r5, 0x20));
  _mm256_storeu_ps(d + 2 * dl, _mm256_permute2f128_ps(r2, r6, 0x20));
  _mm256_storeu_ps(d + 3 * dl, _mm256_permute2f128_ps(r3, r7, 0x20));
  _mm256_storeu_ps(d + 4 * dl, _mm256_permute2f128_ps(r0, r4, 0x31));
  _mm256_storeu_ps(d + 5 * dl, _mm256_permute2f128_ps(r1, r5, 0x31));
  _mm256_storeu_ps(d + 6 * dl, _mm256_permute2f128_ps(r2, r6, 0x31));
  _mm256_storeu_ps(d + 7 * dl, _mm256_permute2f128_ps(r3, r7, 0x31));
}

void transpose4x4(const double* s, std::int64_t sl, double* d, std::int64_t dl) {
  const __m256d r0 = _mm256_loadu_pd(s), r1 = _mm256_loadu_pd(s + sl),
                r2 = _mm256_loadu_pd(s + 2 * sl), r3 = _mm256_loadu_pd(s + 3 * sl);
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1),
                t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd(d, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(d + dl, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(d + 2 * dl, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(d + 3 * dl, _mm256_permute2f128_pd(t1, t3, 0x31));
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
  transpose<float, 8, transpose8x8>(s, sl, d, dl, rows, cols, dst_order);
}
void transpose_f64(const double* s, std::int64_t sl, double* d, std::int64_t dl,
                   std::int64_t rows, std::int64_t cols, bool dst_order) {
  transpose<double, 4, transpose4x4>(s, sl, d, dl, rows, cols, dst_order);
}

// ---- multi-phase spatial kernel: CO channels x PH phases x MV position vectors --------------
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
__attribute__((always_inline)) inline void phase_k(const typename S::T* ap,
                                                   const typename S::T* const* bp,
                                                   const typename S::T* apb,
                                                   const typename S::T* const* bpb,
                                                   std::int64_t K, std::int64_t ks,
                                                   std::int64_t ld,
                                                   TCONV_ACC_REFS(typename S::V),
                                                   const __m256i* ka = nullptr,
                                                   const __m256i* kb = nullptr) {
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
#define TCONV_A(v, P, KW, W)                                                             \
  V a##v = S::zero();                                                                    \
  if constexpr ((v) < MV) {                                                              \
    if constexpr (masked(W, (v), MV))                                                    \
      a##v = S::loadm((P) + (v) * L, KW[(v) < MV ? (v) : 0]);                            \
    else                                                                                 \
      a##v = S::load((P) + (v) * L);                                                     \
  }
#define TCONV_STEP(i, M)                                                                 \
  if constexpr ((i) < COUNT && ((M >> (((i) / MV) % PH)) & 1)) {                          \
    constexpr int ph = ((i) / MV) % PH;                                                  \
    const T* bq = ph == 0 ? b0 : ph == 1 ? b1 : ph == 2 ? b2 : b3;                       \
    r##i = S::fma(pick<(i) % MV>(a0, a1, a2, a3, a4, a5), S::bcast(bq + (i) / (PH * MV)), \
                  r##i);                                                                 \
  }
#define TCONV_STEP_A(i) TCONV_STEP(i, MASK)
#define TCONV_STEP_B(i) TCONV_STEP(i, MASKB)
    {
      TCONV_A(0, ap, ka, WA) TCONV_A(1, ap, ka, WA) TCONV_A(2, ap, ka, WA)
      TCONV_A(3, ap, ka, WA) TCONV_A(4, ap, ka, WA) TCONV_A(5, ap, ka, WA)
      TCONV_ACC12(TCONV_STEP_A)
    }
    if constexpr (MASKB != 0) {
      TCONV_A(0, apb, kb, WB) TCONV_A(1, apb, kb, WB) TCONV_A(2, apb, kb, WB)
      TCONV_A(3, apb, kb, WB) TCONV_A(4, apb, kb, WB) TCONV_A(5, apb, kb, WB)
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
                                                     const typename S::T* const* bp,
                                                     std::int64_t K, std::int64_t ks,
                                                     std::int64_t ld,
                                                     TCONV_ACC_REFS(typename S::V)) {
  if (kind == kNone) return;
#define TCONV_CASE(M)                                                                     \
  case M:                                                                                 \
    if constexpr (M < (1 << PH))                                                          \
      phase_k<S, CO, PH, MV, M, 0, kSome>(ap, bp, ap, bp, K, ks, ld, TCONV_ARGS, k, k);   \
    break;
  switch (mask) {
    TCONV_CASE(1) TCONV_CASE(2) TCONV_CASE(3) TCONV_CASE(4) TCONV_CASE(5) TCONV_CASE(6)
    TCONV_CASE(7) TCONV_CASE(8) TCONV_CASE(9) TCONV_CASE(10) TCONV_CASE(11) TCONV_CASE(12)
    TCONV_CASE(13) TCONV_CASE(14) TCONV_CASE(15)
    default: break;
  }
#undef TCONV_CASE
}

// m0: the tile's first row (where the row windows are read).
template <class S, int CO, int PH, int MV>
void phase_tile(const PhaseCall<typename S::T>& g, std::int64_t m0, const typename S::T* a,
                typename S::T* c, std::int64_t rows) {
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
      const int ca = cover<S, MV>(alo, ahi, rows);
      const int cb = cover<S, MV>(blo, bhi, rows);
      if (ca != kAll || (partner >= 0 && cb != kAll)) {
        // The masks only here: a tile the windows cover pays nothing for them.
        __m256i ka[MV], kb[MV];
        window_lanes<S, MV>(alo, ahi, rows, ka);
        window_lanes<S, MV>(blo, bhi, rows, kb);
        // An edge: each pair on its own, every vector under its masks (lanes in its window and
        // below `rows`: the lanes a covered vector would add past them are never stored). The
        // partner's phases are the ones pair A lacks: its accumulators are its own, so the
        // sums keep their order. One call site in a loop: phase_one is inlined once.
        for (int side = 0; side < (partner >= 0 ? 2 : 1); ++side) {
          const bool b = side == 1;
          phase_one<S, CO, PH, MV>(b ? FULL ^ mask : mask, b ? cb : ca, b ? kb : ka,
                                   b ? apb : ap, b ? bpb : bp, g.k, g.a_ks, g.b_ld, TCONV_ARGS);
        }
        continue;
      }
    }
#define TCONV_CASE(M)                                                                         \
  case M:                                                                                     \
    if constexpr (M < (1 << PH)) {                                                            \
      if (partner >= 0) {                                                                     \
        if constexpr (M != FULL)                                                              \
          phase_k<S, CO, PH, MV, M, FULL ^ M>(ap, bp, apb, bpb, g.k, g.a_ks, g.b_ld,         \
                                               TCONV_ARGS);                                  \
      } else {                                                                                \
        phase_k<S, CO, PH, MV, M, 0>(ap, bp, ap, bp, g.k, g.a_ks, g.b_ld, TCONV_ARGS);        \
      }                                                                                       \
    }                                                                                         \
    break;
    switch (mask) {
      TCONV_CASE(1) TCONV_CASE(2) TCONV_CASE(3) TCONV_CASE(4) TCONV_CASE(5) TCONV_CASE(6)
      TCONV_CASE(7) TCONV_CASE(8) TCONV_CASE(9) TCONV_CASE(10) TCONV_CASE(11) TCONV_CASE(12)
      TCONV_CASE(13) TCONV_CASE(14) TCONV_CASE(15)
      default: break;
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
  if (rows == MV * L && g.c_ps == 1 && g.c_ms == PH &&
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
      for (std::int64_t r = 0; r < rows; ++r) out[r * g.c_ms] = src[r];
    }
}

template <class S, int CO, int PH, int MV>
bool phase_rows(const PhaseCall<typename S::T>& g) {
  constexpr std::int64_t W = MV * S::L;
  std::int64_t m = 0;
  for (; m + W <= g.m; m += W)
    phase_tile<S, CO, PH, MV>(g, m, g.a + m, g.c + m * g.c_ms, W);
  // The tail: as few whole vectors as cover it, read past its end into the row buffer's
  // slack (lanes never stored), or with row windows up to the window's end. Masked loads in
  // the k loop would cost the registers that keep the accumulators out of memory.
  const std::int64_t rest = g.m - m;
  const auto* a = g.a + m;
  auto* c = g.c + m * g.c_ms;
  switch ((rest + S::L - 1) / S::L) {
    case 1: phase_tile<S, CO, PH, 1>(g, m, a, c, rest); break;
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
    default: break;
  }
  return true;
}

template <class S>
bool phase_gemm(const PhaseCall<typename S::T>& g) {
  switch (g.n * 8 + g.phases) {
    case 1 * 8 + 2: return phase_rows<S, 1, 2, 6>(g);
    case 1 * 8 + 3: return phase_rows<S, 1, 3, 4>(g);
    case 1 * 8 + 4: return phase_rows<S, 1, 4, 3>(g);
    case 2 * 8 + 2: return phase_rows<S, 2, 2, 3>(g);
    case 2 * 8 + 3: return phase_rows<S, 2, 3, 2>(g);
    case 2 * 8 + 4: return phase_rows<S, 2, 4, 1>(g);
    case 3 * 8 + 2: return phase_rows<S, 3, 2, 2>(g);
    case 3 * 8 + 3: return phase_rows<S, 3, 3, 1>(g);
    case 3 * 8 + 4: return phase_rows<S, 3, 4, 1>(g);
    case 4 * 8 + 2: return phase_rows<S, 4, 2, 1>(g);
    case 4 * 8 + 3: return phase_rows<S, 4, 3, 1>(g);
    default: return false;
  }
}

void channel_f32(const GemmCall<float>& g) { channel_gemm<F32>(g); }
void channel_f64(const GemmCall<double>& g) { channel_gemm<F64>(g); }
void spatial_f32(const GemmCall<float>& g) { spatial_gemm<F32>(g); }
void spatial_f64(const GemmCall<double>& g) { spatial_gemm<F64>(g); }

}  // namespace

bool phase_f32(const PhaseCall<float>& g) { return phase_gemm<F32>(g); }
bool phase_f64(const PhaseCall<double>& g) { return phase_gemm<F64>(g); }

// Without row windows the multi-phase kernel's tail reads up to one vector past the last row.
KernelSet<float> kernels_f32() {
  KernelSet<float> ks{channel_f32, 2 * F32::L, spatial_f32,   F32::L,
                      transpose_f32, phase_f32,  dw_rows_f32, dw_pixels_f32};
  ks.channel_windows = true;
  ks.spatial_windows = true;
  return ks;
}
KernelSet<double> kernels_f64() {
  KernelSet<double> ks{channel_f64, 2 * F64::L, spatial_f64,   F64::L,
                       transpose_f64, phase_f64,  dw_rows_f64, dw_pixels_f64};
  ks.channel_windows = true;
  ks.spatial_windows = true;
  return ks;
}

}  // namespace tconv::kernels::avx2

#undef TCONV_ARGS
#undef TCONV_ACC_REFS
#undef TCONV_ACC12
