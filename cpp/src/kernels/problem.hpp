// What every kernel receives: a validated geometry and raw pointers with element strides
// (one per axis of the full shape, in the geometry's data format).
#pragma once

#include <cstdint>
#include <vector>

#include "tconv/shape.hpp"

namespace tconv::kernels {

template <class T>
struct Problem {
  const Geometry* g = nullptr;
  const T* x = nullptr;
  const T* w = nullptr;
  const T* bias = nullptr;  // C_out contiguous values, or null
  T* y = nullptr;
  std::vector<std::int64_t> x_strides, w_strides, y_strides;
};

}  // namespace tconv::kernels
