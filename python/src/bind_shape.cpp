// Shape arithmetic: one spatial dimension at a time, and whole-layer validation.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <tconv/shape.hpp>

#include "bindings.hpp"

namespace py = pybind11;

namespace tconv_py {
namespace {

tconv::PadMode parse_mode(const std::string& mode) {
  if (mode == "same") return tconv::PadMode::same;
  if (mode == "valid") return tconv::PadMode::valid;
  if (mode == "explicit") return tconv::PadMode::explicit_pads;
  throw py::value_error("padding mode must be 'same', 'valid' or 'explicit', got '" + mode + "'");
}

}  // namespace

void bind_shape(py::module_& m) {
  // tconv.ShapeError is defined in Python (so that it pickles and documents like any other
  // exception); the package hands it to set_shape_error before first use.
  static py::object shape_error = py::reinterpret_borrow<py::object>(PyExc_ValueError);
  m.def("set_shape_error", [](py::object cls) { shape_error = cls; });
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const tconv::ShapeError& e) {
      PyErr_SetString(shape_error.ptr(), e.what());
    } catch (const tconv::SizeOverflowError& e) {
      PyErr_SetString(PyExc_OverflowError, e.what());
    }
  });

  m.def("effective_kernel", &tconv::effective_kernel, py::arg("kernel"), py::arg("dilation"));
  m.def("transposed_length", &tconv::transposed_length, py::arg("input"), py::arg("kernel"),
        py::arg("stride"), py::arg("dilation"), py::arg("pad_lo"), py::arg("pad_hi"),
        py::arg("output_padding"));
  m.def("output_padding_limit", &tconv::output_padding_limit, py::arg("stride"),
        py::arg("dilation"));
  m.def("conv_length", &tconv::conv_length, py::arg("input"), py::arg("kernel"), py::arg("stride"),
        py::arg("dilation"), py::arg("pad_lo"), py::arg("pad_hi"));
  m.def(
      "resolve_keras_padding",
      [](const std::string& mode, std::int64_t kernel, std::int64_t stride, std::int64_t dilation,
         std::optional<std::int64_t> output_padding) {
        auto p = tconv::resolve_keras_padding(parse_mode(mode), kernel, stride, dilation,
                                              output_padding);
        return py::make_tuple(p.pad_lo, p.pad_hi, p.output_padding);
      },
      py::arg("mode"), py::arg("kernel"), py::arg("stride"), py::arg("dilation"),
      py::arg("output_padding") = py::none(),
      "Keras 'same'/'valid' as (pad_lo, pad_hi, output_padding) of the scatter form.");
  m.def(
      "keras_length",
      [](std::int64_t input, const std::string& mode, std::int64_t kernel, std::int64_t stride,
         std::int64_t dilation, std::optional<std::int64_t> output_padding) {
        return tconv::keras_length(input, parse_mode(mode), kernel, stride, dilation,
                                   output_padding);
      },
      py::arg("input"), py::arg("mode"), py::arg("kernel"), py::arg("stride"), py::arg("dilation"),
      py::arg("output_padding") = py::none());

  auto geometry =
      py::class_<tconv::Geometry>(m, "Geometry")
          .def_readonly("rank", &tconv::Geometry::rank)
          .def_property_readonly("channels_last",
                                 [](const tconv::Geometry& g) {
                                   return g.data_format == tconv::DataFormat::channels_last;
                                 })
          .def_readonly("batch", &tconv::Geometry::batch)
          .def_readonly("in_channels", &tconv::Geometry::in_channels)
          .def_readonly("out_channels", &tconv::Geometry::out_channels)
          .def_readonly("groups", &tconv::Geometry::groups)
          .def_readonly("input", &tconv::Geometry::input)
          .def_readonly("kernel", &tconv::Geometry::kernel)
          .def_readonly("stride", &tconv::Geometry::stride)
          .def_readonly("dilation", &tconv::Geometry::dilation)
          .def_readonly("pad_lo", &tconv::Geometry::pad_lo)
          .def_readonly("pad_hi", &tconv::Geometry::pad_hi)
          .def_readonly("output_padding", &tconv::Geometry::output_padding)
          .def_readonly("output", &tconv::Geometry::output)
          .def("input_shape", &tconv::Geometry::input_shape)
          .def("weight_shape", &tconv::Geometry::weight_shape)
          .def("output_shape", &tconv::Geometry::output_shape)
          .def("flops", &tconv::Geometry::flops);
  refuse_pickle(geometry, "pickle the arguments that resolved it, or the plan");

  auto make_spec = [](int rank, std::vector<std::int64_t> stride,
                      std::vector<std::int64_t> dilation, std::vector<std::int64_t> pad_lo,
                      std::vector<std::int64_t> pad_hi,
                      std::optional<std::vector<std::int64_t>> output_padding,
                      const std::string& mode, std::int64_t groups, bool channels_last) {
    tconv::LayerSpec s;
    s.rank = rank;
    s.stride = std::move(stride);
    s.dilation = std::move(dilation);
    s.pad_lo = std::move(pad_lo);
    s.pad_hi = std::move(pad_hi);
    s.output_padding = std::move(output_padding);
    s.pad_mode = parse_mode(mode);
    s.groups = groups;
    s.data_format =
        channels_last ? tconv::DataFormat::channels_last : tconv::DataFormat::channels_first;
    return s;
  };

  m.def(
      "resolve_geometry",
      [make_spec](const std::vector<std::int64_t>& x_shape,
                  const std::vector<std::int64_t>& weight_shape, int rank,
                  std::vector<std::int64_t> stride, std::vector<std::int64_t> dilation,
                  std::vector<std::int64_t> pad_lo, std::vector<std::int64_t> pad_hi,
                  std::optional<std::vector<std::int64_t>> output_padding, const std::string& mode,
                  std::int64_t groups, bool channels_last) {
        return tconv::resolve_geometry(
            x_shape, weight_shape,
            make_spec(rank, std::move(stride), std::move(dilation), std::move(pad_lo),
                      std::move(pad_hi), std::move(output_padding), mode, groups, channels_last));
      },
      py::arg("x_shape"), py::arg("weight_shape"), py::arg("rank"), py::arg("stride"),
      py::arg("dilation"), py::arg("pad_lo"), py::arg("pad_hi"), py::arg("output_padding"),
      py::arg("mode"), py::arg("groups"), py::arg("channels_last"));

  m.def(
      "output_padding_for_size",
      [make_spec](const std::vector<std::int64_t>& x_shape,
                  const std::vector<std::int64_t>& weight_shape, int rank,
                  std::vector<std::int64_t> stride, std::vector<std::int64_t> dilation,
                  std::vector<std::int64_t> pad_lo, std::vector<std::int64_t> pad_hi,
                  const std::string& mode, std::int64_t groups, bool channels_last,
                  const std::vector<std::int64_t>& wanted) {
        return tconv::output_padding_for_size(
            x_shape, weight_shape,
            make_spec(rank, std::move(stride), std::move(dilation), std::move(pad_lo),
                      std::move(pad_hi), std::nullopt, mode, groups, channels_last),
            wanted);
      },
      py::arg("x_shape"), py::arg("weight_shape"), py::arg("rank"), py::arg("stride"),
      py::arg("dilation"), py::arg("pad_lo"), py::arg("pad_hi"), py::arg("mode"), py::arg("groups"),
      py::arg("channels_last"), py::arg("wanted"));
}

}  // namespace tconv_py
