#include "tconv/conv_transpose.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <stdexcept>

#include "kernels/portable.hpp"
#include "runtime.hpp"

namespace tconv {
namespace {

std::vector<std::int64_t> contiguous_strides(const std::vector<std::int64_t>& shape) {
  std::vector<std::int64_t> s(shape.size());
  std::int64_t acc = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    s[i] = acc;
    acc *= std::max<std::int64_t>(shape[i], 1);
  }
  return s;
}

std::vector<std::int64_t> strides_or_default(const std::vector<std::int64_t>& strides,
                                             const std::vector<std::int64_t>& shape,
                                             const char* name) {
  if (strides.empty()) return contiguous_strides(shape);
  if (strides.size() != shape.size()) {
    throw std::invalid_argument(std::string(name) + " strides must have one entry per axis (" +
                                std::to_string(shape.size()) + "), got " +
                                std::to_string(strides.size()));
  }
  return strides;
}

template <class T>
void run(const Geometry& g, const T* x, const std::vector<std::int64_t>& x_strides,
         const T* weight, const std::vector<std::int64_t>& weight_strides, const T* bias, T* y,
         const std::vector<std::int64_t>& y_strides, const Options& options) {
  kernels::Problem<T> p;
  p.g = &g;
  p.x = x;
  p.w = weight;
  p.bias = bias;
  p.y = y;
  p.x_strides = strides_or_default(x_strides, g.input_shape(), "x");
  p.w_strides = strides_or_default(weight_strides, g.weight_shape(), "weight");
  p.y_strides = strides_or_default(y_strides, g.output_shape(), "y");
  const std::int64_t y_elems = checked_product(g.output_shape(), "the output size");
  if (y_elems == 0) return;
  (void)options;
  kernels::portable::conv_transpose(p);
}

}  // namespace

void conv_transpose(const Geometry& g, const float* x, const std::vector<std::int64_t>& x_strides,
                    const float* weight, const std::vector<std::int64_t>& weight_strides,
                    const float* bias, float* y, const std::vector<std::int64_t>& y_strides,
                    const Options& options) {
  run(g, x, x_strides, weight, weight_strides, bias, y, y_strides, options);
}

void conv_transpose(const Geometry& g, const double* x,
                    const std::vector<std::int64_t>& x_strides, const double* weight,
                    const std::vector<std::int64_t>& weight_strides, const double* bias,
                    double* y, const std::vector<std::int64_t>& y_strides,
                    const Options& options) {
  run(g, x, x_strides, weight, weight_strides, bias, y, y_strides, options);
}

}  // namespace tconv
