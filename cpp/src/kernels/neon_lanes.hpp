// What the NEON kernel files (neon_gemm.cpp, neon_phase.cpp) share: the vector operations per
// element type and the accumulator list. Internal linkage on purpose, as in the x86 files: each
// translation unit gets its own copy, so none is shared with code built with other flags
// (docs/design.md, "Per-ISA code and the ODR").
#pragma once

#include <arm_neon.h>

#include <cstdint>

namespace tconv::kernels::neon {
namespace {

// ---- per-type vector operations --------------------------------------------------------------

struct F32 {
  using T = float;
  using V = float32x4_t;
  static constexpr int L = 4;
  static V zero() { return vdupq_n_f32(0.0f); }
  static V load(const T* p) { return vld1q_f32(p); }
  static V dup(const T* p) { return vld1q_dup_f32(p); }
  // c + a * s, one rounding (the by-element FMLA).
  static V fma_n(V c, V a, T s) { return vfmaq_n_f32(c, a, s); }
  static void store(T* p, V v) { vst1q_f32(p, v); }
  // c + a * lane J of b (FMLA by element).
  template <int J>
  static V fma_lane(V c, V a, V b) {
    return vfmaq_laneq_f32(c, a, b, J);
  }
  // Lane j holds p[(F + j) * ms] for F + j < MR; the lanes past MR repeat the first (all zero
  // when F >= MR: nothing is read).
  template <int F, int MR>
  static V gather(const T* p, std::int64_t ms) {
    if constexpr (F >= MR) return zero();
    V v = vld1q_dup_f32(p + F * ms);
    if constexpr (F + 1 < MR) v = vld1q_lane_f32(p + (F + 1) * ms, v, 1);
    if constexpr (F + 2 < MR) v = vld1q_lane_f32(p + (F + 2) * ms, v, 2);
    if constexpr (F + 3 < MR) v = vld1q_lane_f32(p + (F + 3) * ms, v, 3);
    return v;
  }
  // Lanes i with base + i < n read memory, the others are zero (and touch nothing).
  static V load_first(const T* p, int base, std::int64_t n) {
    const std::int64_t cnt = n - base;
    if (cnt >= L) return vld1q_f32(p);
    V v = vdupq_n_f32(0.0f);
    if (cnt > 0) v = vld1q_lane_f32(p, v, 0);
    if (cnt > 1) v = vld1q_lane_f32(p + 1, v, 1);
    if (cnt > 2) v = vld1q_lane_f32(p + 2, v, 2);
    return v;
  }
};

struct F64 {
  using T = double;
  using V = float64x2_t;
  static constexpr int L = 2;
  static V zero() { return vdupq_n_f64(0.0); }
  static V load(const T* p) { return vld1q_f64(p); }
  static V dup(const T* p) { return vld1q_dup_f64(p); }
  static V fma_n(V c, V a, T s) { return vfmaq_n_f64(c, a, s); }
  static void store(T* p, V v) { vst1q_f64(p, v); }
  template <int J>
  static V fma_lane(V c, V a, V b) {
    return vfmaq_laneq_f64(c, a, b, J);
  }
  template <int F, int MR>
  static V gather(const T* p, std::int64_t ms) {
    if constexpr (F >= MR) return zero();
    V v = vld1q_dup_f64(p + F * ms);
    if constexpr (F + 1 < MR) v = vld1q_lane_f64(p + (F + 1) * ms, v, 1);
    return v;
  }
  static V load_first(const T* p, int base, std::int64_t n) {
    const std::int64_t cnt = n - base;
    if (cnt >= L) return vld1q_f64(p);
    V v = vdupq_n_f64(0.0);
    if (cnt > 0) v = vld1q_lane_f64(p, v, 0);
    return v;
  }
};

// Accumulators as named variables (an array of vectors tends to live in memory across the K
// loop). X(i) applies a step to accumulator i when it is in use (i < COUNT).
// clang-format off
#define TCONV_ACC24(X)                                                                  \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) \
  X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)
// clang-format on

}  // namespace
}  // namespace tconv::kernels::neon
