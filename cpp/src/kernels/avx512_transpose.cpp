// AVX-512F float32 transposes: 16 x 16 register blocks, their edges under lane masks.
//
// The NCHW paths transpose every input row into the kernels' channels_last rows and every
// staging row back into the output's channel planes. A 16 x 16 block does a quarter fewer
// shuffles per value than the AVX2 kernel's 8 x 8 ones, half the loads and stores, and writes
// each destination row's 16 values as one whole 64-byte store.
//
// Built with -mavx512f -mavx2 -mfma for this file only (see avx512_gemm.cpp).
// GCC 12's 512-bit unpack and shuffle intrinsics pass a self-initialised "undefined" vector,
// which -Wuninitialized reports wherever they are inlined.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "kernels/avx512.hpp"

namespace tconv::kernels::avx512 {
namespace {

// The first n lanes.
__mmask16 first(std::int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << n) - 1u);
}

// The block of `rows` x `cols` (each <= 16) at s, rows sl apart, transposed into o[0..15]: o[j]
// is column j, lanes past `rows` zero. Reads nothing outside the block.
__attribute__((always_inline)) inline void block_regs(const float* s, std::int64_t sl,
                                                      std::int64_t rows, std::int64_t cols,
                                                      __m512* o) {
  const __mmask16 k = first(cols);
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i)
    r[i] = i < rows ? _mm512_maskz_loadu_ps(k, s + i * sl) : _mm512_setzero_ps();
  // Rows 2i, 2i+1 interleaved per 128-bit lane: t[2i] holds their columns 0-1, 4-5, 8-9, 12-13.
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // Rows 4i..4i+3: r[4i + c] holds their column c, c + 4, c + 8, c + 12 (one per 128-bit lane).
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  // The 128-bit lanes gathered: column c from r[c], r[4 + c], r[8 + c], r[12 + c].
  for (int c = 0; c < 4; ++c) {
    const __m512 u0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);
    const __m512 u1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xDD);
    const __m512 u2 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88);
    const __m512 u3 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xDD);
    o[c] = _mm512_shuffle_f32x4(u0, u2, 0x88);
    o[c + 8] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
    o[c + 4] = _mm512_shuffle_f32x4(u1, u3, 0x88);
    o[c + 12] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
  }
}

// dst[j * dl + i] = src[i * sl + j] for the block's i < rows, j < cols. STREAM: whole rows on
// a line go out with streaming stores (the caller fences).
template <bool STREAM>
__attribute__((always_inline)) inline void block(const float* s, std::int64_t sl, float* d,
                                                 std::int64_t dl, std::int64_t rows,
                                                 std::int64_t cols) {
  __m512 o[16];
  block_regs(s, sl, rows, cols, o);
  const __mmask16 k = first(rows);
  const bool stream =
      STREAM && rows == 16 && (reinterpret_cast<std::uintptr_t>(d) & 63) == 0 && (dl & 15) == 0;
  for (int j = 0; j < 16; ++j) {
    if (j >= cols) break;
    if (stream)
      _mm512_stream_ps(d + j * dl, o[j]);
    else if (rows == 16)
      _mm512_storeu_ps(d + j * dl, o[j]);
    else
      _mm512_mask_storeu_ps(d + j * dl, k, o[j]);
  }
}

template <bool STREAM>
void transpose(const float* src, std::int64_t sl, float* dst, std::int64_t dl, std::int64_t rows,
               std::int64_t cols, bool dst_order) {
  constexpr std::int64_t B = 16;
  const auto at = [&](std::int64_t i, std::int64_t j) {
    block<STREAM>(src + i * sl + j, sl, dst + j * dl + i, dl, rows - i < B ? rows - i : B,
                  cols - j < B ? cols - j : B);
  };
  if (dst_order) {
    for (std::int64_t j = 0; j < cols; j += B)
      for (std::int64_t i = 0; i < rows; i += B) at(i, j);
  } else {
    // The source sweeps row bands in place (an NCHW input's channel rows, in main memory): the
    // next band's lines are fetched while this one is transposed.
    for (std::int64_t i = 0; i < rows; i += B)
      for (std::int64_t j = 0; j < cols; j += B) {
        for (std::int64_t r = i + B; r < i + 2 * B && r < rows; ++r)
          _mm_prefetch(reinterpret_cast<const char*>(src + r * sl + j), _MM_HINT_T0);
        at(i, j);
      }
  }
}

}  // namespace

void transpose_f32(const float* src, std::int64_t sl, float* dst, std::int64_t dl,
                   std::int64_t rows, std::int64_t cols, bool dst_order) {
  transpose<false>(src, sl, dst, dl, rows, cols, dst_order);
}
void transpose_stream_f32(const float* src, std::int64_t sl, float* dst, std::int64_t dl,
                          std::int64_t rows, std::int64_t cols, bool dst_order) {
  transpose<true>(src, sl, dst, dl, rows, cols, dst_order);
}

}  // namespace tconv::kernels::avx512
