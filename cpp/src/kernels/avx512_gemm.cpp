// AVX-512F channel-vector micro-kernel: broadcast outer-product GEMM tiles over a batch of
// (A, B) pairs, like the AVX2 one, with twice the vector width and twice the registers.
//
// On cores that execute a 512-bit FMA as two 256-bit halves the arithmetic peak is the AVX2
// one; what the wider form buys is front-end and load bandwidth. An 8 x 2 tile of zmm
// accumulators does 16 FMAs per k-step for 2 vector loads and 8 broadcasts (folded into the
// FMAs as embedded {1toN} operands, see TCONV_FMA2), against 12 FMAs, 2 loads and 6
// separate broadcasts for the AVX2 6 x 2 tile of ymm: fewer instructions per flop, so the FMA
// pipes stay fed. Cores with two whole 512-bit FMA pipes (Intel's) finish a k-step in half the
// cycles, and there the 16 folded broadcast loads are the bottleneck: they get the kernel with
// one broadcast per position (see fma2), chosen per CPU in kernels_f32/f64.
//
// Built with -mavx512f -mavx2 -mfma for this file only; internal linkage and no standard-library
// templates, for the same reason as avx2_gemm.cpp.
#include <immintrin.h>

#include "kernels/avx2.hpp"
#include "kernels/avx512.hpp"
#include "kernels/row_window.hpp"

namespace tconv::kernels::avx512 {
namespace {

// r0 += a[0] * w0 and r1 += a[0] * w1 (a: a byte address), the broadcast of a[0] folded into
// each FMA as its {1toN} memory operand; the second form reads at a + off, so that positions share
// base registers (see channel_tile). GCC emits a separate broadcast for a value that feeds two
// FMAs; folded, the FP pipes see only FMAs and the loads go to the load pipes: CycleGAN
// 256->128 NHWC 107 -> 111, U-Net 512->256 107 -> 110 GFLOP/s on one thread with 12-position tiles;
// float64 gained 1-3 % with 8-position tiles.
#define TCONV_FMA2(INSN, BCAST)                                                                 \
  static void fma2(const char* a, V w0, V w1, V& r0, V& r1) {                                   \
    asm(INSN " (%[a])%{" BCAST "%}, %[w0], %[r0]\n\t" INSN " (%[a])%{" BCAST "%}, %[w1], %[r1]" \
        : [r0] "+v"(r0), [r1] "+v"(r1)                                                          \
        : [a] "r"(a), [w0] "v"(w0), [w1] "v"(w1));                                              \
  }                                                                                             \
  static void fma2(const char* a, std::int64_t off, V w0, V w1, V& r0, V& r1) {                 \
    asm(INSN " (%[a],%[o])%{" BCAST "%}, %[w0], %[r0]\n\t" INSN " (%[a],%[o])%{" BCAST          \
             "%}, %[w1], %[r1]"                                                                 \
        : [r0] "+v"(r0), [r1] "+v"(r1)                                                          \
        : [a] "r"(a), [o] "r"(off), [w0] "v"(w0), [w1] "v"(w1));                                \
  }

// load_m: the lanes of p in `lanes`, zeros elsewhere; fma_m: c + a * b in `lanes`, c elsewhere.
// In inline assembly so that GCC keeps the masks in mask registers through a loop (with the
// intrinsics it reloads them every step).
#define TCONV_MASKED(MASK, LOAD, FMA)                                                             \
  using M = MASK;                                                                                 \
  static V load_m(const T* p, M lanes) {                                                          \
    V r;                                                                                          \
    asm(LOAD " %[p], %[r]%{%[k]%}%{z%}"                                                           \
        : [r] "=v"(r)                                                                             \
        : [p] "m"(*reinterpret_cast<const V*>(p)), [k] "Yk"(lanes));                              \
    return r;                                                                                     \
  }                                                                                               \
  static V fma_m(V a, V b, V c, M lanes) {                                                        \
    asm(FMA " %[b], %[a], %[c]%{%[k]%}" : [c] "+v"(c) : [a] "v"(a), [b] "v"(b), [k] "Yk"(lanes)); \
    return c;                                                                                     \
  }

struct F32 {
  using T = float;
  using V = __m512;
  static constexpr int L = 16;
  // See F64::kPrefetchWeights: in float32 a k-step does twice the flops per weight byte, and on
  // cores that split a 512-bit FMA in halves the hardware prefetcher keeps up (the extra loads
  // cost ~5 % on K = 128 layers). The unfolded kernel fetches ahead by size (see channel_gemm).
  static constexpr bool kPrefetchWeights = false;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static V bcast(const T* p) { return _mm512_set1_ps(*p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  TCONV_FMA2("vfmadd231ps", "1to16")
  static void store(T* p, V v) { _mm512_storeu_ps(p, v); }
  static V load_n(const T* p, int n) {
    return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1u), p);
  }
  TCONV_MASKED(__mmask16, "vmovups", "vfmadd231ps")
  static void store_n(T* p, V v, int n) {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), v);
  }
};

