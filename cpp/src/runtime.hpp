// Process-wide settings shared by the operator: thread count and ISA cap.
#pragma once

#include "tconv/conv_transpose.hpp"

namespace tconv::runtime {

// The ISA a call should use, given its options (process cap, TCONV_MAX_ISA, CPU support).
Isa choose_isa(const Options& options);
// The thread count a call should use: the one asked for, at most the CPUs usable.
int choose_threads(const Options& options);

// The driver and variant that ran this thread's last call (a static string), as
// last_call_kernel() reports it: set where each driver commits to a layer.
void note_kernel(const char* name);
const char* noted_kernel();

}  // namespace tconv::runtime
