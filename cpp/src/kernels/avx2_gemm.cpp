// AVX2 + FMA micro-kernels: broadcast outer-product GEMM tiles over a batch of (A, B) pairs
// (the multi-phase tiles: avx2_phase.cpp).
//
// Built with -mavx2 -mfma for this file only. Everything here has internal linkage and uses no
// standard-library templates, so no code generated with these flags can be picked by the linker
// for a baseline caller (nm on this object shows no weak symbols).
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/avx2.hpp"
#include "kernels/avx2_lanes.hpp"
#include "kernels/row_window.hpp"

namespace tconv::kernels::avx2 {
namespace {

// ---- channel-vector kernel: MR output positions x NV vectors of output channels -------------
// Accumulator i holds position i / NV, channel vector i % NV. NV = 2 is the full panel (nr = 2
// vectors); NV = 1 the narrow one, for layers with at most one vector of output channels per
// group, in tiles of up to 12 positions so that as many FMA chains are in flight.

template <int NV>
constexpr int kMR = 12 / NV;
// A short row (8 positions) streams its panel's weights from beyond L1 at a line per k-step:
// they are fetched this many k-steps ahead (docs/design.md, "Kernels").
constexpr std::int64_t kAheadRows = 24;

template <class S, int NV, int MR>
void channel_tile(const GemmCall<typename S::T>& g, std::int64_t m0, const typename S::T* a,
                  typename S::T* c) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  constexpr int NR = NV * L;
  constexpr int COUNT = NV * MR;
  static_assert(COUNT <= 12, "12 accumulators");
  // The output lines are fetched for writing now, while the K loop runs: a layer whose output
  // does not fit in cache otherwise stalls on the store misses of each tile.
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * g.c_ms), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * g.c_ms + (NR - 1) * g.c_ns), _MM_HINT_T0);
  }
  alignas(32) T init[NR];
  for (int j = 0; j < NR; ++j) init[j] = (g.bias && j < g.n) ? g.bias[j] : T(0);
#define TCONV_DECL(i) V r##i = S::load(init + ((i) % NV) * L);
  TCONV_ACC12(TCONV_DECL)