struct F64 {
  using T = double;
  using V = __m512d;
  static constexpr int L = 8;
  // The weights stream once per call, 8 bytes per flop pair; when a panel comes from L3
  // (short rows with large weights) the hardware prefetcher falls behind. Prefetching eight
  // k-steps (1 KiB) ahead: DCGAN 512->256 float64 about 38 -> 49 GFLOP/s on one thread.
  static constexpr bool kPrefetchWeights = true;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static V bcast(const T* p) { return _mm512_set1_pd(*p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  TCONV_FMA2("vfmadd231pd", "1to8")
  static void store(T* p, V v) { _mm512_storeu_pd(p, v); }
  static V load_n(const T* p, int n) {
    return _mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << n) - 1u), p);
  }
  TCONV_MASKED(__mmask8, "vmovupd", "vfmadd231pd")
  static void store_n(T* p, V v, int n) {
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1u), v);
  }
};

// r0 += a[0] * w0 and r1 += a[0] * w1 as S::fma2 (FOLD) or with one broadcast of a[0] for
// both: half the loads, for cores whose FMA pipes outrun the load pipes (see the file comment;
// measurements in docs/design.md).
template <class S, bool FOLD>
void fma2(const char* a, typename S::V w0, typename S::V w1, typename S::V& r0, typename S::V& r1) {
  if constexpr (FOLD) {
    S::fma2(a, w0, w1, r0, r1);
  } else {
    const typename S::V x = S::bcast(reinterpret_cast<const typename S::T*>(a));
    r0 = S::fma(x, w0, r0);
    r1 = S::fma(x, w1, r1);
  }
}
template <class S, bool FOLD>
void fma2(const char* a, std::int64_t off, typename S::V w0, typename S::V w1, typename S::V& r0,
          typename S::V& r1) {
  if constexpr (FOLD)
    S::fma2(a, off, w0, w1, r0, r1);
  else
    fma2<S, false>(a + off, w0, w1, r0, r1);
}

// Accumulators as named variables (GCC keeps a loop-carried array of vectors in memory).
#define TCONV_ACC16(X) \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

// Accumulator i holds position i / 2, channel vector i % 2. Tiles of 8 positions rather than the 12
// the registers allow: 16 chains hide the FMA latency, and in both dtypes every layer measured ran
// as fast or faster with tiles of 6-9 positions than of 10-12 (one thread, GFLOP/s, 12 -> 8
// positions: 3D U-Net 86 -> 96, U-Net 128->64 99 -> 103, HiFi-GAN up3 104 -> 108; float64 U-Net
// 512->256 51 -> 56, 3D U-Net 43 -> 48).
constexpr int kMR = 8;
// Weights per call above which the unfolded float32 kernel fetches them ahead: beyond an L1
// (48 KiB on the Intel cores measured) they come from L2 to every tile (see channel_gemm).
constexpr double kPrefetchWeightsBytes = 48.0 * 1024;

template <class S, int MR, bool PREFETCH_A, bool PREFETCH_B, bool FOLD>
void channel_tile(const GemmCall<typename S::T>& g, std::int64_t m0, const typename S::T* a,
                  typename S::T* c) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  constexpr int NR = 2 * L;
  constexpr int COUNT = 2 * MR;
  static_assert(MR <= 8, "the k-loop addresses eight positions, the accumulators are 16");
  // Fetch the output lines for writing while the K loop runs (see the AVX2 kernel).
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * g.c_ms), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * g.c_ms + (NR - 1) * g.c_ns), _MM_HINT_T0);
  }
  const int n = static_cast<int>(g.n);
  V b0 = S::zero(), b1 = S::zero();
  if (g.bias) {
    b0 = S::load_n(g.bias, n < L ? n : L);
    if (n > L) b1 = S::load_n(g.bias + L, n - L);
  }
#define TCONV_DECL(i) V r##i = (i) % 2 ? b1 : b0;
  TCONV_ACC16(TCONV_DECL)
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
        const V w1 = S::load(bp + L);
#define TCONV_STEP(i)                                                        \
  if constexpr ((i) < COUNT) {                                               \
    if (live >> ((i) / 2) & 1u)                                              \
      r##i = S::fma(S::bcast(ap + ((i) / 2) * ms), (i) % 2 ? w1 : w0, r##i); \
  }
        TCONV_ACC16(TCONV_STEP)
