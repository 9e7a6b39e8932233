// Process-wide settings shared by the operator: thread count and ISA cap.
#pragma once

#include "tconv/conv_transpose.hpp"

namespace tconv::runtime {

// The ISA a call should use, given its options (process cap, TCONV_MAX_ISA, CPU support).
Isa choose_isa(const Options& options);
// The thread count a call should use: the one asked for, at most the CPUs usable.
int choose_threads(const Options& options);

}  // namespace tconv::runtime
