// AVX2 + FMA micro-kernels (compiled with -mavx2 -mfma; call only when the CPU has both).
#pragma once

#include "kernels/microkernel.hpp"

namespace tconv::kernels::avx2 {

KernelSet<float> kernels_f32();
KernelSet<double> kernels_f64();

}  // namespace tconv::kernels::avx2
