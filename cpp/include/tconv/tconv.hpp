// tconv: transposed convolution (deconvolution) with exact shape arithmetic.
//
//   #include <tconv/tconv.hpp>
//
//   tconv::LayerSpec spec;                 // a ConvTranspose2d(8, 4, 3, stride=2, padding=1)
//   spec.rank = 2;
//   spec.stride = {2, 2};
//   spec.dilation = {1, 1};
//   spec.pad_lo = spec.pad_hi = {1, 1};
//   tconv::Geometry g = tconv::resolve_geometry({1, 8, 5, 5}, {8, 4, 3, 3}, spec);
//   std::vector<float> y(g.output_shape()[0] * ...);  // (1, 4, 9, 9)
//   tconv::conv_transpose(g, x, {}, w, {}, bias, y.data(), {});
//
// Only the standard library is included; no Python anywhere.
#pragma once

#include "tconv/conv_transpose.hpp"
#include "tconv/conventions.hpp"
#include "tconv/plan.hpp"
#include "tconv/shape.hpp"
#include "tconv/version.hpp"
