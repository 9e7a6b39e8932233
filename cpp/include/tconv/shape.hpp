// Shape arithmetic of transposed convolution: the one place where the formulas live.
//
// Everything here is plain int64 arithmetic, checked for overflow, with no allocation beyond
// small vectors. The operator (conv_transpose.hpp) and the Python bindings both call these
// functions; nothing else in the project re-derives an output length.
//
// Vocabulary, per spatial dimension (the "scatter" form of the operation):
//
//     y[i*stride + k*dilation - pad_lo] += x[i] * w[k]       for 0 <= i < input, 0 <= k < kernel
//
// The full (uncropped) result has length (input - 1) * stride + dilation * (kernel - 1) + 1.
// pad_lo cells are cropped at the start, pad_hi at the end, and output_padding cells are added
// at the end (they only ever receive the bias):
//
//     output = (input - 1) * stride + dilation * (kernel - 1) + 1 - pad_lo - pad_hi +
//     output_padding
//
// Every framework convention ("same", auto_pad, output_shape=...) resolves to these three
// numbers per dimension; see resolve_* below.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace tconv {

// An impossible configuration. The message says what was expected, what was received and how to
// fix it. Python sees it as tconv.ShapeError (a ValueError).
class ShapeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// A shape whose element count or byte size does not fit the address space; Python sees
// OverflowError.
class SizeOverflowError : public std::overflow_error {
 public:
  using std::overflow_error::overflow_error;
};

// Errors as values, for callers that do not use exceptions: ok() or error() with the same
// message the throwing form would carry.
template <class T>
class Result {
 public:
  static Result success(T value) { return Result(std::move(value), std::string()); }
  static Result failure(std::string message) { return Result(std::nullopt, std::move(message)); }
  bool ok() const { return value_.has_value(); }
  const T& value() const {
    if (!value_) throw ShapeError(error_);
    return *value_;
  }
  const std::string& error() const { return error_; }

 private:
  Result(std::optional<T> v, std::string e) : value_(std::move(v)), error_(std::move(e)) {}
  std::optional<T> value_;
  std::string error_;
};

// ---- checked integer arithmetic -------------------------------------------------------------

// a * b and a + b, or SizeOverflowError naming `what`.
std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* what);
std::int64_t checked_add(std::int64_t a, std::int64_t b, const char* what);
std::int64_t checked_sub(std::int64_t a, std::int64_t b, const char* what);
// Product of all entries (1 for an empty list), overflow-checked.
std::int64_t checked_product(const std::vector<std::int64_t>& values, const char* what);

// ---- one spatial dimension ------------------------------------------------------------------

// The span of a dilated kernel: dilation * (kernel - 1) + 1.
std::int64_t effective_kernel(std::int64_t kernel, std::int64_t dilation);

// The transposed-convolution output length (formula above). No sign checks: the result may be
// zero or negative, which callers report in their own words. Throws SizeOverflowError only.
std::int64_t transposed_length(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                               std::int64_t dilation, std::int64_t pad_lo, std::int64_t pad_hi,
                               std::int64_t output_padding);

// output_padding with explicit padding must stay below this: max(stride, dilation) (PyTorch's
// and ONNX's bound; resolve_geometry checks it).
std::int64_t output_padding_limit(std::int64_t stride, std::int64_t dilation);

// The forward convolution output length floor((input + lo + hi - effective_kernel) / stride) + 1
// (it may be <= 0 when the padded input is shorter than the kernel).
std::int64_t conv_length(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                         std::int64_t dilation, std::int64_t pad_lo, std::int64_t pad_hi);

// Resolved per-dimension geometry (the three numbers of the formula).
struct DimPadding {
  std::int64_t pad_lo = 0;
  std::int64_t pad_hi = 0;
  std::int64_t output_padding = 0;
};

// Keras 3 "same" / "valid" (Conv{1,2,3}DTranspose, identical on every backend that runs it).
// output_padding empty means Keras' None (its own inference). The split of the cropped cells
// between the two sides is the one TensorFlow uses (extra cell cropped at the end); the JAX and
// torch backends of Keras 3 give the same numbers. pad_hi < 0 never appears: cells beyond the
// uncropped result are expressed as output_padding.
enum class PadMode { explicit_pads, same, valid };
DimPadding resolve_keras_padding(PadMode mode, std::int64_t kernel, std::int64_t stride,
                                 std::int64_t dilation, std::optional<std::int64_t> output_padding);

// Length of a Keras 3 transposed layer along one dimension (Keras' deconv_output_length).
std::int64_t keras_length(std::int64_t input, PadMode mode, std::int64_t kernel,
                          std::int64_t stride, std::int64_t dilation,
                          std::optional<std::int64_t> output_padding);

// ---- whole layer ----------------------------------------------------------------------------

enum class DataFormat { channels_first, channels_last };

// How padding was given, per spatial dimension. For PadMode::explicit_pads, pad_lo/pad_hi hold
// the crop of each side (PyTorch's padding=p is pad_lo = pad_hi = p). For same/valid they are
// ignored and derived by resolve_keras_padding. output_padding empty = None.
struct LayerSpec {
  int rank = 0;  // spatial dimensions
  std::vector<std::int64_t> stride, dilation, pad_lo, pad_hi;
  std::optional<std::vector<std::int64_t>> output_padding;
  PadMode pad_mode = PadMode::explicit_pads;
  std::int64_t groups = 1;
  DataFormat data_format = DataFormat::channels_first;
};

// A validated problem: everything the operator needs, all sizes known and consistent.
struct Geometry {
  int rank = 0;
  DataFormat data_format = DataFormat::channels_first;
  std::int64_t batch = 0, in_channels = 0, out_channels = 0, groups = 1;
  std::vector<std::int64_t> input, kernel, stride, dilation;  // spatial, length rank
  std::vector<std::int64_t> pad_lo, pad_hi, output_padding;   // resolved, all >= 0
  std::vector<std::int64_t> output;                           // spatial output lengths

  // Full shapes in the data format's own axis order (batch first).
  std::vector<std::int64_t> input_shape() const;
  std::vector<std::int64_t> weight_shape() const;
  std::vector<std::int64_t> output_shape() const;
  // 2 * N * C_in * (C_out / groups) * prod(input) * prod(kernel).
  double flops() const;
};

// Validate a layer against batched input and weight shapes (x: (N, C, *spatial) or
// (N, *spatial, C); weight: (C_in, C_out/g, *k) or (*k, C_out/g, C_in)) and compute the output.
// Throws ShapeError with a message that says what was expected, received, and the fix.
// The output_padding limit is PyTorch's (op < max(stride, dilation)) for explicit pads and
// Keras' (op < stride) for same/valid.
Geometry resolve_geometry(const std::vector<std::int64_t>& x_shape,
                          const std::vector<std::int64_t>& weight_shape, const LayerSpec& spec);
Result<Geometry> try_resolve_geometry(const std::vector<std::int64_t>& x_shape,
                                      const std::vector<std::int64_t>& weight_shape,
                                      const LayerSpec& spec);

// PyTorch's output_size=: the output_padding per dimension that makes `geometry` produce the
// wanted spatial sizes (with output_padding taken as 0 in `spec`). ShapeError lists the
// reachable sizes when a wanted size cannot be reached.
std::vector<std::int64_t> output_padding_for_size(const std::vector<std::int64_t>& x_shape,
                                                  const std::vector<std::int64_t>& weight_shape,
                                                  const LayerSpec& spec,
                                                  const std::vector<std::int64_t>& wanted);

}  // namespace tconv
