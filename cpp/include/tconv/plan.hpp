// A transposed-convolution layer whose weights are validated and packed once.
//
//   tconv::LayerSpec spec;                       // stride, padding, ... as for resolve_geometry
//   tconv::ConvTransposePlan<float> plan(w_shape, w, {}, bias, spec);
//   tconv::Geometry g = plan.geometry(x_shape);  // validates the input shape
//   std::vector<float> y(tconv::checked_product(g.output_shape(), "y"));
//   plan.run(g, x, {}, y.data(), {});
//
// The plan copies what it needs from `weight` and `bias`: the caller's buffers may be freed
// after construction. run() is const and may be called from several threads at once. Results
// are the numbers tconv::conv_transpose gives for the same arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "tconv/conv_transpose.hpp"
#include "tconv/shape.hpp"

namespace tconv {

template <class T>
class ConvTransposePlan {
 public:
  // weight_shape and weight_strides (elements; empty = C-contiguous) in the spec's data format.
  // Throws ShapeError when the weight and spec cannot form a layer.
  ConvTransposePlan(const std::vector<std::int64_t>& weight_shape, const T* weight,
                    const std::vector<std::int64_t>& weight_strides, const T* bias,
                    const LayerSpec& spec);
  // The same layer described by a geometry made for any input (its explicit, resolved padding).
  ConvTransposePlan(const Geometry& g, const T* weight,
                    const std::vector<std::int64_t>& weight_strides, const T* bias);
  ~ConvTransposePlan();
  ConvTransposePlan(ConvTransposePlan&&) noexcept;
  ConvTransposePlan& operator=(ConvTransposePlan&&) noexcept;

  // The validated geometry for a batched input shape (ShapeError otherwise).
  Geometry geometry(const std::vector<std::int64_t>& x_shape) const;
  // Same, with PyTorch's output_size= choosing the output padding.
  Geometry geometry_for_size(const std::vector<std::int64_t>& x_shape,
                             const std::vector<std::int64_t>& wanted) const;

  // Runs on a geometry obtained from this plan (std::invalid_argument otherwise).
  void run(const Geometry& g, const T* x, const std::vector<std::int64_t>& x_strides, T* y,
           const std::vector<std::int64_t>& y_strides, const Options& options = {}) const;

  const LayerSpec& spec() const;
  const std::vector<std::int64_t>& weight_shape() const;
  // The plan's own copy of the weights: C-contiguous, of weight_shape(), alive with the plan.
  const T* weight() const;
  // Bytes held for the packed weights (all ISAs packed so far).
  std::size_t packed_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

extern template class ConvTransposePlan<float>;
extern template class ConvTransposePlan<double>;

}  // namespace tconv