#undef TCONV_DECL
  const std::int64_t ks = g.a_ks, ms = g.a_ms, K = g.k, ld = g.b_ld;
  for (std::int64_t p = 0; p < g.pairs; ++p) {
    const T* ap = a + g.a_off[p];
    const T* bp = g.b + g.b_off[p];
    const unsigned live = window_mask<MR>(g, p, m0);
    if (live == 0) continue;
    if (live != (1u << MR) - 1u) {
      // Some positions' taps fall past the input's border: only the others read and accumulate.
      for (std::int64_t k = 0; k < K; ++k) {
        const V w0 = S::load(bp);
        const V w1 = NV > 1 ? S::load(bp + L) : w0;
#define TCONV_STEP(i)                                                          \
  if constexpr ((i) < COUNT) {                                                 \
    if (live >> ((i) / NV) & 1u)                                               \
      r##i = S::fma(S::bcast(ap + ((i) / NV) * ms), (i) % NV ? w1 : w0, r##i); \
  }
        TCONV_ACC12(TCONV_STEP)
#undef TCONV_STEP
        ap += ks;
        bp += ld;
      }
      continue;
    }
    for (std::int64_t k = 0; k < K; ++k) {
      _mm_prefetch(reinterpret_cast<const char*>(bp + kAheadRows * ld), _MM_HINT_T0);
      const V w0 = S::load(bp);
      const V w1 = NV > 1 ? S::load(bp + L) : w0;
#define TCONV_STEP(i)                                                        \
  if constexpr ((i) < COUNT) {                                               \
    r##i = S::fma(S::bcast(ap + ((i) / NV) * ms), (i) % NV ? w1 : w0, r##i); \
  }
      TCONV_ACC12(TCONV_STEP)
#undef TCONV_STEP
      ap += ks;
      bp += ld;
    }
  }
  if (g.c_ns == 1 && g.n == NR) {
#define TCONV_STORE(i) \
  if constexpr ((i) < COUNT) S::store(c + ((i) / NV) * g.c_ms + ((i) % NV) * L, r##i);
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

// The tile of `len` positions (1 <= len <= MR).
template <class S, int NV, int MR = kMR<NV>>
void channel_tiles(const GemmCall<typename S::T>& g, std::int64_t m, std::int64_t len) {
  if constexpr (MR > 0) {
    if (len == MR)
      channel_tile<S, NV, MR>(g, m, g.a + m * g.a_ms, g.c + m * g.c_ms);
    else
      channel_tiles<S, NV, MR - 1>(g, m, len);
  }
}

template <class S, int NV>
void channel_gemm(const GemmCall<typename S::T>& g) {
  // A tile of fewer than 6 / NV positions (2-5 FMA chains) is too few chains to hide the FMA
  // latency: a short remainder is merged with the last full tile and the pair split evenly
  // (8 = 4 + 4).
  constexpr int MR = kMR<NV>;
  std::int64_t full = g.m / MR, rest = g.m % MR;
  if (rest > 0 && rest < 6 / NV && full > 0) {
    --full;
    rest += MR;
  }
  std::int64_t m = 0;
  for (std::int64_t t = 0; t < full; ++t, m += MR) channel_tiles<S, NV>(g, m, MR);
  if (rest > MR) {
    const std::int64_t first = (rest + 1) / 2;
    channel_tiles<S, NV>(g, m, first);
    m += first;
    rest -= first;
  }
  channel_tiles<S, NV>(g, m, rest);
}

// ---- position-vector kernel: MV vectors of consecutive output positions x CO channels ---------
// Accumulator i holds channel i / MV, position vector i % MV.

// One masked k-step's FMAs for position vector VV: its input vector is loaded once (a masked
// load does not fold into the FMA as a plain one does) and the channel broadcasts are shared
// across the vectors.
template <class S, int CO, int MV, int VV>
__attribute__((always_inline)) inline void position_mstep(typename S::V av, const typename S::T* bp,
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
__attribute__((always_inline)) inline void position_masked(const typename S::T* ap,
                                                           const typename S::T* bp, std::int64_t K,
                                                           std::int64_t ks, std::int64_t ld,
                                                           const __m256i* mk,
                                                           TCONV_ACC_REFS(typename S::V)) {
  constexpr int L = S::L;
  for (std::int64_t k = 0; k < K; ++k) {
#define TCONV_VEC(v)                                                                    \
  if constexpr ((v) < MV)                                                               \
    position_mstep<S, CO, MV, (v)>(masked(W, (v), MV)                                   \
                                       ? S::loadm(ap + (v) * L, mk[(v) < MV ? (v) : 0]) \
                                       : S::load(ap + (v) * L),                         \
                                   bp, TCONV_ARGS);
    TCONV_VEC(0)
    TCONV_VEC(1)
    TCONV_VEC(2)
    TCONV_VEC(3)
    TCONV_VEC(4)
    TCONV_VEC(5)
    TCONV_VEC(6)
    TCONV_VEC(7)
#undef TCONV_VEC
    ap += ks;
    bp += ld;
  }
}

// m0: the tile's first position (where the row windows are read).
template <class S, int CO, int MV, bool PARTIAL, bool WIN>
void position_tile(const GemmCall<typename S::T>& g, std::int64_t m0, const typename S::T* a,
                   typename S::T* c, std::int64_t len) {
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
      // A partial tile's unmasked loop reads its positions only (it masks at `len`).
      const int kind = !PARTIAL                           ? cover<S, MV>(lo, hi, len)
                       : hi <= lo || hi <= 0 || lo >= len ? kNone
                       : lo <= 0 && hi >= len             ? kAll
                                                          : kSome;
      if (kind == kNone) continue;
      if (kind != kAll) {
        __m256i mk[MV];
        window_lanes<S, MV>(lo, hi, len, mk);
        if (kind == kFirst)
          position_masked<S, CO, MV, kFirst>(ap, bp, K, ks, ld, mk, TCONV_ARGS);
        else if (kind == kLast)
          position_masked<S, CO, MV, kLast>(ap, bp, K, ks, ld, mk, TCONV_ARGS);
        else
          position_masked<S, CO, MV, kSome>(ap, bp, K, ks, ld, mk, TCONV_ARGS);
        continue;
      }
    }
    for (std::int64_t k = 0; k < K; ++k) {
#define TCONV_STEP(i)                                                              \
  if constexpr ((i) < COUNT) {                                                     \
    const V av = PARTIAL ? S::load_first(ap + ((i) % MV) * L, ((i) % MV) * L, len) \
                         : S::load(ap + ((i) % MV) * L);                           \
    r##i = S::fma(av, S::bcast(bp + (i) / MV), r##i);                              \
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
    for (std::int64_t r = 0; r < len; ++r) out[r * g.c_ms] = src[r];
  }
}

template <class S, int CO, int MV, bool WIN>
void position_tiles(const GemmCall<typename S::T>& g) {
  constexpr std::int64_t W = MV * S::L;
  std::int64_t m = 0;
  for (; m + W <= g.m; m += W)
    position_tile<S, CO, MV, false, WIN>(g, m, g.a + m, g.c + m * g.c_ms, W);
  // The last, partial tile loads only its own positions (masked): the buffer needs no slack.
  if (m < g.m) position_tile<S, CO, MV, true, WIN>(g, m, g.a + m, g.c + m * g.c_ms, g.m - m);
}

template <class S, int CO, int MV>
void position_tiles(const GemmCall<typename S::T>& g) {
  if (g.m_lo)
    position_tiles<S, CO, MV, true>(g);
  else
    position_tiles<S, CO, MV, false>(g);
}

// Tile widths keep 8-12 accumulators live (enough independent FMA chains for two pipes).
template <class S>
void position_gemm(const GemmCall<typename S::T>& g) {
  switch (g.n) {
    case 1:
      position_tiles<S, 1, 8>(g);
      break;
    case 2:
      position_tiles<S, 2, 4>(g);
      break;
    case 3:
      position_tiles<S, 3, 3>(g);
      break;
    case 4:
      position_tiles<S, 4, 2>(g);
      break;
    default:
      break;
  }
}

// ---- transposes: 8 x 8 (fp32) / 4 x 4 (fp64) register blocks, scalar edges ------------------

// The 8 x 8 block at s (rows sl apart) transposed into o[0..7], o[j] its column j.
void transpose8x8_regs(const float* s, std::int64_t sl, __m256* o) {
  __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + sl), r2 = _mm256_loadu_ps(s + 2 * sl),
         r3 = _mm256_loadu_ps(s + 3 * sl), r4 = _mm256_loadu_ps(s + 4 * sl),
         r5 = _mm256_loadu_ps(s + 5 * sl), r6 = _mm256_loadu_ps(s + 6 * sl),
         r7 = _mm256_loadu_ps(s + 7 * sl);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1),
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
  o[0] = _mm256_permute2f128_ps(r0, r4, 0x20);
  o[1] = _mm256_permute2f128_ps(r1, r5, 0x20);
  o[2] = _mm256_permute2f128_ps(r2, r6, 0x20);
  o[3] = _mm256_permute2f128_ps(r3, r7, 0x20);
  o[4] = _mm256_permute2f128_ps(r0, r4, 0x31);
  o[5] = _mm256_permute2f128_ps(r1, r5, 0x31);
  o[6] = _mm256_permute2f128_ps(r2, r6, 0x31);
  o[7] = _mm256_permute2f128_ps(r3, r7, 0x31);
}

void transpose8x8(const float* s, std::int64_t sl, float* d, std::int64_t dl) {
  __m256 o[8];
  transpose8x8_regs(s, sl, o);
  for (int j = 0; j < 8; ++j) _mm256_storeu_ps(d + j * dl, o[j]);
}

// Two 8 x 8 blocks side by side along the destination rows (source rows s .. s + 15): each
// destination row's 16 values are stored back to back, so every line it touches is written
// whole before the next row's. Destination rows a 4 KiB multiple apart (channel planes) share
// an L1 set, where lines left half-written are evicted and fetched again for their other half.
// STREAM: streaming stores where every destination row starts on a line, whose 16 values then
// fill it whole, so it goes to memory without first being read.
template <bool STREAM>
void transpose8x16(const float* s, std::int64_t sl, float* d, std::int64_t dl) {
  const bool stream = STREAM && (reinterpret_cast<std::uintptr_t>(d) & 63) == 0 && (dl & 15) == 0;
  __m256 lo[8], hi[8];
  transpose8x8_regs(s, sl, lo);
  transpose8x8_regs(s + 8 * sl, sl, hi);
  for (int j = 0; j < 8; ++j) {
    if (stream) {
      _mm256_stream_ps(d + j * dl, lo[j]);
      _mm256_stream_ps(d + j * dl + 8, hi[j]);
    } else {
      _mm256_storeu_ps(d + j * dl, lo[j]);
      _mm256_storeu_ps(d + j * dl + 8, hi[j]);
    }
  }
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

// Block2: two blocks side by side along the destination rows, where the ISA has one (dst_order).
template <class T, int B, void (*Block)(const T*, std::int64_t, T*, std::int64_t),
          void (*Block2)(const T*, std::int64_t, T*, std::int64_t) = nullptr>
void transpose(const T* src, std::int64_t sl, T* dst, std::int64_t dl, std::int64_t rows,
               std::int64_t cols, bool dst_order) {
  const std::int64_t rb = rows / B * B, cb = cols / B * B;
  if (dst_order) {
    for (std::int64_t j = 0; j < cb; j += B) {
      std::int64_t i = 0;
      if constexpr (Block2 != nullptr)
        for (; i + 2 * B <= rb; i += 2 * B) Block2(src + i * sl + j, sl, dst + j * dl + i, dl);
      for (; i < rb; i += B) Block(src + i * sl + j, sl, dst + j * dl + i, dl);
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
  transpose<float, 8, transpose8x8, transpose8x16<false>>(s, sl, d, dl, rows, cols, dst_order);
}
void transpose_stream_f32(const float* s, std::int64_t sl, float* d, std::int64_t dl,
                          std::int64_t rows, std::int64_t cols, bool dst_order) {
  transpose<float, 8, transpose8x8, transpose8x16<true>>(s, sl, d, dl, rows, cols, dst_order);
}
void transpose_f64(const double* s, std::int64_t sl, double* d, std::int64_t dl, std::int64_t rows,
                   std::int64_t cols, bool dst_order) {
  transpose<double, 4, transpose4x4>(s, sl, d, dl, rows, cols, dst_order);
}

// ---- the pack's Inf/NaN check: exponent bits all ones, eight float32 or four float64 lanes ---
// (detail::finite_run's own loop, widened; written out here, as this file instantiates no
// template the baseline files also use).
template <int BITS>
bool finite(const void* p, std::int64_t n) {
  using U = std::conditional_t<BITS == 32, std::uint32_t, std::uint64_t>;
  constexpr U kExp = BITS == 32 ? U(0x7f800000u) : U(0x7ff0000000000000ull);
  constexpr std::int64_t kLanes = 256 / BITS;
  const __m256i e = BITS == 32 ? _mm256_set1_epi32(static_cast<int>(kExp))
                               : _mm256_set1_epi64x(static_cast<long long>(kExp));
  const char* b = static_cast<const char*>(p);
  __m256i bad = _mm256_setzero_si256();
  std::int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const __m256i v = _mm256_and_si256(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i * (BITS / 8))), e);
    bad = _mm256_or_si256(bad, BITS == 32 ? _mm256_cmpeq_epi32(v, e) : _mm256_cmpeq_epi64(v, e));
  }
  U tail = 0;
  for (; i < n; ++i) {
    U u;
    std::memcpy(&u, b + i * (BITS / 8), sizeof u);
    tail |= U((u & kExp) == kExp);
  }
  return _mm256_testz_si256(bad, bad) && tail == 0;
}
bool finite_f32(const float* p, std::int64_t n) { return finite<32>(p, n); }
bool finite_f64(const double* p, std::int64_t n) { return finite<64>(p, n); }

void channel_f32(const GemmCall<float>& g) { channel_gemm<F32, 2>(g); }
void channel_f64(const GemmCall<double>& g) { channel_gemm<F64, 2>(g); }
void narrow_f32(const GemmCall<float>& g) { channel_gemm<F32, 1>(g); }
void position_f32(const GemmCall<float>& g) { position_gemm<F32>(g); }
void position_f64(const GemmCall<double>& g) { position_gemm<F64>(g); }

}  // namespace

// Without row windows the multi-phase kernel's tail reads up to one vector past the last position.
KernelSet<float> kernels_f32() {
  KernelSet<float> ks{channel_f32,   2 * F32::L, position_f32, F32::L,
                      transpose_f32, phase_f32,  dw_rows_f32,  dw_pixels_f32};
  ks.channel_windows = true;
  ks.position_windows = true;
  ks.narrow[0] = {narrow_f32, F32::L, kMR<1>};
  ks.transpose_stream = transpose_stream_f32;
  ks.finite = finite_f32;
  return ks;
}
KernelSet<double> kernels_f64() {
  KernelSet<double> ks{channel_f64,   2 * F64::L, position_f64, F64::L,
                       transpose_f64, phase_f64,  dw_rows_f64,  dw_pixels_f64};
  ks.channel_windows = true;
  ks.position_windows = true;
  ks.finite = finite_f64;
  return ks;
}

}  // namespace tconv::kernels::avx2

#undef TCONV_ARGS
#undef TCONV_ACC_REFS
#undef TCONV_ACC12
