// Checks at the entry of the public operator, before any kernel touches memory.
//
// A Geometry is a plain struct that a caller can build or edit by hand, and the pointers and
// strides come from wherever the caller got them. The kernels assume a consistent problem, so
// everything they rely on is checked here, in O(rank) time and without touching the data.
// What is checked is listed in tconv/conv_transpose.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tconv/shape.hpp"

namespace tconv::detail {

// Throws ShapeError (an inconsistent geometry), SizeOverflowError (sizes or strides whose
// offsets do not fit in 64 bits) or std::invalid_argument (stride vectors, pointers, overlap).
void validate_call(const Geometry& g, const void* x, const std::vector<std::int64_t>& x_strides,
                   const void* weight, const std::vector<std::int64_t>& weight_strides,
                   const void* bias, const void* y, const std::vector<std::int64_t>& y_strides,
                   std::size_t item_size);

}  // namespace tconv::detail
