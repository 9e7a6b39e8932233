// AVX2 + FMA micro-kernels (compiled with -mavx2 -mfma; call only when the CPU has both).
#pragma once

#include "kernels/microkernel.hpp"

namespace tconv::kernels::avx2 {

KernelSet<float> kernels_f32();
// The depthwise kernels (avx2_depthwise.cpp).
void dw_rows_f32(const DwRowsCall<float>& c);
void dw_rows_f64(const DwRowsCall<double>& c);
void dw_pixels_f32(const DwPixelsCall<float>& c);
void dw_pixels_f64(const DwPixelsCall<double>& c);
// The multi-phase kernel (the AVX-512 one hands it the calls it does no better).
bool phase_f32(const PhaseCall<float>& g);
bool phase_f64(const PhaseCall<double>& g);

KernelSet<double> kernels_f64();

}  // namespace tconv::kernels::avx2
