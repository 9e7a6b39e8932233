// Process-wide settings shared by the operator: thread count and ISA cap.
#pragma once

#include "tconv/conv_transpose.hpp"

namespace tconv::runtime {

// The ISA a call should use, given its options (process cap, TCONV_MAX_ISA, CPU support).
Isa choose_isa(const Options& options);
// The thread count a call should use: the one asked for, at most the CPUs usable.
int choose_threads(const Options& options);

// Whether the CPU executes a 512-bit FMA as two 256-bit halves (AMD Zen 4), which decides the
// form of some AVX-512 kernels; cores with whole 512-bit FMA pipes (Intel's, Zen 5) answer no.
bool fma_in_halves();

// The driver and variant that ran this thread's last call (a static string), as
// last_call_kernel() reports it: set where each driver commits to a layer.
void note_kernel(const char* name);
const char* noted_kernel();
// Whether this thread's last call wrote its output with streaming stores
// (CallMemory::output_streamed): set where a driver commits to them, cleared at each call.
void note_output_streamed(bool streamed);
bool noted_output_streamed();
// The input bytes this thread's last call copied into row buffers
// (CallMemory::input_copy_bytes): set by the phase driver, cleared at each call.
void note_input_copied(std::size_t bytes);
std::size_t noted_input_copied();

}  // namespace tconv::runtime
