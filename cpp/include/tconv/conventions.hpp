// The padding rules of each framework, one spatial dimension at a time.
//
// Every rule resolves a framework's way of saying "how long is the output" to the three numbers
// of the scatter form in shape.hpp (pad_lo, pad_hi, output_padding) and the resulting length,
// built on transposed_length / conv_length / resolve_keras_padding. The whole-layer dialects
// (argument names, defaults, validation order, messages) live in tconv.shapes (Python).
//
// In these rules pad_lo / pad_hi may be negative: ONNX pads and JAX explicit pads can extend
// the uncropped result instead of cropping it, and transposed_length handles that directly.
//
// Measured against: torch 2.13, Keras 3.15 (TensorFlow 2.21 backend), tf.nn 2.21,
// onnxruntime 1.32, jax 0.10 (tests/conformance/ holds the golden file).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>

#include "tconv/shape.hpp"

namespace tconv {

// A resolved dimension: where the crop goes and the length that results.
struct DimResult {
  DimPadding padding;
  std::int64_t output = 0;
};

// An inclusive interval of lengths; empty when lo > hi.
struct LengthRange {
  std::int64_t lo = 0;
  std::int64_t hi = -1;
  bool contains(std::int64_t v) const { return lo <= v && v <= hi; }
  bool empty() const { return lo > hi; }
};

// ---- PyTorch ----------------------------------------------------------------------------------

// ConvTransposeNd with symmetric padding p: (input-1)*s - 2p + d*(k-1) + 1 + output_padding.
std::int64_t torch_length(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                          std::int64_t dilation, std::int64_t padding, std::int64_t output_padding);

// The sizes output_size= may ask for: [length with output_padding 0, that + stride - 1].
// (PyTorch spans one stride, even when the dilation would allow a larger output_padding.)
LengthRange torch_output_size_range(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                                    std::int64_t dilation, std::int64_t padding);

// ---- TensorFlow (tf.nn.conv_transpose; also what Keras' TensorFlow backend runs) -------------

enum class TfPadding { same, valid, explicit_pads };

// TensorFlow's forward convolution of an input of length `input`: the output length and the
// padding TensorFlow adds (SAME: total max((out-1)*s + k_eff - input, 0), the odd cell at the
// end; VALID: none; explicit: the given pair).
struct ConvResult {
  std::int64_t output = 0;
  std::int64_t pad_lo = 0;
  std::int64_t pad_hi = 0;
};
ConvResult tf_conv(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                   std::int64_t dilation, TfPadding mode, std::int64_t pad_lo = 0,
                   std::int64_t pad_hi = 0);

// tf.nn.conv_transpose takes the output length as an argument and checks that the forward
// convolution of that length gives back `input` ("Size of out_backprop doesn't match
// computed"). These are the lengths it accepts: one stride wide.
LengthRange tf_transposed_range(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                                std::int64_t dilation, TfPadding mode, std::int64_t pad_lo = 0,
                                std::int64_t pad_hi = 0);

// The scatter form of an accepted (input, output) pair: the crop TensorFlow applies on each side
// and the cells added at the end. Throws ShapeError when `output` is not accepted.
DimResult tf_transposed(std::int64_t input, std::int64_t output, std::int64_t kernel,
                        std::int64_t stride, std::int64_t dilation, TfPadding mode,
                        std::int64_t pad_lo = 0, std::int64_t pad_hi = 0);

// ---- ONNX (as onnxruntime runs ConvTranspose) ------------------------------------------------

enum class OnnxAutoPad { notset, same_upper, same_lower, valid };

// Without output_shape: NOTSET uses pads; VALID crops nothing; SAME_UPPER / SAME_LOWER crop the
// uncropped result down to input * stride whatever output_padding says (onnxruntime; ONNX shape
// inference adds output_padding), the odd cropped cell at the end for SAME_UPPER, at the start
// for SAME_LOWER; when the uncropped result is already shorter than that, nothing is cropped.
// With output_shape (any auto_pad): the output is output_shape, the total crop
// (input-1)*s + k_eff + output_padding - output_shape goes with the odd cell at the start,
// except SAME_UPPER (at the end); pads are ignored. The length may come out <= 0; callers
// report that.
DimResult onnx_resolve(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                       std::int64_t dilation, std::int64_t output_padding, OnnxAutoPad auto_pad,
                       std::int64_t pad_lo, std::int64_t pad_hi,
                       std::optional<std::int64_t> output_shape);

// The output_shape values onnxruntime accepts: the forward convolution of the output (no
// padding) must not need more than `input` cells, i.e. 1 <= output <= input*s + k_eff - 1.
LengthRange onnx_output_shape_range(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                                    std::int64_t dilation);

// ---- JAX (jax.lax.conv_transpose) ------------------------------------------------------------

enum class JaxPadding { same, valid, explicit_pads };

// conv_transpose pads the stride-dilated input and runs a forward convolution: these are the
// pads (before, after) of that dilated input, from 'SAME'/'VALID' or an explicit pair. The
// kernel is the dilated one; transpose_kernel does not change the padding.
std::pair<std::int64_t, std::int64_t> jax_dilated_input_padding(
    std::int64_t kernel, std::int64_t stride, std::int64_t dilation, JaxPadding mode,
    std::int64_t lo = 0, std::int64_t hi = 0);

// The output length: max(0, (input-1)*s + 1 + before + after - k_eff + 1), with the scatter-form
// crop (k_eff - 1 - before, k_eff - 1 - after). JAX returns an empty dimension rather than an
// error when the kernel does not fit; it raises only when the padded input itself is negative
// (padded_input < 0 below).
struct JaxDim {
  DimResult result;
  std::int64_t padded_input = 0;  // (input-1)*s + 1 + before + after
};
JaxDim jax_resolve(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                   std::int64_t dilation, JaxPadding mode, std::int64_t lo = 0,
                   std::int64_t hi = 0);

}  // namespace tconv
