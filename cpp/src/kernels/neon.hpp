// AArch64 NEON micro-kernels (NEON is part of the base architecture: no flags, no detection).
#pragma once

#include "kernels/microkernel.hpp"

namespace tconv::kernels::neon {

KernelSet<float> kernels_f32();
KernelSet<double> kernels_f64();
// The multi-phase kernel (neon_phase.cpp).
bool phase_f32(const PhaseCall<float>& g);
bool phase_f64(const PhaseCall<double>& g);

}  // namespace tconv::kernels::neon
