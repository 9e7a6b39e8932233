// Depthwise transposed convolution (one input channel per group): a bandwidth-bound driver.
//
// Such a layer does ~2 flops per byte of input and output, so the phase driver's per-group
// GEMMs with K = 1 leave it far from memory speed. Here each output element is accumulated in
// registers from the bias over its few taps and stored once; the input is read in place.
//
// channels_first: every output channel is an independent transposed convolution of input
// channel co / (C_out / groups). Per output row (all spatial dims but the last) the taps of the
// outer dims give a few (input row, kernel row) pairs; along the row each phase
// o = s*q + r is a dense stride-1 correlation over the input row, which the row kernel
// vectorises along q. The few outputs near the row ends whose taps leave the input are done
// here, by scalar code. With stride 2 and kernel 4 (padding 1) or 2 along the row, runs of output
// row pairs that read the same input rows are listed once per call, for kernels that compute both
// rows of a pair from each loaded vector.
//
// channels_last (one output channel per group only, channels contiguous in x and y): per
// output pixel, its taps (a product of per-dim lists) are accumulated over vectors of channels
// from weights packed [tap][channel].
//
// Work is split over (image, channel, output row block) or (image, output row, pixel block):
// disjoint outputs, each computed in a fixed order, so results never depend on the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "buffer.hpp"
#include "kernels/microkernel.hpp"
#include "kernels/problem.hpp"

namespace tconv::kernels::depthwise {

// Weights packed for one layout: channels_first [C_out][taps], channels_last [taps][C_out]
// (taps row-major over the kernel dims).
template <class T>
struct Packed {
  DataFormat data_format = DataFormat::channels_first;
  std::vector<std::int64_t> kernel;
  std::int64_t channels = 0;
  detail::Buffer<T> data;
  std::size_t size = 0;

  bool matches(const Geometry& g) const;
  std::size_t bytes() const { return size * sizeof(T); }
};

// Whether this driver takes the layer: C_in / groups == 1, rank 1 to 3, tap tables and row
// buffers on `threads` threads within detail::scratch_budget; channels_last also needs
// C_out / groups == 1 and contiguous channels in x and y.
template <class T>
bool applies(const Problem<T>& p, int threads);

template <class T>
Packed<T> pack(const Geometry& g, const T* w, const std::vector<std::int64_t>& w_strides);

// The scalar row and pixel kernels (any CPU), for when no ISA kernel is available.
template <class T>
DwRowsFn<T> portable_rows();
template <class T>
DwPixelsFn<T> portable_pixels();

// Runs the layer on up to `threads` threads. Returns the scratch bytes used (tap tables and
// per-thread buffers), for the memory accounting.
template <class T>
std::size_t run(const Problem<T>& p, const Packed<T>& packed, DwRowsFn<T> rows,
                DwPixelsFn<T> pixels, int threads);

}  // namespace tconv::kernels::depthwise
