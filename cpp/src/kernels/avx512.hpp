// AVX-512F micro-kernels (compiled with -mavx512f -mavx2 -mfma; call only when the CPU and the
// OS support the 512-bit state).
#pragma once

#include "kernels/microkernel.hpp"

namespace tconv::kernels::avx512 {

// The channel-vector GEMM is the 512-bit one; the other members are the AVX2 kernels (a
// 512-bit machine runs them, and their shapes gain nothing from wider vectors).
KernelSet<float> kernels_f32();
KernelSet<double> kernels_f64();

}  // namespace tconv::kernels::avx512
