// The AVX-512F side of the throughput probe (compiled with -mavx512f -mavx2 -mfma, like
// avx512_gemm.cpp): on cores that split a 512-bit FMA in two it measures what the AVX2 probe does,
// on cores with full-width 512-bit FMA units up to twice that, and the avx512 kernels run there.
//
// Twelve independent chains: an FMA has a latency of 4-5 cycles and current x86 cores issue two
// per cycle, so at least 8-10 chains must be in flight to keep both ports busy. Each chain is
// acc = acc * m + c with 0 < m < 1, which converges to c / (1 - m): no overflow, no denormals,
// and no algebra the compiler may fold (no -ffast-math, and the chains are loop-carried).
// Intrinsics only: no inline function or template is shared with baseline code.
#include <immintrin.h>

#include "peak.hpp"

#define TCONV_PEAK12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

namespace tconv::kernels::avx512 {

double fma_chains_f32(std::int64_t iters) {
  const __m512 m = _mm512_set1_ps(0.999f);
  const __m512 c = _mm512_set1_ps(0.001f);
#define TCONV_INIT(i) __m512 a##i = _mm512_set1_ps(static_cast<float>(i));
  TCONV_PEAK12(TCONV_INIT)
#undef TCONV_INIT
  for (std::int64_t it = 0; it < iters; ++it) {
#define TCONV_STEP(i) a##i = _mm512_fmadd_ps(a##i, m, c);
    TCONV_PEAK12(TCONV_STEP)
#undef TCONV_STEP
  }
  __m512 s = _mm512_setzero_ps();
#define TCONV_SUM(i) s = _mm512_add_ps(s, a##i);
  TCONV_PEAK12(TCONV_SUM)
#undef TCONV_SUM
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  double total = 0;
  for (float v : lanes) total += v;
  return total;
}

double fma_chains_f64(std::int64_t iters) {
  const __m512d m = _mm512_set1_pd(0.999);
  const __m512d c = _mm512_set1_pd(0.001);
#define TCONV_INIT(i) __m512d a##i = _mm512_set1_pd(static_cast<double>(i));
  TCONV_PEAK12(TCONV_INIT)
#undef TCONV_INIT
  for (std::int64_t it = 0; it < iters; ++it) {
#define TCONV_STEP(i) a##i = _mm512_fmadd_pd(a##i, m, c);
    TCONV_PEAK12(TCONV_STEP)
#undef TCONV_STEP
  }
  __m512d s = _mm512_setzero_pd();
#define TCONV_SUM(i) s = _mm512_add_pd(s, a##i);
  TCONV_PEAK12(TCONV_SUM)
#undef TCONV_SUM
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, s);
  double total = 0;
  for (double v : lanes) total += v;
  return total;
}

}  // namespace tconv::kernels::avx512

#undef TCONV_PEAK12
