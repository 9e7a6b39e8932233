// AVX2 + FMA depthwise kernels (one input and one output channel per group).
//
// The layer does ~2 flops per byte moved, so these kernels aim at memory speed: each output
// element is computed in registers from the bias and stored once, inputs are read in place.
// channels_first vectorises along the output row (each phase of the row is a dense stride-1
// correlation over the input row; stride 2 interleaves its two phases in registers),
// channels_last along the channels.
//
// Built with -mavx2 -mfma for this file only; like avx2_gemm.cpp, everything here has internal
// linkage except the entry points and uses no standard-library templates.
#include <immintrin.h>

#include <cstdint>

#include "kernels/avx2.hpp"

namespace tconv::kernels::avx2 {
namespace {

struct F32 {
  using T = float;
  using V = __m256;
  using M = __m256i;
  static constexpr int L = 8;
  static V set1(T v) { return _mm256_set1_ps(v); }
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static void store(T* p, V v) { _mm256_storeu_ps(p, v); }
  // Lanes below n (0 <= n <= L).
  static M mask(std::int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V mload(const T* p, M m) { return _mm256_maskload_ps(p, m); }
  static void mstore(T* p, M m, V v) { _mm256_maskstore_ps(p, m, v); }
  // Two phase vectors a (even outputs) and b (odd outputs) -> 2L consecutive outputs.
  static void interleave_store(T* p, V a, V b) {
    const V lo = _mm256_unpacklo_ps(a, b);  // a0 b0 a1 b1 | a4 b4 a5 b5
    const V hi = _mm256_unpackhi_ps(a, b);  // a2 b2 a3 b3 | a6 b6 a7 b7
    _mm256_storeu_ps(p, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(p + L, _mm256_permute2f128_ps(lo, hi, 0x31));
  }
};

struct F64 {
  using T = double;
  using V = __m256d;
  using M = __m256i;
  static constexpr int L = 4;
  static V set1(T v) { return _mm256_set1_pd(v); }
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static void store(T* p, V v) { _mm256_storeu_pd(p, v); }
  static M mask(std::int64_t n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static V mload(const T* p, M m) { return _mm256_maskload_pd(p, m); }
  static void mstore(T* p, M m, V v) { _mm256_maskstore_pd(p, m, v); }
  static void interleave_store(T* p, V a, V b) {
    const V lo = _mm256_unpacklo_pd(a, b);  // a0 b0 | a2 b2
    const V hi = _mm256_unpackhi_pd(a, b);  // a1 b1 | a3 b3
    _mm256_storeu_pd(p, _mm256_permute2f128_pd(lo, hi, 0x20));
    _mm256_storeu_pd(p + L, _mm256_permute2f128_pd(lo, hi, 0x31));
  }
};

// ---- channels_first ----------------------------------------------------------------------------

// One output row of a call: its pairs are e0 + p for p < pairs.
template <class S>
struct Row {
  const DwRowsCall<typename S::T>* c;
  std::int64_t e0, pairs;
  typename S::T* y;
  const typename S::T* x(std::int64_t p) const {
    return c->x + (c->pair_x[e0 + p] - c->x_first) * c->x_pitch;
  }
  const typename S::T* w(std::int64_t p) const { return c->w + c->pair_w[e0 + p]; }
};

// The taps of one phase over all pairs, resolved once per row: an input pointer (shift
// included) and a broadcast weight each.
constexpr int kMaxTaps = 32;

template <class S>
struct PhaseTaps {
  const typename S::T* x[kMaxTaps];
  typename S::V w[kMaxTaps];
  int n;
};

template <class S>
bool resolve(const Row<S>& row, std::int64_t r, PhaseTaps<S>* pt) {
  const DwRowsCall<typename S::T>& c = *row.c;
  int n = 0;
  for (std::int64_t p = 0; p < row.pairs; ++p) {
    const typename S::T* x = row.x(p);
    const typename S::T* w = row.w(p);
    for (std::int64_t t = c.tap_first[r]; t < c.tap_first[r + 1]; ++t) {
      if (n == kMaxTaps) return false;
      pt->x[n] = x + c.tap_c[t];
      pt->w[n] = S::set1(w[c.tap_k[t]]);
      ++n;
    }
  }
  pt->n = n;
  return true;
}

// One phase at L positions from q; N > 0 fixes the tap count at compile time (the common
// layers), N == 0 reads it from `pt`. MASKED reads only the lanes in `m`.
template <class S, int N, bool MASKED>
typename S::V phase_at(const PhaseTaps<S>& pt, typename S::V bias, std::int64_t q,
                       typename S::M m) {
  typename S::V acc = bias;
  const int n = N > 0 ? N : pt.n;
  for (int j = 0; j < n; ++j)
    acc = S::fma(pt.w[j], MASKED ? S::mload(pt.x[j] + q, m) : S::load(pt.x[j] + q), acc);
  return acc;
}

// Stride 2 along the row, output contiguous: both phases per L positions, interleaved in
// registers into 2L consecutive outputs. A ragged end recomputes the last full vector (the
// overlapping outputs get the same values again), so only rows shorter than L need masks.
// Runs `count` rows of one tap pattern: row i writes ys[i] and reads at offset shifts[i] from
// the pattern's pointers.
template <class S, int N0, int N1>
void row_s2(typename S::T* const* ys, const std::int64_t* shifts, int count, typename S::V bias,
            std::int64_t n, const PhaseTaps<S>& p0, const PhaseTaps<S>& p1) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  const typename S::M all = S::mask(L);
  if (n < L) {
    const typename S::M m = S::mask(n);
    for (int i = 0; i < count; ++i) {
      T tmp[2 * L];
      S::interleave_store(tmp, phase_at<S, N0, true>(p0, bias, shifts[i], m),
                          phase_at<S, N1, true>(p1, bias, shifts[i], m));
      for (std::int64_t k = 0; k < 2 * n; ++k) ys[i][k] = tmp[k];
    }
    return;
  }
  if (N0 > 0 && N1 > 0) {
    // Fixed tap counts: weights and pointers in locals, so that they stay in registers
    // across the rows instead of being reloaded from the tap lists at every step.
    V wa[N0 > 0 ? N0 : 1], wb[N1 > 0 ? N1 : 1];
    for (int j = 0; j < N0; ++j) wa[j] = p0.w[j];
    for (int j = 0; j < N1; ++j) wb[j] = p1.w[j];
    for (int i = 0; i < count; ++i) {
      const T* xa[N0 > 0 ? N0 : 1];
      const T* xb[N1 > 0 ? N1 : 1];
      for (int j = 0; j < N0; ++j) xa[j] = p0.x[j] + shifts[i];
      for (int j = 0; j < N1; ++j) xb[j] = p1.x[j] + shifts[i];
      T* y = ys[i];
      auto step = [&](std::int64_t q) {
        V a = bias, b = bias;
        for (int j = 0; j < N0; ++j) a = S::fma(wa[j], S::load(xa[j] + q), a);
        for (int j = 0; j < N1; ++j) b = S::fma(wb[j], S::load(xb[j] + q), b);
        S::interleave_store(y + 2 * q, a, b);
      };
      std::int64_t q = 0;
      for (; q + L <= n; q += L) step(q);
      if (q < n) step(n - L);
    }
    return;
  }
  for (int i = 0; i < count; ++i) {
    T* y = ys[i];
    const std::int64_t shift = shifts[i];
    std::int64_t q = 0;
    for (; q + L <= n; q += L)
      S::interleave_store(y + 2 * q, phase_at<S, N0, false>(p0, bias, q + shift, all),
                          phase_at<S, N1, false>(p1, bias, q + shift, all));
    if (q < n) {
      q = n - L;
      S::interleave_store(y + 2 * q, phase_at<S, N0, false>(p0, bias, q + shift, all),
                          phase_at<S, N1, false>(p1, bias, q + shift, all));
    }
  }
}

template <class S>
void row_s2_dispatch(typename S::T* const* ys, const std::int64_t* shifts, int count,
                     typename S::V bias, std::int64_t n, const PhaseTaps<S>& p0,
                     const PhaseTaps<S>& p1) {
#define TCONV_S2(a, b) \
  case (a) * 8 + (b):  \
    return row_s2<S, a, b>(ys, shifts, count, bias, n, p0, p1);
  switch ((p0.n <= 4 && p1.n <= 4) ? p0.n * 8 + p1.n : -1) {
    TCONV_S2(1, 1)
    TCONV_S2(1, 2)
    TCONV_S2(1, 3)
    TCONV_S2(1, 4)
    TCONV_S2(2, 1)
    TCONV_S2(2, 2)
    TCONV_S2(2, 3)
    TCONV_S2(2, 4)
    TCONV_S2(3, 1)
    TCONV_S2(3, 2)
    TCONV_S2(3, 3)
    TCONV_S2(3, 4)
    TCONV_S2(4, 1)
    TCONV_S2(4, 2)
    TCONV_S2(4, 3)
    TCONV_S2(4, 4)
    default:
      return row_s2<S, 0, 0>(ys, shifts, count, bias, n, p0, p1);
  }
#undef TCONV_S2
}

// Stride 1, output contiguous: one phase, stored directly.
template <class S, int N>
void row_s1(typename S::T* y, typename S::V bias, std::int64_t n, std::int64_t shift,
            const PhaseTaps<S>& pt) {
  constexpr int L = S::L;
  const typename S::M all = S::mask(L);
  if (n < L) {
    const typename S::M m = S::mask(n);
    S::mstore(y, m, phase_at<S, N, true>(pt, bias, shift, m));
    return;
  }
  std::int64_t q = 0;
  for (; q + L <= n; q += L) S::store(y + q, phase_at<S, N, false>(pt, bias, q + shift, all));
  if (q < n) S::store(y + n - L, phase_at<S, N, false>(pt, bias, n - L + shift, all));
}

// Any stride (up to kMaxPhases) or output step: phase by phase per L positions, scattered
// from a small buffer.
constexpr std::int64_t kMaxPhases = 8;

template <class S>
void row_any(typename S::T* y, typename S::V bias, std::int64_t n, std::int64_t shift,
             std::int64_t s, std::int64_t y_step, const PhaseTaps<S>* pts) {
  using T = typename S::T;
  constexpr int L = S::L;
  const std::int64_t step = s * y_step;
  for (std::int64_t q = 0; q < n; q += L) {
    const std::int64_t live = n - q < L ? n - q : L;
    const typename S::M m = S::mask(live);
    for (std::int64_t r = 0; r < s; ++r) {
      T tmp[L];
      S::store(tmp, live == L ? phase_at<S, 0, false>(pts[r], bias, q + shift, m)
                              : phase_at<S, 0, true>(pts[r], bias, q + shift, m));
      T* out = y + (s * q + r) * y_step;
      for (std::int64_t i = 0; i < live; ++i) out[i * step] = tmp[i];
    }
  }
}

// Rows with more taps or phases than the resolved lists hold: straight from the call.
template <class S>
void row_plain(const Row<S>& row, std::int64_t n) {
  using T = typename S::T;
  constexpr int L = S::L;
  const DwRowsCall<T>& c = *row.c;
  const std::int64_t s = c.phases, step = s * c.y_step;
  for (std::int64_t q = 0; q < n; q += L) {
    const std::int64_t live = n - q < L ? n - q : L;
    const typename S::M m = S::mask(live);
    for (std::int64_t r = 0; r < s; ++r) {
      typename S::V acc = S::set1(c.bias);
      for (std::int64_t p = 0; p < row.pairs; ++p) {
        const T* x = row.x(p) + q;
        const T* w = row.w(p);
        for (std::int64_t t = c.tap_first[r]; t < c.tap_first[r + 1]; ++t)
          acc = S::fma(S::set1(w[c.tap_k[t]]), S::mload(x + c.tap_c[t], m), acc);
      }
      T tmp[L];
      S::store(tmp, acc);
      T* out = row.y + (s * q + r) * c.y_step;
      for (std::int64_t i = 0; i < live; ++i) out[i * step] = tmp[i];
    }
  }
}

// Resolved taps of a row. Rows whose pairs have the same kernel rows and the same input rows
// up to a common offset (all rows of one phase of the outer dims, away from the borders)
// reuse them, reading at that offset.
template <class S>
struct Resolved {
  std::int64_t e0 = -1, pairs = 0;
  bool ok = false;
  PhaseTaps<S> pts[kMaxPhases];
};

template <class S>
bool same_taps(const DwRowsCall<typename S::T>& c, const Resolved<S>& r, std::int64_t e0,
               std::int64_t pairs) {
  if (r.e0 < 0 || r.pairs != pairs) return false;
  for (std::int64_t i = 0; i < pairs; ++i)
    if (c.pair_w[r.e0 + i] != c.pair_w[e0 + i] ||
        c.pair_x[r.e0 + i] - c.pair_x[r.e0] != c.pair_x[e0 + i] - c.pair_x[e0])
      return false;
  return true;
}

// The last, partial group of phases of a row (y_len not a multiple of the stride).
template <class S>
void row_tail(const Row<S>& row, std::int64_t full) {
  using T = typename S::T;
  const DwRowsCall<T>& c = *row.c;
  const std::int64_t s = c.phases;
  for (std::int64_t r = 0; s * full + r < c.y_len; ++r) {
    T v = c.bias;
    for (std::int64_t p = 0; p < row.pairs; ++p) {
      const T* x = row.x(p);
      const T* w = row.w(p);
      for (std::int64_t t = c.tap_first[r]; t < c.tap_first[r + 1]; ++t)
        v += w[c.tap_k[t]] * x[full + c.tap_c[t]];
    }
    row.y[(s * full + r) * c.y_step] = v;
  }
}

// One row of any stride other than the stride-2 fast path.
template <class S>
void one_row(const Row<S>& row, std::int64_t full, const Resolved<S>& res, std::int64_t shift) {
  using T = typename S::T;
  const DwRowsCall<T>& c = *row.c;
  const std::int64_t s = c.phases;
  const typename S::V bias = S::set1(c.bias);
  if (full > 0) {
    const PhaseTaps<S>* pts = res.pts;
    if (!res.ok) {
      row_plain<S>(row, full);
    } else if (c.y_step == 1 && s == 2) {
      T* const ys[1] = {row.y};
      row_s2_dispatch<S>(ys, &shift, 1, bias, full, pts[0], pts[1]);
    } else if (c.y_step == 1 && s == 1) {
      switch (pts[0].n) {
        case 1:
          row_s1<S, 1>(row.y, bias, full, shift, pts[0]);
          break;
        case 2:
          row_s1<S, 2>(row.y, bias, full, shift, pts[0]);
          break;
        case 3:
          row_s1<S, 3>(row.y, bias, full, shift, pts[0]);
          break;
        case 4:
          row_s1<S, 4>(row.y, bias, full, shift, pts[0]);
          break;
        case 9:
          row_s1<S, 9>(row.y, bias, full, shift, pts[0]);
          break;
        default:
          row_s1<S, 0>(row.y, bias, full, shift, pts[0]);
          break;
      }
    } else {
      row_any<S>(row.y, bias, full, shift, s, c.y_step, pts);
    }
  }
  row_tail<S>(row, full);
}

constexpr int kResolved = 4;

// The input rows into the haloed buffer: whole vectors, then the last few elements one by
// one (a vector store there would overwrite the zero halo).
template <class S>
void fill_rows(const DwRowsCall<typename S::T>& c) {
  using T = typename S::T;
  constexpr int L = S::L;
  const std::int64_t n = c.src_len;
  for (std::int64_t i = 0; i < c.fill_rows; ++i) {
    const T* src = c.src + c.src_off[c.x_first + i];
    T* dst = c.fill + i * c.x_pitch;
    if (c.src_step == 1) {
      std::int64_t j = 0;
      for (; j + L <= n; j += L) S::store(dst + j, S::load(src + j));
      for (; j < n; ++j) dst[j] = src[j];
    } else {
      for (std::int64_t j = 0; j < n; ++j) dst[j] = src[j * c.src_step];
    }
  }
}

// ---- stride 2, two output rows at a time ------------------------------------------------------

// Output rows r and r + 1 of a stride-2 outer dim often read the same input rows with other
// kernel rows (k4 s2 p1: rows 2m+1 and 2m+2 both read m and m+1); run_cf lists such groups
// (DwRowsCall::pair_run). Each input vector is then loaded once for the four phase vectors of
// the two rows instead of once per tap. Tap t of phase r reads shift slot a_r + n_r - 1 - t of
// the NS loaded per input row; the accumulation order is row_s2's (pair, then tap). Rows in no
// group run alone (G = 1), still loading each vector once for both phases.
template <class S, int G, int P, int NS, int A0, int N0, int A1, int N1>
void pair_s2(const typename S::T* const* x0, std::int64_t x_adv, typename S::T* y0,
             typename S::T* y1, std::int64_t y_adv, std::int64_t count, const typename S::V* w,
             typename S::V bias, std::int64_t n) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  V w0[G][P][N0], w1[G][P][N1];
  for (int g = 0; g < G; ++g)
    for (int p = 0; p < P; ++p) {
      const V* wp = w + (g * P + p) * (N0 + N1);
      for (int t = 0; t < N0; ++t) w0[g][p][t] = wp[t];
      for (int t = 0; t < N1; ++t) w1[g][p][t] = wp[N0 + t];
    }
  for (std::int64_t i = 0; i < count; ++i) {
    const T* x[P];
    for (int p = 0; p < P; ++p) x[p] = x0[p] + i * x_adv;
    T* yg[2] = {y0 + i * y_adv, y1 + i * y_adv};
    auto step = [&](std::int64_t q) {
      V v[P][NS];
      for (int p = 0; p < P; ++p)
        for (int s = 0; s < NS; ++s) v[p][s] = S::load(x[p] + q + s);
      for (int g = 0; g < G; ++g) {
        V a = bias, b = bias;
        for (int p = 0; p < P; ++p) {
          for (int t = 0; t < N0; ++t) a = S::fma(w0[g][p][t], v[p][A0 + N0 - 1 - t], a);
          for (int t = 0; t < N1; ++t) b = S::fma(w1[g][p][t], v[p][A1 + N1 - 1 - t], b);
        }
        S::interleave_store(yg[g] + 2 * q, a, b);
      }
    };
    std::int64_t q = 0;
    for (; q + L <= n; q += L) step(q);
    if (q < n) step(n - L);
  }
}

template <class S>
using PairFn = void (*)(const typename S::T* const*, std::int64_t, typename S::T*, typename S::T*,
                        std::int64_t, std::int64_t, const typename S::V*, typename S::V,
                        std::int64_t);

// The instantiation for a pair_kind, G rows and a count of shared input rows (1, 2 or 4).
template <class S, int G>
PairFn<S> pair_kernel(int kind, std::int64_t pairs) {
  if (kind == 1)
    return pairs == 1   ? pair_s2<S, G, 1, 3, 0, 2, 1, 2>
           : pairs == 2 ? pair_s2<S, G, 2, 3, 0, 2, 1, 2>
                        : pair_s2<S, G, 4, 3, 0, 2, 1, 2>;
  return pairs == 1   ? pair_s2<S, G, 1, 1, 0, 1, 0, 1>
         : pairs == 2 ? pair_s2<S, G, 2, 1, 0, 1, 0, 1>
                      : pair_s2<S, G, 4, 1, 0, 1, 0, 1>;
}

// Runs the groups listed from row r (within the call's rows), else row r alone if it reads 1, 2
// or 4 input rows. Returns the rows done.
template <class S>
std::int64_t pair_rows(const DwRowsCall<typename S::T>& c, std::int64_t r, std::int64_t full) {
  using T = typename S::T;
  using V = typename S::V;
  const std::int64_t room = (c.row1 - r) / 2;
  const std::int64_t count = c.pair_run[r] < room ? c.pair_run[r] : room;
  const std::int64_t e0 = c.pair_first[r], P = c.pair_first[r + 1] - e0;
  if (count <= 0 && P != 1 && P != 2 && P != 4) return 0;
  const int G = count > 0 ? 2 : 1;
  const int nt = c.pair_kind == 1 ? 4 : 2;
  V w[2 * 4 * 4];
  const T* x0[4];
  for (std::int64_t p = 0; p < P; ++p) {
    x0[p] = c.x + (c.pair_x[e0 + p] - c.x_first) * c.x_pitch + c.pair_lo;
    for (int g = 0; g < G; ++g) {
      const T* wr = c.w + c.pair_w[c.pair_first[r + g] + p];
      for (int t = 0; t < nt; ++t) w[(g * P + p) * nt + t] = S::set1(wr[c.tap_k[t]]);
    }
  }
  // Advances from group to group (none when there is one group).
  const std::int64_t x_adv =
      count > 1 ? (c.pair_x[c.pair_first[r + 2]] - c.pair_x[e0]) * c.x_pitch : 0;
  const std::int64_t y_adv = count > 1 ? c.y_off[r + 2] - c.y_off[r] : 0;
  if (G == 1) {
    T* y = c.y + c.y_off[r];
    pair_kernel<S, 1>(c.pair_kind, P)(x0, 0, y, y, 0, 1, w, S::set1(c.bias), full);
    return 1;
  }
  pair_kernel<S, 2>(c.pair_kind, P)(x0, x_adv, c.y + c.y_off[r], c.y + c.y_off[r + 1], y_adv, count,
                                    w, S::set1(c.bias), full);
  return 2 * count;
}

// Stride-2 rows are gathered per tap pattern and run a batch at a time (the pattern's weights
// stay in registers across its rows); other strides run row by row.
constexpr int kBatch = 32;

template <class S>
void dw_rows(const DwRowsCall<typename S::T>& c) {
  using T = typename S::T;
  fill_rows<S>(c);
  const std::int64_t full = c.y_len / c.phases;  // positions q with every phase in the row
  const bool batch = full > 0 && c.phases == 2 && c.y_step == 1;
  Resolved<S> cache[kResolved];
  int next = 0;
  // Pending batched rows per cache entry.
  T* ys[kResolved][kBatch];
  std::int64_t shifts[kResolved][kBatch];
  int pending[kResolved] = {0, 0, 0, 0};
  const typename S::V bias = S::set1(c.bias);
  auto flush = [&](int k) {
    if (pending[k] > 0)
      row_s2_dispatch<S>(ys[k], shifts[k], pending[k], bias, full, cache[k].pts[0],
                         cache[k].pts[1]);
    pending[k] = 0;
  };
  for (std::int64_t r = c.row0; r < c.row1; ++r) {
    if (c.pair_kind != 0) {
      const std::int64_t done = pair_rows<S>(c, r, full);
      // Most rows have no partial group, and the call alone cost ~9 % of a layer of short rows.
      for (std::int64_t i = r; i < r + done && c.y_len != 2 * full; ++i) {
        const std::int64_t e = c.pair_first[i];
        row_tail<S>(Row<S>{&c, e, c.pair_first[i + 1] - e, c.y + c.y_off[i]}, full);
      }
      if (done > 0) {
        r += done - 1;
        continue;
      }
    }
    const std::int64_t e0 = c.pair_first[r], pairs = c.pair_first[r + 1] - e0;
    const Row<S> row{&c, e0, pairs, c.y + c.y_off[r]};
    int hit = -1;
    for (int i = 0; i < kResolved && hit < 0; ++i)
      if (same_taps<S>(c, cache[i], e0, pairs)) hit = i;
    if (hit < 0 && full > 0) {
      hit = next;
      next = (next + 1) % kResolved;
      flush(hit);
      Resolved<S>& e = cache[hit];
      e.e0 = e0;
      e.pairs = pairs;
      e.ok = c.phases <= kMaxPhases;
      for (std::int64_t ph = 0; ph < c.phases && e.ok; ++ph) e.ok = resolve<S>(row, ph, &e.pts[ph]);
    }
    if (hit < 0) {
      row_tail<S>(row, full);  // no full positions: only the partial group
      continue;
    }
    // A row without pairs (all its taps outside the input) reads nothing: no offset.
    const std::int64_t shift = pairs > 0 ? (c.pair_x[e0] - c.pair_x[cache[hit].e0]) * c.x_pitch : 0;
    if (batch && cache[hit].ok) {
      ys[hit][pending[hit]] = row.y;
      shifts[hit][pending[hit]] = shift;
      if (++pending[hit] == kBatch) flush(hit);
      row_tail<S>(row, full);
    } else {
      one_row<S>(row, full, cache[hit], shift);
    }
  }
  for (int k = 0; k < kResolved; ++k) flush(k);
}

// ---- channels_last -----------------------------------------------------------------------------

// NV vectors of channels from c0 for one pixel (the last block masked to `m` when MASKED).
template <class S, int NV, bool MASKED>
void pixel_block(const DwPixelsCall<typename S::T>& c, std::int64_t o, std::int64_t c0,
                 typename S::M m) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  V acc[NV];
  for (int v = 0; v < NV; ++v) {
    const bool last = MASKED && v == NV - 1;
    acc[v] = c.bias ? (last ? S::mload(c.bias + c0 + v * L, m) : S::load(c.bias + c0 + v * L))
                    : S::set1(T(0));
  }
  const std::int64_t t0 = c.col_first[o], t1 = c.col_first[o + 1];
  for (std::int64_t p = 0; p < c.pairs; ++p)
    for (std::int64_t t = t0; t < t1; ++t) {
      const T* x = c.x + c.row_x[p] + c.col_x[t] + c0;
      const T* w = c.w + c.row_w[p] + c.col_w[t] + c0;
      for (int v = 0; v < NV; ++v) {
        const bool last = MASKED && v == NV - 1;
        const V xv = last ? S::mload(x + v * L, m) : S::load(x + v * L);
        const V wv = last ? S::mload(w + v * L, m) : S::load(w + v * L);
        acc[v] = S::fma(xv, wv, acc[v]);
      }
    }
  T* y = c.y + o * c.y_step + c0;
  for (int v = 0; v < NV; ++v) {
    if (MASKED && v == NV - 1) {
      S::mstore(y + v * L, m, acc[v]);
    } else {
      S::store(y + v * L, acc[v]);
    }
  }
}

template <class S>
void dw_pixels(const DwPixelsCall<typename S::T>& c) {
  constexpr int L = S::L;
  constexpr int NV = 4;
  const std::int64_t C = c.channels;
  const typename S::M all = S::mask(L);
  for (std::int64_t o = c.o0; o < c.o1; ++o) {
    std::int64_t c0 = 0;
    for (; c0 + NV * L <= C; c0 += NV * L) pixel_block<S, NV, false>(c, o, c0, all);
    const std::int64_t rest = C - c0;
    if (rest == 0) continue;
    // The tail: whole vectors, the last one masked.
    const std::int64_t vecs = (rest + L - 1) / L;
    const typename S::M m = S::mask(rest - (vecs - 1) * L);
    switch (vecs) {
      case 1:
        pixel_block<S, 1, true>(c, o, c0, m);
        break;
      case 2:
        pixel_block<S, 2, true>(c, o, c0, m);
        break;
      case 3:
        pixel_block<S, 3, true>(c, o, c0, m);
        break;
      default:
        pixel_block<S, 4, true>(c, o, c0, m);
        break;
    }
  }
}

}  // namespace

void dw_rows_f32(const DwRowsCall<float>& c) { dw_rows<F32>(c); }
void dw_rows_f64(const DwRowsCall<double>& c) { dw_rows<F64>(c); }
void dw_pixels_f32(const DwPixelsCall<float>& c) { dw_pixels<F32>(c); }
void dw_pixels_f64(const DwPixelsCall<double>& c) { dw_pixels<F64>(c); }

}  // namespace tconv::kernels::avx2
