// Blocks of weights copied panel by panel, for the kernels that read the weights as the caller
// passed them (the direct driver, the shuffle in place) and for a channels_first plan's shuffle,
// once.
//
// In place, a row-major B's rows lie N values apart, often a multiple of 4 KiB (DCGAN's
// z -> 4x4 projection: 32 KiB): every row of a panel then maps to one set of L1 and a few of
// L2, so each tile of positions would read the panel's weights from L3 or memory again. A copy
// of a block of panels, [panel][K][nr], serves the tiles from cache, and rows of a whole block
// (several panels) rather than of one panel are runs long enough for the memory to stream.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/microkernel.hpp"

namespace tconv::kernels {

// Panels per block: up to four, their copy within a quarter of L2.
inline std::int64_t block_panels(std::int64_t K, std::int64_t nr, std::int64_t elem) {
  return std::clamp<std::int64_t>((256 << 10) / std::max<std::int64_t>(1, K * nr * elem), 1, 4);
}

// How far ahead copy_block fetches its rows (docs/design.md, "Kernels").
inline constexpr std::int64_t kRowsAhead = 8;

inline void prefetch_line(const void* p) {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, 0, 3);
#else
  (void)p;
#endif
}

// Columns [0, cols) of K rows b_ld apart, copied to buf as [panel][K][nr], zero-padded (the
// kernels read nr columns of every row).
template <class T>
void copy_block(const T* b, std::int64_t b_ld, std::int64_t K, std::int64_t cols, std::int64_t nr,
                T* buf) {
  const std::int64_t panels = (cols + nr - 1) / nr;
  constexpr std::int64_t kLine = 64 / sizeof(T);
  for (std::int64_t k = 0; k < K; ++k) {
    // Rows a power of two apart start no hardware stream: fetch the row kRowsAhead on.
    if (k + kRowsAhead < K)
      for (std::int64_t e = 0; e < cols; e += kLine) prefetch_line(b + (k + kRowsAhead) * b_ld + e);
    for (std::int64_t q = 0; q < panels; ++q) {
      const std::int64_t n = std::min(nr, cols - q * nr);
      T* dst = buf + (q * K + k) * nr;
      const T* src = b + k * b_ld + q * nr;
      // A whole row of the kernels' widths as a copy of known size, which the compiler inlines
      // (a library call per 64-128 byte row took most of the copy's time).
      if (n == 32)
        std::memcpy(dst, src, 32 * sizeof(T));
      else if (n == 16)
        std::memcpy(dst, src, 16 * sizeof(T));
      else
        std::memcpy(dst, src, static_cast<std::size_t>(n) * sizeof(T));
      for (std::int64_t j = n; j < nr; ++j) dst[j] = T(0);
    }
  }
}

// The same block from B stored by columns: column j's K values one run, columns bt_ld apart
// (Keras's (*kernel, C_out/g, C_in) weights), turned by the ISA's transpose where it has one.
template <class T>
void copy_block_by_columns(const T* bt, std::int64_t bt_ld, std::int64_t K, std::int64_t cols,
                           std::int64_t nr, TransposeFn<T> transpose, T* buf) {
  const std::int64_t panels = (cols + nr - 1) / nr;
  for (std::int64_t q = 0; q < panels; ++q) {
    const std::int64_t n = std::min(nr, cols - q * nr);
    const T* src = bt + q * nr * bt_ld;
    T* dst = buf + q * K * nr;
    if (transpose != nullptr) {
      transpose(src, bt_ld, dst, nr, n, K, false);
    } else {
      for (std::int64_t j = 0; j < n; ++j)
        for (std::int64_t k = 0; k < K; ++k) dst[k * nr + j] = src[j * bt_ld + k];
    }
    for (std::int64_t k = 0; k < K; ++k)
      for (std::int64_t j = n; j < nr; ++j) dst[k * nr + j] = T(0);
  }
}

}  // namespace tconv::kernels
