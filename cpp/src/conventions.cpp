#include "tconv/conventions.hpp"

#include <algorithm>
#include <limits>
#include <sstream>

namespace tconv {
namespace {

// The crop of the scatter form that turns `input` cells into `output` cells when `pad_lo`
// cells are cropped at the start: whatever is left over is cropped at the end, and a shortfall
// is added at the end as output_padding.
DimResult split_end(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                    std::int64_t dilation, std::int64_t pad_lo, std::int64_t output) {
  const std::int64_t full = transposed_length(input, kernel, stride, dilation, 0, 0, 0);
  DimResult r;
  r.padding.pad_lo = pad_lo;
  const std::int64_t rest =
      checked_sub(full, checked_add(pad_lo, output, "the output length"), "the output length");
  if (rest >= 0) {
    r.padding.pad_hi = rest;
  } else {
    r.padding.output_padding = checked_sub(0, rest, "the output length");
  }
  r.output = output;
  return r;
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}

}  // namespace

std::int64_t torch_length(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                          std::int64_t dilation, std::int64_t padding,
                          std::int64_t output_padding) {
  return transposed_length(input, kernel, stride, dilation, padding, padding, output_padding);
}

LengthRange torch_output_size_range(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                                    std::int64_t dilation, std::int64_t padding) {
  LengthRange r;
  r.lo = torch_length(input, kernel, stride, dilation, padding, 0);
  r.hi = checked_add(r.lo, stride - 1, "the largest output_size");
  return r;
}

ConvResult tf_conv(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                   std::int64_t dilation, TfPadding mode, std::int64_t pad_lo,
                   std::int64_t pad_hi) {
  ConvResult r;
  const std::int64_t k = effective_kernel(kernel, dilation);
  switch (mode) {
    case TfPadding::valid:
      r.output = conv_length(input, kernel, stride, dilation, 0, 0);
      break;
    case TfPadding::same: {
      r.output = floor_div(checked_add(input, stride - 1, "the SAME output length"), stride);
      const std::int64_t need = std::max<std::int64_t>(
          0,
          checked_add(checked_mul(checked_sub(r.output, 1, "SAME padding"), stride, "SAME padding"),
                      checked_sub(k, input, "SAME padding"), "SAME padding"));
      r.pad_lo = need / 2;
      r.pad_hi = need - r.pad_lo;
      break;
    }
    case TfPadding::explicit_pads:
      r.pad_lo = pad_lo;
      r.pad_hi = pad_hi;
      r.output = conv_length(input, kernel, stride, dilation, pad_lo, pad_hi);
      break;
  }
  return r;
}

LengthRange tf_transposed_range(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                                std::int64_t dilation, TfPadding mode, std::int64_t pad_lo,
                                std::int64_t pad_hi) {
  // The forward length is non-decreasing in its input and grows by one every `stride` cells, so
  // the inputs that give back `input` form one run of `stride` lengths starting at the smallest.
  LengthRange r;
  const std::int64_t k = effective_kernel(kernel, dilation);
  const std::int64_t base = checked_mul(input - 1, stride, "the transposed output length");
  switch (mode) {
    case TfPadding::same:
      r.lo = checked_add(base, 1, "the transposed output length");
      break;
    case TfPadding::valid:
      r.lo = checked_add(base, k, "the transposed output length");
      break;
    case TfPadding::explicit_pads:
      r.lo = transposed_length(input, kernel, stride, dilation, pad_lo, pad_hi, 0);
      break;
  }
  r.hi = checked_add(r.lo, stride - 1, "the transposed output length");
  // Lengths are never negative (explicit padding may make 0 acceptable).
  r.lo = std::max<std::int64_t>(r.lo, 0);
  return r;
}

DimResult tf_transposed(std::int64_t input, std::int64_t output, std::int64_t kernel,
                        std::int64_t stride, std::int64_t dilation, TfPadding mode,
                        std::int64_t pad_lo, std::int64_t pad_hi) {
  const ConvResult fwd = tf_conv(output, kernel, stride, dilation, mode, pad_lo, pad_hi);
  if (fwd.output != input) {
    std::ostringstream m;
    m << "Size of out_backprop doesn't match computed: actual = " << input
      << ", computed = " << fwd.output << " (the forward convolution of the requested output "
      << output << " gives " << fwd.output << ", not " << input << ")";
    throw ShapeError(m.str());
  }
  return split_end(input, kernel, stride, dilation, fwd.pad_lo, output);
}

DimResult onnx_resolve(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                       std::int64_t dilation, std::int64_t output_padding, OnnxAutoPad auto_pad,
                       std::int64_t pad_lo, std::int64_t pad_hi,
                       std::optional<std::int64_t> output_shape) {
  const std::int64_t full =
      transposed_length(input, kernel, stride, dilation, 0, 0, output_padding);
  DimResult r;
  r.padding.output_padding = output_padding;
  // onnxruntime never pads outward: a negative total crop becomes 0, and an output longer than
  // the uncropped result gets the missing cells at the end (as output_padding does).
  auto split = [&](std::int64_t total, bool odd_at_end) {
    if (total < 0) {
      r.padding.output_padding = checked_sub(output_padding, total, "output_padding");
      total = 0;
    }
    const std::int64_t half = total / 2;
    r.padding.pad_lo = odd_at_end ? half : total - half;
    r.padding.pad_hi = total - r.padding.pad_lo;
  };
  if (output_shape) {
    // Measured on onnxruntime 1.32: y[0] is the cell at offset total - total/2 of the full
    // result for NOTSET, VALID and SAME_LOWER, and at total/2 for SAME_UPPER.
    split(checked_sub(full, *output_shape, "the ONNX crop"), auto_pad == OnnxAutoPad::same_upper);
    r.output = *output_shape;
    return r;
  }
  switch (auto_pad) {
    case OnnxAutoPad::notset:
      r.padding.pad_lo = pad_lo;
      r.padding.pad_hi = pad_hi;
      break;
    case OnnxAutoPad::valid:
      break;
    case OnnxAutoPad::same_upper:
    case OnnxAutoPad::same_lower: {
      // input * stride, unless the uncropped result is shorter (kernel + output_padding <
      // stride): onnxruntime then crops nothing and the output stays at the uncropped length.
      const std::int64_t target = checked_mul(input, stride, "the SAME output length");
      const std::int64_t total = checked_sub(full, target, "the ONNX crop");
      if (total > 0) split(total, auto_pad == OnnxAutoPad::same_upper);
      break;
    }
  }
  r.output = transposed_length(input, kernel, stride, dilation, r.padding.pad_lo, r.padding.pad_hi,
                               output_padding);
  return r;
}

LengthRange onnx_output_shape_range(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                                    std::int64_t dilation) {
  LengthRange r;
  r.lo = 1;
  r.hi = checked_add(checked_mul(input, stride, "the largest output_shape"),
                     effective_kernel(kernel, dilation) - 1, "the largest output_shape");
  return r;
}

std::pair<std::int64_t, std::int64_t> jax_dilated_input_padding(std::int64_t kernel,
                                                                std::int64_t stride,
                                                                std::int64_t dilation,
                                                                JaxPadding mode, std::int64_t lo,
                                                                std::int64_t hi) {
  const std::int64_t k = effective_kernel(kernel, dilation);
  const char* what = "JAX's padding";
  std::int64_t pad_len = 0, before = 0;
  switch (mode) {
    case JaxPadding::same:
      pad_len = checked_sub(checked_add(k, stride, what), 2, what);
      // (pad_len + 1) / 2, without overflowing at the top of the range.
      before = stride > k - 1                                        ? k - 1
               : pad_len == std::numeric_limits<std::int64_t>::max() ? pad_len / 2 + 1
                                                                     : (pad_len + 1) / 2;
      break;
    case JaxPadding::valid:
      pad_len = checked_add(checked_sub(checked_add(k, stride, what), 2, what),
                            std::max<std::int64_t>(checked_sub(k, stride, what), 0), what);
      before = k - 1;
      break;
    case JaxPadding::explicit_pads:
      // Explicit pairs pad the dilated input directly (use_consistent_padding=False).
      return {lo, hi};
  }
  return {before, pad_len - before};
}

JaxDim jax_resolve(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                   std::int64_t dilation, JaxPadding mode, std::int64_t lo, std::int64_t hi) {
  const auto pads = jax_dilated_input_padding(kernel, stride, dilation, mode, lo, hi);
  const std::int64_t k = effective_kernel(kernel, dilation);
  JaxDim r;
  const char* what = "the padded input length";
  r.padded_input = checked_add(
      checked_add(checked_add(checked_mul(checked_sub(input, 1, what), stride, what), 1, what),
                  pads.first, what),
      pads.second, what);
  r.result.padding.pad_lo = checked_sub(k - 1, pads.first, what);
  r.result.padding.pad_hi = checked_sub(k - 1, pads.second, what);
  r.result.output =
      std::max<std::int64_t>(0, checked_add(checked_sub(r.padded_input, k, what), 1, what));
  return r;
}

}  // namespace tconv