#undef TCONV_STEP
        ap += ks;
        bp += ld;
      }
      continue;
    }
    // Position i's A element at base[i / 3] + (i % 3) * ms: three base registers and two offsets
    // address eight positions (one pointer per position spills GCC's registers inside the loop).
    const std::int64_t msb = ms * static_cast<std::int64_t>(sizeof(T)), ms2b = 2 * msb;
    const std::int64_t ksb = ks * static_cast<std::int64_t>(sizeof(T));
    const char* a0 = reinterpret_cast<const char*>(ap);
    const char* a3 = a0 + 3 * msb;
    const char* a6 = a0 + 6 * msb;
    for (std::int64_t k = 0; k < K; ++k) {
      if constexpr (PREFETCH_B) {
        _mm_prefetch(reinterpret_cast<const char*>(bp + 8 * ld), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(bp + 8 * ld + L), _MM_HINT_T0);
      }
      if constexpr (PREFETCH_A) {
        // A position's next line but one, once per line (16 float32 or 8 float64 k-steps):
        // positions read in place from an input in main memory are concurrent streams, more than
        // the hardware prefetcher follows. unet 128->64 at 128x128, NHWC: 86 -> 91 GFLOP/s.
        if ((k & (64 / sizeof(T) - 1)) == 0)
          for (int i = 0; i < MR; ++i) _mm_prefetch(a0 + i * msb + 128, _MM_HINT_T0);
      }
      const V w0 = S::load(bp);
      const V w1 = S::load(bp + L);
      if constexpr (MR > 0) fma2<S, FOLD>(a0, w0, w1, r0, r1);
      if constexpr (MR > 1) fma2<S, FOLD>(a0, msb, w0, w1, r2, r3);
      if constexpr (MR > 2) fma2<S, FOLD>(a0, ms2b, w0, w1, r4, r5);
      if constexpr (MR > 3) fma2<S, FOLD>(a3, w0, w1, r6, r7);
      if constexpr (MR > 4) fma2<S, FOLD>(a3, msb, w0, w1, r8, r9);
      if constexpr (MR > 5) fma2<S, FOLD>(a3, ms2b, w0, w1, r10, r11);
      if constexpr (MR > 6) fma2<S, FOLD>(a6, w0, w1, r12, r13);
      if constexpr (MR > 7) fma2<S, FOLD>(a6, msb, w0, w1, r14, r15);
      a0 += ksb;
      a3 += ksb;
      a6 += ksb;
      bp += ld;
    }
  }
  if (g.c_ns == 1) {
    if (n == NR) {
#define TCONV_STORE(i) \
  if constexpr ((i) < COUNT) S::store(c + ((i) / 2) * g.c_ms + ((i) % 2) * L, r##i);
      TCONV_ACC16(TCONV_STORE)
#undef TCONV_STORE
    } else {
      const int n0 = n < L ? n : L, n1 = n > L ? n - L : 0;
#define TCONV_STORE_N(i)                                                           \
  if constexpr ((i) < COUNT) {                                                     \
    if ((i) % 2 == 0 || n1 > 0)                                                    \
      S::store_n(c + ((i) / 2) * g.c_ms + ((i) % 2) * L, r##i, (i) % 2 ? n1 : n0); \
  }
      TCONV_ACC16(TCONV_STORE_N)
#undef TCONV_STORE_N
    }
    return;
  }
  alignas(64) T tmp[COUNT * L];
#define TCONV_SPILL(i) \
  if constexpr ((i) < COUNT) S::store(tmp + (i) * L, r##i);
  TCONV_ACC16(TCONV_SPILL)
#undef TCONV_SPILL
  for (int m = 0; m < MR; ++m) {
    T* row = c + m * g.c_ms;
    for (int j = 0; j < n; ++j) row[j * g.c_ns] = tmp[m * NR + j];
  }
}

template <class S, bool PREFETCH_A, bool PREFETCH_B, bool FOLD>
void channel_tiles(const GemmCall<typename S::T>& g, std::int64_t m, std::int64_t len) {
  const auto* a = g.a + m * g.a_ms;
  auto* c = g.c + m * g.c_ms;
  switch (len) {
    case 8:
      channel_tile<S, 8, PREFETCH_A, PREFETCH_B, FOLD>(g, m, a, c);
      break;
    case 7:
      channel_tile<S, 7, PREFETCH_A, PREFETCH_B, FOLD>(g, m, a, c);
      break;
    case 6:
      channel_tile<S, 6, PREFETCH_A, PREFETCH_B, FOLD>(g, m, a, c);
      break;
    case 5:
      channel_tile<S, 5, PREFETCH_A, PREFETCH_B, FOLD>(g, m, a, c);
      break;
    case 4:
      channel_tile<S, 4, PREFETCH_A, PREFETCH_B, FOLD>(g, m, a, c);
      break;
    case 3:
      channel_tile<S, 3, PREFETCH_A, PREFETCH_B, FOLD>(g, m, a, c);
      break;
    case 2:
      channel_tile<S, 2, PREFETCH_A, PREFETCH_B, FOLD>(g, m, a, c);
      break;
    case 1:
      channel_tile<S, 1, PREFETCH_A, PREFETCH_B, FOLD>(g, m, a, c);
      break;
    default:
      break;
  }
}

template <class S, bool FOLD>
void channel_gemm(const GemmCall<typename S::T>& g) {
  // The positions are spread evenly over the fewest tiles of at most kMR: a 10-position call runs
  // two 5-position tiles (10 chains each), never 8 + 2 (a 2-position tile has too few chains in
  // flight to hide the FMA latency).
  const std::int64_t tiles = (g.m + kMR - 1) / kMR;
  // Cores with whole 512-bit FMA pipes (the unfolded kernel) outrun L2's delivery of weights
  // that do not stay in L1 from one tile to the next: those are fetched ahead in float32 too
  // (docs/design.md).
  const double weight_bytes = static_cast<double>(g.pairs * g.k) * 2 * S::L * sizeof(typename S::T);
  const bool fetch_b = S::kPrefetchWeights || (!FOLD && weight_bytes > kPrefetchWeightsBytes);
  std::int64_t m = 0;
  for (std::int64_t t = 0; t < tiles; ++t) {
    const std::int64_t len = (g.m - m) / (tiles - t) + ((g.m - m) % (tiles - t) ? 1 : 0);
    if (g.prefetch_a && g.a_ks == 1)
      fetch_b ? channel_tiles<S, true, true, FOLD>(g, m, len)
              : channel_tiles<S, true, false, FOLD>(g, m, len);
    else
      fetch_b ? channel_tiles<S, false, true, FOLD>(g, m, len)
              : channel_tiles<S, false, false, FOLD>(g, m, len);
    m += len;
  }
}

// ---- the narrow panel: one vector of output channels per position ------------------------------
// Accumulator i holds position i. For layers with at most L output channels per group (grouped
// layers of 8-16 channels per group), whose full-width panel would run half its FMA lanes or
// more on zero columns. Tiles of up to 12 positions: 12 FMA chains, as in the full tile.
constexpr int kNarrowMR = 12;

template <class S, int MR>
void narrow_tile(const GemmCall<typename S::T>& g, std::int64_t m0, const typename S::T* a,
                 typename S::T* c) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  static_assert(MR <= 16, "16 accumulators");
  for (int i = 0; i < MR; ++i)
    _mm_prefetch(reinterpret_cast<const char*>(c + i * g.c_ms), _MM_HINT_T0);
  const int n = static_cast<int>(g.n);
  const V b0 = g.bias ? S::load_n(g.bias, n) : S::zero();
#define TCONV_DECL(i) V r##i = b0;
  TCONV_ACC16(TCONV_DECL)
#undef TCONV_DECL
  const std::int64_t ks = g.a_ks, ms = g.a_ms, K = g.k;
  for (std::int64_t p = 0; p < g.pairs; ++p) {
    const T* ap = a + g.a_off[p];
    const T* bp = g.b + g.b_off[p];
    const unsigned live = window_mask<MR>(g, p, m0);
    if (live == 0) continue;
    if (live != (1u << MR) - 1u) {
      // Some positions' taps fall past the input's border: only the others read and accumulate.
      for (std::int64_t k = 0; k < K; ++k, ap += ks, bp += L) {
        const V w0 = S::load(bp);
#define TCONV_STEP(i)     \
  if constexpr ((i) < MR) \
    if (live >> (i) & 1u) r##i = S::fma(S::bcast(ap + (i) * ms), w0, r##i);
        TCONV_ACC16(TCONV_STEP)
#undef TCONV_STEP
      }
      continue;
    }
    for (std::int64_t k = 0; k < K; ++k, ap += ks, bp += L) {
      const V w0 = S::load(bp);
#define TCONV_STEP(i) \
  if constexpr ((i) < MR) r##i = S::fma(S::bcast(ap + (i) * ms), w0, r##i);
      TCONV_ACC16(TCONV_STEP)
#undef TCONV_STEP
    }
  }
  if (g.c_ns == 1) {
#define TCONV_STORE(i) \
  if constexpr ((i) < MR) S::store_n(c + (i) * g.c_ms, r##i, n);
    TCONV_ACC16(TCONV_STORE)
#undef TCONV_STORE
    return;
  }
  alignas(64) T tmp[MR * L];
#define TCONV_SPILL(i) \
  if constexpr ((i) < MR) S::store(tmp + (i) * L, r##i);
  TCONV_ACC16(TCONV_SPILL)
#undef TCONV_SPILL
  for (int m = 0; m < MR; ++m) {
    T* row = c + m * g.c_ms;
    for (int j = 0; j < n; ++j) row[j * g.c_ns] = tmp[m * L + j];
  }
}

// The tile of `len` positions (1 <= len <= MR).
template <class S, int MR = kNarrowMR>
void narrow_tiles(const GemmCall<typename S::T>& g, std::int64_t m, std::int64_t len) {
  if constexpr (MR > 0) {
    if (len == MR)
      narrow_tile<S, MR>(g, m, g.a + m * g.a_ms, g.c + m * g.c_ms);
    else
      narrow_tiles<S, MR - 1>(g, m, len);
  }
}

// The positions spread evenly over the fewest tiles of at most kNarrowMR (as channel_gemm).
template <class S>
void narrow_gemm(const GemmCall<typename S::T>& g) {
  const std::int64_t tiles = (g.m + kNarrowMR - 1) / kNarrowMR;
  std::int64_t m = 0;
  for (std::int64_t t = 0; t < tiles; ++t) {
    const std::int64_t len = (g.m - m) / (tiles - t) + ((g.m - m) % (tiles - t) ? 1 : 0);
    narrow_tiles<S>(g, m, len);
    m += len;
  }
}

// ---- the stream kernel: every position in one tile, the weights read in place -------------
// For a GEMM of few positions whose weights are read where they lie, rows b_ld apart (the
// shuffle of DCGAN's projection: 32 KiB): a tile holds every position, so each weight line is
// read once, and nothing is copied. Rows a power of two apart share a few cache sets, so the
// tiles run over kStreamBytes of columns for a few rows at a time (few lines of a set in use),
// the sums carried between row blocks in a dense buffer (C's rows may share sets too), and each
// line is fetched into L2 a row block ahead (such rows start no hardware stream).
constexpr int kStreamMR = 16;
constexpr std::int64_t kStreamBytes = 512;
// Rows per block at most: 8, or 32 for more than 8 positions, whose FMAs per line cover the
// misses of the fuller sets and gain from fewer passes over the sums; K split into even blocks
// (a last block of a few rows costs a whole pass over the sums).
template <int MR>
constexpr std::int64_t kStreamRows = MR > 8 ? 32 : 8;

// Rows [k0, k1) of the tile of columns [j, j + n): the sums of the rows before k0 in `sums`
// (row m at m * COLS), the result to C when k1 == K, else back to `sums`.
template <class S, int MR, std::int64_t COLS = kStreamBytes / sizeof(typename S::T)>
void stream_tile(const GemmCall<typename S::T>& g, std::int64_t j, int n, std::int64_t k0,
                 std::int64_t k1, std::int64_t rows, typename S::T* sums) {
  using T = typename S::T;
  using V = typename S::V;
  V b0 = S::zero();
  if (k0 == 0 && g.bias) b0 = S::load_n(g.bias + j, n);
#define TCONV_DECL(i) V r##i = k0 == 0 ? b0 : S::load(sums + (i) * COLS);
  TCONV_ACC16(TCONV_DECL)
#undef TCONV_DECL
  const std::int64_t ks = g.a_ks, ld = g.b_ld;
  const T* ap = g.a + g.a_off[0] + k0 * ks;
  const T* bp = g.b + g.b_off[0] + k0 * ld + j;
  for (std::int64_t k = k0; k < k1; ++k, ap += ks, bp += ld) {
    _mm_prefetch(reinterpret_cast<const char*>(bp + rows * ld), _MM_HINT_T1);
    const V w0 = S::load_n(bp, n);
#define TCONV_STEP(i) \
  if constexpr ((i) < MR) r##i = S::fma(S::bcast(ap + (i)), w0, r##i);
    TCONV_ACC16(TCONV_STEP)
#undef TCONV_STEP
  }
  if (k1 < g.k) {
#define TCONV_KEEP(i) \
  if constexpr ((i) < MR) S::store(sums + (i) * COLS, r##i);
    TCONV_ACC16(TCONV_KEEP)
#undef TCONV_KEEP
    return;
  }
#define TCONV_STORE(i) \
  if constexpr ((i) < MR) S::store_n(g.c + (i) * g.c_ms + j, r##i, n);
  TCONV_ACC16(TCONV_STORE)
#undef TCONV_STORE
}

template <class S, int MR>
void stream_tiles(const GemmCall<typename S::T>& g) {
  constexpr int L = S::L;
  constexpr std::int64_t COLS = kStreamBytes / sizeof(typename S::T);
  alignas(64) typename S::T sums[MR * COLS];
  const std::int64_t blocks =
      g.k > kStreamRows<MR> ? (g.k + kStreamRows<MR> - 1) / kStreamRows<MR> : 1;
  const std::int64_t rows = (g.k + blocks - 1) / blocks;
  for (std::int64_t j0 = 0; j0 < g.n; j0 += COLS) {
    const std::int64_t j1 = g.n - j0 < COLS ? g.n : j0 + COLS;
    for (std::int64_t k0 = 0; k0 < g.k; k0 += rows) {
      const std::int64_t k1 = g.k - k0 < rows ? g.k : k0 + rows;
      for (std::int64_t j = j0; j < j1; j += L)
        stream_tile<S, MR>(g, j, j1 - j < L ? static_cast<int>(j1 - j) : L, k0, k1, rows,
                           sums + (j - j0));
    }
  }
}

template <class S, int MR = kStreamMR>
void stream_gemm(const GemmCall<typename S::T>& g) {
  if constexpr (MR > 0) {
    if (g.m == MR)
      stream_tiles<S, MR>(g);
    else
      stream_gemm<S, MR - 1>(g);
  }
}

// ---- the cell kernel: vectors of positions, the weights read in place
// ---------------------------- For the direct driver's few input cells (contiguous: a_ms == 1)
// against weights too large to copy: a tile is up to kCellVecs vectors of positions by kCellCols
// columns; per k-step it loads each position vector once and broadcasts each column's weight from
// the weights as they lie (b_ld apart). A weight row's line then serves a few tiles in a row, with
// nothing copied (docs/design.md has the measurements). C is stored column-major (c_ms == 1).
constexpr int kCellVecs = 4, kCellCols = 6;

// Weight rows lie b_ld apart, often a power of two (DCGAN 512->256: 16 KiB): a tile's column of
// rows maps to a few cache sets and would be gone from L1 and L2 when the next tile, which reads
// the same lines, comes to it. So the tiles run over blocks of kCellRows rows, the block's lines
// kept in L2 across the tiles of a call and C carried in memory between blocks; each row's lines
// are fetched into L1 kCellAhead rows ahead, and into L2 kCellFar rows ahead (the first tile to
// reach a line finds it in L3 or memory).
constexpr std::int64_t kCellRows = 64, kCellAhead = 4, kCellFar = 16;

// The tile's accumulators from the bias (k0 == 0) or from C (the sums of the rows before k0).
template <class S, int MV, int NC>
__attribute__((always_inline)) inline void cell_init(const GemmCall<typename S::T>& g,
                                                     std::int64_t m0, std::int64_t n0,
                                                     std::int64_t k0, const typename S::T* cc,
                                                     int tail, typename S::V (&acc)[NC][MV]) {
  using V = typename S::V;
  constexpr int L = S::L;
#pragma GCC unroll 8
  for (int j = 0; j < NC; ++j) {
    if (k0 == 0) {
      const V b = g.bias ? S::bcast(g.bias + n0 + j) : S::zero();
#pragma GCC unroll 4
      for (int v = 0; v < MV; ++v) acc[j][v] = b;
    } else {
      const typename S::T* c = cc + (n0 + j) * g.c_ns + m0;
#pragma GCC unroll 4
      for (int v = 0; v < MV - 1; ++v) acc[j][v] = S::load(c + v * L);
      acc[j][MV - 1] = S::load_n(c + (MV - 1) * L, tail);
    }
  }
}

template <class S, int MV, int NC>
__attribute__((always_inline)) inline void cell_store(const GemmCall<typename S::T>& g,
                                                      std::int64_t m0, std::int64_t n0,
                                                      typename S::T* cc, int tail,
                                                      const typename S::V (&acc)[NC][MV]) {
  constexpr int L = S::L;
#pragma GCC unroll 8
  for (int j = 0; j < NC; ++j) {
    typename S::T* c = cc + (n0 + j) * g.c_ns + m0;
#pragma GCC unroll 4
    for (int v = 0; v < MV - 1; ++v) S::store(c + v * L, acc[j][v]);
    if (tail == L)
      S::store(c + (MV - 1) * L, acc[j][MV - 1]);
    else
      S::store_n(c + (MV - 1) * L, acc[j][MV - 1], tail);
  }
}

// Rows [k0, k1) of the tile (one pair); C holds the sums over the rows before k0 unless k0 == 0.
template <class S, int MV, int NC>
void cell_tile(const GemmCall<typename S::T>& g, std::int64_t m0, std::int64_t n0, std::int64_t k0,
               std::int64_t k1) {
  using T = typename S::T;
  using V = typename S::V;
  constexpr int L = S::L;
  const std::int64_t rest = g.m - m0 - (MV - 1) * L;
  const int tail = rest < L ? static_cast<int>(rest) : L;  // lanes of the last vector
  V acc[NC][MV];
  cell_init<S>(g, m0, n0, k0, g.c, tail, acc);
  const std::int64_t ks = g.a_ks, ld = g.b_ld;
  const T* ap = g.a + g.a_off[0] + m0 + k0 * ks;
  const T* bp = g.b + g.b_off[0] + n0 + k0 * ld;
  const std::int64_t far = kCellFar * ld;
  for (std::int64_t k = k0; k < k1; ++k, ap += ks, bp += ld) {
    _mm_prefetch(reinterpret_cast<const char*>(bp + kCellAhead * ld), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(bp + kCellAhead * ld + NC - 1), _MM_HINT_T0);
    if (k + kCellFar < g.k) {
      _mm_prefetch(reinterpret_cast<const char*>(bp + far), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(bp + far + NC - 1), _MM_HINT_T1);
    }
    V x[MV];
#pragma GCC unroll 4
    for (int v = 0; v < MV - 1; ++v) x[v] = S::load(ap + v * L);
    x[MV - 1] = tail == L ? S::load(ap + (MV - 1) * L) : S::load_n(ap + (MV - 1) * L, tail);
#pragma GCC unroll 8
    for (int j = 0; j < NC; ++j) {
      const V b = S::bcast(bp + j);
#pragma GCC unroll 4
      for (int v = 0; v < MV; ++v) acc[j][v] = S::fma(b, x[v], acc[j][v]);
    }
  }
  cell_store<S>(g, m0, n0, g.c, tail, acc);
}

// Rows [k0, k1) of the tile for the pairs [p0, p1) of one set, into C at cc, A's lanes as
// a_lanes gives them and the others neither read nor accumulated. The pairs (taps of the set)
// read the same weight lines (a row holds every tap of its column in one line): only the first
// fetches them ahead.
template <class S, int MV, int NC>
void lanes_tile(const GemmCall<typename S::T>& g, std::int64_t m0, std::int64_t n0, std::int64_t k0,
                std::int64_t k1, std::int64_t p0, std::int64_t p1, typename S::T* cc) {
  using T = typename S::T;
  using V = typename S::V;
  using M = typename S::M;
  constexpr int L = S::L;
  const std::int64_t rest = g.m - m0 - (MV - 1) * L;
  const int tail = rest < L ? static_cast<int>(rest) : L;
  V acc[NC][MV];
  cell_init<S>(g, m0, n0, k0, cc, tail, acc);
  const std::int64_t ks = g.a_ks, ld = g.b_ld, ns = g.b_ns;
  const std::int64_t vecs = g.lanes_ld ? g.lanes_ld : (g.m + L - 1) / L, vec0 = m0 / L;
  const std::int64_t far = kCellFar * ld, last_col = (NC - 1) * ns;
  for (std::int64_t p = p0; p < p1; ++p) {
    // The lanes in named mask registers: GCC would otherwise reload them every step.
    const std::uint16_t* lp = g.a_lanes + p * vecs + vec0;
    register M l0 asm("k1") = static_cast<M>(lp[0]);
    register M l1 asm("k2") = MV > 1 ? static_cast<M>(lp[1]) : 0;
    register M l2 asm("k3") = MV > 2 ? static_cast<M>(lp[2]) : 0;
    register M l3 asm("k4") = MV > 3 ? static_cast<M>(lp[3]) : 0;
    if ((l0 | l1 | l2 | l3) == 0) continue;
#define TCONV_LANE(v) ((v) == 0 ? l0 : (v) == 1 ? l1 : (v) == 2 ? l2 : l3)
    const bool fetch = p == p0;
    const T* ap = g.a + g.a_off[p] + m0 + k0 * ks;
    // Columns j < 3 at bp + j * ns, the others at bp3 + (j - 3) * ns: two bases and two
    // offsets address the six (a pointer per column spills GCC's registers in the loop).
    const T* bp = g.b + g.b_off[p] + n0 * ns + k0 * ld;
    const T* bp3 = bp + 3 * ns;
    for (std::int64_t k = k0; k < k1; ++k, ap += ks, bp += ld, bp3 += ld) {
      if (fetch) {
        _mm_prefetch(reinterpret_cast<const char*>(bp + kCellAhead * ld), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(bp + kCellAhead * ld + last_col), _MM_HINT_T0);
        if (k + kCellFar < g.k) {
          _mm_prefetch(reinterpret_cast<const char*>(bp + far), _MM_HINT_T1);
          _mm_prefetch(reinterpret_cast<const char*>(bp + far + last_col), _MM_HINT_T1);
        }
      }
      V x[MV];
#pragma GCC unroll 4
      for (int v = 0; v < MV; ++v) x[v] = S::load_m(ap + v * L, TCONV_LANE(v));
#pragma GCC unroll 8
      for (int j = 0; j < NC; ++j) {
        const V w = S::bcast(j < 3 ? bp + j * ns : bp3 + (j - 3) * ns);
#pragma GCC unroll 4
        for (int v = 0; v < MV; ++v) acc[j][v] = S::fma_m(w, x[v], acc[j][v], TCONV_LANE(v));
      }
    }
#undef TCONV_LANE
  }
  cell_store<S>(g, m0, n0, cc, tail, acc);
}

// The tile of mv vectors by nc columns (1 <= mv <= MV, 1 <= nc <= NC); with a_lanes, for the
// pairs [p0, p1) into C at c.
template <class S, int MV = kCellVecs, int NC = kCellCols>
void cell_tiles(const GemmCall<typename S::T>& g, std::int64_t m0, std::int64_t n0, int mv, int nc,
                std::int64_t k0, std::int64_t k1, std::int64_t p0, std::int64_t p1,
                typename S::T* c) {
  if constexpr (MV > 0 && NC > 0) {
    if (mv < MV)
      cell_tiles<S, MV - 1, NC>(g, m0, n0, mv, nc, k0, k1, p0, p1, c);
    else if (nc < NC)
      cell_tiles<S, MV, NC - 1>(g, m0, n0, mv, nc, k0, k1, p0, p1, c);
    else if (g.a_lanes)
      lanes_tile<S, MV, NC>(g, m0, n0, k0, k1, p0, p1, c);
    else
      cell_tile<S, MV, NC>(g, m0, n0, k0, k1);
  }
}

// The columns of the tile from column n0 of n: kCellCols at a time, but two tiles' worth or less
// split in halves (8 as 4 + 4: a 2-column tile has too few accumulators; spreading wider calls
// evenly ran 2-3 % slower).
std::int64_t cell_cols(std::int64_t n, std::int64_t n0) {
  if (n0 == 0 && n > kCellCols && n <= 2 * kCellCols) return (n + 1) / 2;
  return n - n0 < kCellCols ? n - n0 : kCellCols;
}

// Per block of rows, per tile, every set of pairs (GemmCall::sets) while the tile's weight
// lines are in cache.
template <class S>
void cell_gemm(const GemmCall<typename S::T>& g) {
  constexpr int L = S::L;
  for (std::int64_t k0 = 0; k0 < g.k; k0 += kCellRows) {
    const std::int64_t k1 = g.k - k0 < kCellRows ? g.k : k0 + kCellRows;
    for (std::int64_t m0 = 0; m0 < g.m; m0 += kCellVecs * L) {
      const std::int64_t vecs = (g.m - m0 + L - 1) / L;
      const int mv = vecs < kCellVecs ? static_cast<int>(vecs) : kCellVecs;
      for (std::int64_t n0 = 0, nc = 0; n0 < g.n; n0 += nc) {
        nc = cell_cols(g.n, n0);
        for (std::int64_t s = 0; s < g.sets; ++s) {
          const std::int64_t p0 = g.set_first ? g.set_first[s] : 0;
          const std::int64_t p1 = g.set_first ? g.set_first[s + 1] : g.pairs;
          cell_tiles<S>(g, m0, n0, mv, static_cast<int>(nc), k0, k1, p0, p1, g.c + s * g.c_ss);
        }
      }
    }
  }
}

void cell_f32(const GemmCall<float>& g) { cell_gemm<F32>(g); }
void cell_f64(const GemmCall<double>& g) { cell_gemm<F64>(g); }

void channel_f32(const GemmCall<float>& g) { channel_gemm<F32, false>(g); }
void channel_f32_folded(const GemmCall<float>& g) { channel_gemm<F32, true>(g); }
void narrow_f32(const GemmCall<float>& g) { narrow_gemm<F32>(g); }
void narrow_f64(const GemmCall<double>& g) { narrow_gemm<F64>(g); }
void stream_f32(const GemmCall<float>& g) { stream_gemm<F32>(g); }
void stream_f64(const GemmCall<double>& g) { stream_gemm<F64>(g); }
void channel_f64(const GemmCall<double>& g) { channel_gemm<F64, false>(g); }
void channel_f64_folded(const GemmCall<double>& g) { channel_gemm<F64, true>(g); }

}  // namespace

KernelSet<float> kernels_f32(bool fma_halves) {
  KernelSet<float> ks = avx2::kernels_f32();
  ks.channel_gemm = fma_halves ? channel_f32_folded : channel_f32;
  ks.nr = 2 * F32::L;
  ks.phase_gemm = phase_f32;
  ks.position_in_place = true;
  ks.grid_gemm = fma_halves ? grid_f32_folded : grid_f32;
  ks.mr = kMR;
  ks.dw_pixels = dw_pixels_f32;
  ks.transpose = transpose_f32;
  ks.transpose_stream = transpose_stream_f32;
  // The AVX2 kernel's narrow panel (one ymm) stays the narrowest: on cores that split a zmm FMA
  // in two halves a ymm one costs half as much.
  ks.narrow[1] = {narrow_f32, F32::L, kNarrowMR};
  ks.cell_gemm = cell_f32;
  ks.cell_mr = kCellVecs * F32::L;
  ks.cell_lanes = F32::L;
  ks.cell_nr = kCellCols;
  ks.stream_gemm = stream_f32;
  ks.stream_mr = kStreamMR;
  return ks;
}
KernelSet<double> kernels_f64(bool fma_halves) {
  KernelSet<double> ks = avx2::kernels_f64();
  ks.channel_gemm = fma_halves ? channel_f64_folded : channel_f64;
  ks.nr = 2 * F64::L;
  ks.phase_gemm = phase_f64;
  ks.position_in_place = true;
  ks.grid_gemm = fma_halves ? grid_f64_folded : grid_f64;
  ks.mr = kMR;
  ks.dw_pixels = dw_pixels_f64;
  ks.narrow[0] = {narrow_f64, F64::L, kNarrowMR};
  ks.cell_gemm = cell_f64;
  ks.cell_mr = kCellVecs * F64::L;
  ks.cell_lanes = F64::L;
  ks.cell_nr = kCellCols;
  ks.stream_gemm = stream_f64;
  ks.stream_mr = kStreamMR;
  return ks;
}

}  // namespace tconv::kernels::avx512

#undef TCONV_ACC16
#undef TCONV_FMA2
