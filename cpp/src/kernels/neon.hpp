// AArch64 NEON micro-kernels (NEON is part of the base architecture: no flags, no detection).
#pragma once

#include "kernels/microkernel.hpp"

namespace tconv::kernels::neon {

KernelSet<float> kernels_f32();
KernelSet<double> kernels_f64();

}  // namespace tconv::kernels::neon
