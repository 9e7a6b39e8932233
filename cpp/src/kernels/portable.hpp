// Portable C++ kernels: run on any CPU, and handle every geometry.
#pragma once

#include "kernels/problem.hpp"

namespace tconv::kernels::portable {

void conv_transpose(const Problem<float>& p);
void conv_transpose(const Problem<double>& p);

}  // namespace tconv::kernels::portable
