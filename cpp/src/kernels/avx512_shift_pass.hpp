// What the AVX-512 shift-group and grid tiles (avx512_phase_groups.cpp, avx512_grid.hpp) share:
// the pass over one shift's input vectors and the switch over its phase mask. Only for files
// built with -mavx512f, after avx512_lanes.hpp; internal linkage, as there.
#pragma once

#include <cstdint>

#include "kernels/avx512_lanes.hpp"

namespace tconv::kernels::avx512 {
namespace {

using F32 = F32Lanes;
using F64 = F64Lanes;

constexpr int kMaxGroup = 8;

#ifndef TCONV_KCHUNK
#define TCONV_KCHUNK 4
#endif
constexpr std::int64_t kChunk = TCONV_KCHUNK;

// Inside a tile function's pass over k (x, kmu, last, MV and MASKED in scope): the input
// vectors x0..x5 of one shift, loaded under the shift's lane masks where a window cuts the
// tile, else whole but for the tile's last vector. An input vector feeds up to four phases:
// kept in a register (TCONV_PIN), or GCC folds its (mostly line-split) load into each of their
// FMAs.
#define TCONV_LOAD(v)                       \
  if constexpr ((v) < MV) {                 \
    if constexpr (MASKED)                   \
      x##v = S::loadm(x + (v) * L, kmu[v]); \
    else if constexpr ((v) == MV - 1)       \
      x##v = S::loadm(x + (v) * L, last);   \
    else                                    \
      x##v = S::load(x + (v) * L);          \
  }
#define TCONV_PIN(v) \
  if constexpr ((v) < MV) __asm__("" : "+v"(x##v));
#define TCONV_LOAD_VECTORS \
  TCONV_LOAD(0)            \
  TCONV_LOAD(1)            \
  TCONV_LOAD(2)            \
  TCONV_LOAD(3)            \
  TCONV_LOAD(4)            \
  TCONV_LOAD(5)            \
  TCONV_PIN(0)             \
  TCONV_PIN(1)             \
  TCONV_PIN(2)             \
  TCONV_PIN(3)             \
  TCONV_PIN(4)             \
  TCONV_PIN(5)
// The switch cases over a shift's phase mask (TCONV_CASE defined by the tile function).
#define TCONV_MASK_CASES \
  TCONV_CASE(1)          \
  TCONV_CASE(2)          \
  TCONV_CASE(3)          \
  TCONV_CASE(4)          \
  TCONV_CASE(5)          \
  TCONV_CASE(6)          \
  TCONV_CASE(7)          \
  TCONV_CASE(8)          \
  TCONV_CASE(9)          \
  TCONV_CASE(10)         \
  TCONV_CASE(11)         \
  TCONV_CASE(12)         \
  TCONV_CASE(13)         \
  TCONV_CASE(14)         \
  TCONV_CASE(15)

}  // namespace
}  // namespace tconv::kernels::avx512
