// AVX-512F micro-kernels (compiled with -mavx512f -mavx2 -mfma; call only when the CPU and the
// OS support the 512-bit state).
#pragma once

#include "kernels/microkernel.hpp"

namespace tconv::kernels::avx512 {

// The channel-vector GEMM, the multi-phase kernel and the channels_last depthwise kernel are
// the 512-bit ones; the other members are the AVX2 kernels (a 512-bit machine runs them, and
// they did no better at this width).
// fma_halves: the CPU executes a 512-bit FMA as two 256-bit halves (runtime::fma_in_halves);
// the channel GEMM and the grid kernel then fold broadcasts into FMAs (see avx512_gemm.cpp).
KernelSet<float> kernels_f32(bool fma_halves);
KernelSet<double> kernels_f64(bool fma_halves);

// The multi-phase kernel (avx512_phase.cpp); it reads nothing past the row buffer's rows
// itself, and hands the calls of one vector or less to the AVX2 kernel (which, without row
// windows, reads up to one 256-bit vector past them: position_tile stays the AVX2 one).
bool phase_f32(const PhaseCall<float>& g);
bool phase_f64(const PhaseCall<double>& g);
// The multi-phase kernel over groups of shifts (avx512_phase_groups.cpp): phase_f32/f64 hand it
// every call with group > 1. Returns false when it has no kernel for (n, phases).
bool groups_f32(const PhaseCall<float>& g);
bool groups_f64(const PhaseCall<double>& g);
// Every phase of the last two dims at once, reading the input in place (avx512_grid_f32.cpp,
// avx512_grid_f64.cpp).
// The _folded forms for cores that split a 512-bit FMA in two (see kernels_f32).
bool grid_f32(const GridCall<float>& g);
bool grid_f64(const GridCall<double>& g);
bool grid_f32_folded(const GridCall<float>& g);
bool grid_f64_folded(const GridCall<double>& g);
// float32 transposes in 16 x 16 blocks (avx512_transpose.cpp), as KernelSet::transpose and
// transpose_stream.
void transpose_f32(const float* src, std::int64_t sl, float* dst, std::int64_t dl,
                   std::int64_t rows, std::int64_t cols, bool dst_order);
void transpose_stream_f32(const float* src, std::int64_t sl, float* dst, std::int64_t dl,
                          std::int64_t rows, std::int64_t cols, bool dst_order);
// The channels_last depthwise kernel (avx512_depthwise.cpp).
void dw_pixels_f32(const DwPixelsCall<float>& c);
void dw_pixels_f64(const DwPixelsCall<double>& c);

}  // namespace tconv::kernels::avx512
