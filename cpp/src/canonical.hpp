// An equivalent form of a layer that the drivers run faster: its spatial dims reordered and the
// trivial ones dropped, and a one-channel channels_last layer taken as channels_first, with x,
// weight and y addressed through permuted strides (no copy).
//
// Dims are independent in a transposed convolution, so any order of them gives the same
// outputs, and a dim with one input cell, one tap, one output cell and no crop contributes
// nothing. The drivers vectorise and block along the last dim: a 1-wide last dim (a signal
// stored as (N, C, L, 1)) or a narrow one beside a long one (a tall kernel over 8 columns) left
// them one call per tap of the long dim for a single output cell -- seconds for layers torch
// runs in milliseconds.
#pragma once

#include <cstdint>
#include <vector>

#include "tconv/shape.hpp"

namespace tconv::detail {

struct CanonicalLayer {
  Geometry g;
  std::vector<std::int64_t> x_strides, w_strides, y_strides;
};

// Whether `g` has an equivalent form that runs faster; if so, writes it (strides in elements,
// one per axis of the full shapes, as given).
bool canonical_layer(const Geometry& g, const std::vector<std::int64_t>& x_strides,
                     const std::vector<std::int64_t>& w_strides,
                     const std::vector<std::int64_t>& y_strides, CanonicalLayer* out);

}  // namespace tconv::detail
