// Framework conventions (PyTorch, TensorFlow, ONNX, JAX padding rules) exposed to tconv.shapes.
// Each function handles one spatial dimension; tconv.shapes adds the whole-layer dialects.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <tconv/conventions.hpp>

#include "bindings.hpp"

namespace py = pybind11;

namespace tconv_py {
namespace {

tconv::TfPadding parse_tf(const std::string& mode) {
  if (mode == "SAME") return tconv::TfPadding::same;
  if (mode == "VALID") return tconv::TfPadding::valid;
  if (mode == "EXPLICIT") return tconv::TfPadding::explicit_pads;
  throw py::value_error("TensorFlow padding must be 'SAME', 'VALID' or 'EXPLICIT', got '" + mode +
                        "'");
}

tconv::OnnxAutoPad parse_onnx(const std::string& mode) {
  if (mode == "NOTSET") return tconv::OnnxAutoPad::notset;
  if (mode == "SAME_UPPER") return tconv::OnnxAutoPad::same_upper;
  if (mode == "SAME_LOWER") return tconv::OnnxAutoPad::same_lower;
  if (mode == "VALID") return tconv::OnnxAutoPad::valid;
  throw py::value_error("auto_pad must be NOTSET, SAME_UPPER, SAME_LOWER or VALID, got '" + mode +
                        "'");
}

tconv::JaxPadding parse_jax(const std::string& mode) {
  if (mode == "SAME") return tconv::JaxPadding::same;
  if (mode == "VALID") return tconv::JaxPadding::valid;
  if (mode == "EXPLICIT") return tconv::JaxPadding::explicit_pads;
  throw py::value_error("JAX padding must be 'SAME', 'VALID' or 'EXPLICIT', got '" + mode + "'");
}

py::tuple dim_tuple(const tconv::DimResult& r) {
  return py::make_tuple(r.output, r.padding.pad_lo, r.padding.pad_hi, r.padding.output_padding);
}

py::tuple range_tuple(const tconv::LengthRange& r) { return py::make_tuple(r.lo, r.hi); }

}  // namespace

void bind_conventions(py::module_& m) {
  m.def("torch_length", &tconv::torch_length, py::arg("input"), py::arg("kernel"),
        py::arg("stride"), py::arg("dilation"), py::arg("padding"), py::arg("output_padding"));
  m.def(
      "torch_output_size_range",
      [](std::int64_t input, std::int64_t kernel, std::int64_t stride, std::int64_t dilation,
         std::int64_t padding) {
        return range_tuple(
            tconv::torch_output_size_range(input, kernel, stride, dilation, padding));
      },
      py::arg("input"), py::arg("kernel"), py::arg("stride"), py::arg("dilation"),
      py::arg("padding"), "(lo, hi) of the sizes output_size= accepts.");
  m.def(
      "tf_conv",
      [](std::int64_t input, std::int64_t kernel, std::int64_t stride, std::int64_t dilation,
         const std::string& mode, std::int64_t pad_lo, std::int64_t pad_hi) {
        auto r = tconv::tf_conv(input, kernel, stride, dilation, parse_tf(mode), pad_lo, pad_hi);
        return py::make_tuple(r.output, r.pad_lo, r.pad_hi);
      },
      py::arg("input"), py::arg("kernel"), py::arg("stride"), py::arg("dilation"), py::arg("mode"),
      py::arg("pad_lo") = 0, py::arg("pad_hi") = 0,
      "TensorFlow's forward convolution: (output, pad_lo, pad_hi).");
  m.def(
      "tf_transposed_range",
      [](std::int64_t input, std::int64_t kernel, std::int64_t stride, std::int64_t dilation,
         const std::string& mode, std::int64_t pad_lo, std::int64_t pad_hi) {
        return range_tuple(tconv::tf_transposed_range(input, kernel, stride, dilation,
                                                      parse_tf(mode), pad_lo, pad_hi));
      },
      py::arg("input"), py::arg("kernel"), py::arg("stride"), py::arg("dilation"), py::arg("mode"),
      py::arg("pad_lo") = 0, py::arg("pad_hi") = 0,
      "(lo, hi) of the output lengths tf.nn.conv_transpose accepts for `input`.");
  m.def(
      "tf_transposed",
      [](std::int64_t input, std::int64_t output, std::int64_t kernel, std::int64_t stride,
         std::int64_t dilation, const std::string& mode, std::int64_t pad_lo, std::int64_t pad_hi) {
        return dim_tuple(tconv::tf_transposed(input, output, kernel, stride, dilation,
                                              parse_tf(mode), pad_lo, pad_hi));
      },
      py::arg("input"), py::arg("output"), py::arg("kernel"), py::arg("stride"),
      py::arg("dilation"), py::arg("mode"), py::arg("pad_lo") = 0, py::arg("pad_hi") = 0,
      "(output, pad_lo, pad_hi, output_padding) of an accepted tf.nn output length.");
  m.def(
      "onnx_resolve",
      [](std::int64_t input, std::int64_t kernel, std::int64_t stride, std::int64_t dilation,
         std::int64_t output_padding, const std::string& auto_pad, std::int64_t pad_lo,
         std::int64_t pad_hi, std::optional<std::int64_t> output_shape) {
        return dim_tuple(tconv::onnx_resolve(input, kernel, stride, dilation, output_padding,
                                             parse_onnx(auto_pad), pad_lo, pad_hi, output_shape));
      },
      py::arg("input"), py::arg("kernel"), py::arg("stride"), py::arg("dilation"),
      py::arg("output_padding"), py::arg("auto_pad"), py::arg("pad_lo"), py::arg("pad_hi"),
      py::arg("output_shape") = py::none(),
      "(output, pad_lo, pad_hi, output_padding) as onnxruntime resolves ConvTranspose.");
  m.def(
      "onnx_output_shape_range",
      [](std::int64_t input, std::int64_t kernel, std::int64_t stride, std::int64_t dilation) {
        return range_tuple(tconv::onnx_output_shape_range(input, kernel, stride, dilation));
      },
      py::arg("input"), py::arg("kernel"), py::arg("stride"), py::arg("dilation"));
  m.def(
      "jax_resolve",
      [](std::int64_t input, std::int64_t kernel, std::int64_t stride, std::int64_t dilation,
         const std::string& mode, std::int64_t lo, std::int64_t hi) {
        auto r = tconv::jax_resolve(input, kernel, stride, dilation, parse_jax(mode), lo, hi);
        auto pads =
            tconv::jax_dilated_input_padding(kernel, stride, dilation, parse_jax(mode), lo, hi);
        return py::make_tuple(r.result.output, r.result.padding.pad_lo, r.result.padding.pad_hi,
                              r.padded_input, pads.first, pads.second);
      },
      py::arg("input"), py::arg("kernel"), py::arg("stride"), py::arg("dilation"), py::arg("mode"),
      py::arg("lo") = 0, py::arg("hi") = 0,
      "(output, pad_lo, pad_hi, padded_input, before, after) of jax.lax.conv_transpose.");
}

}  // namespace tconv_py
