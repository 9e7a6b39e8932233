// tconv.ConvTranspose's compiled half: a C++ plan per dtype. Validation and argument parsing
// stay in Python (shared with tconv.conv_transpose); this file only owns the packed weights and
// runs them with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <tconv/plan.hpp>
#include <vector>

#include "bindings.hpp"

namespace py = pybind11;

namespace tconv_py {
namespace {

template <class T>
std::vector<std::int64_t> strides_of(const py::array& a) {
  std::vector<std::int64_t> s(static_cast<std::size_t>(a.ndim()));
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (a.strides(i) % static_cast<py::ssize_t>(sizeof(T)) != 0)
      throw py::value_error("array strides must be a multiple of the item size; copy it first");
    s[static_cast<std::size_t>(i)] = a.strides(i) / static_cast<py::ssize_t>(sizeof(T));
  }
  return s;
}

std::vector<std::int64_t> shape_of(const py::array& a) {
  return std::vector<std::int64_t>(a.shape(), a.shape() + a.ndim());
}

class Plan {
 public:
  Plan(const tconv::Geometry& g, const py::array& w, const std::optional<py::array>& bias) {
    if (shape_of(w) != g.weight_shape()) throw py::value_error("weight does not fit the geometry");
    if (bias && (bias->ndim() != 1 || bias->shape(0) != g.out_channels ||
                 !(bias->flags() & py::array::c_style)))
      throw py::value_error("bias must be a contiguous array of shape (C_out,)");
    if (w.dtype().equal(py::dtype::of<float>())) {
      f32_ = make<float>(g, w, bias);
    } else if (w.dtype().equal(py::dtype::of<double>())) {
      f64_ = make<double>(g, w, bias);
    } else {
      throw py::type_error("the compiled core computes float32 and float64 only");
    }
  }

  void run(const tconv::Geometry& g, const py::array& x, py::array& out) {
    if (f32_) {
      call<float>(*f32_, g, x, out);
    } else {
      call<double>(*f64_, g, x, out);
    }
  }

  std::size_t packed_bytes() const { return f32_ ? f32_->packed_bytes() : f64_->packed_bytes(); }

  // A read-only array over the plan's copy of the weights, keeping `owner` (this plan) alive.
  py::array weight(const py::object& owner) const {
    py::array a = f32_ ? view(*f32_, owner) : view(*f64_, owner);
    py::detail::array_proxy(a.ptr())->flags &= ~py::detail::npy_api::NPY_ARRAY_WRITEABLE_;
    return a;
  }

 private:
  template <class T>
  static std::unique_ptr<tconv::ConvTransposePlan<T>> make(const tconv::Geometry& g,
                                                           const py::array& w,
                                                           const std::optional<py::array>& b) {
    if (b && !b->dtype().equal(py::dtype::of<T>()))
      throw py::type_error("bias must have the weight's dtype");
    return std::make_unique<tconv::ConvTransposePlan<T>>(
        g, static_cast<const T*>(w.data()), strides_of<T>(w),
        b ? static_cast<const T*>(b->data()) : nullptr);
  }

  template <class T>
  static py::array view(const tconv::ConvTransposePlan<T>& plan, const py::object& owner) {
    const std::vector<std::int64_t>& shape = plan.weight_shape();
    return py::array_t<T>(std::vector<py::ssize_t>(shape.begin(), shape.end()), plan.weight(),
                          owner);
  }

  template <class T>
  static void call(const tconv::ConvTransposePlan<T>& plan, const tconv::Geometry& g,
                   const py::array& x, py::array& out) {
    if (!x.dtype().equal(py::dtype::of<T>()) || !out.dtype().equal(py::dtype::of<T>()))
      throw py::type_error("x and out must have the plan's dtype");
    if (shape_of(x) != g.input_shape() || shape_of(out) != g.output_shape())
      throw py::value_error("x or out does not fit the geometry");
    if (!out.writeable()) throw py::value_error("out is read-only; pass a writeable array");
    const auto xs = strides_of<T>(x);
    const auto ys = strides_of<T>(out);
    const T* xp = static_cast<const T*>(x.data());
    T* yp = static_cast<T*>(out.mutable_data());
    run_released({}, [&](const tconv::Options& o) { plan.run(g, xp, xs, yp, ys, o); });
  }

  std::unique_ptr<tconv::ConvTransposePlan<float>> f32_;
  std::unique_ptr<tconv::ConvTransposePlan<double>> f64_;
};

}  // namespace

void bind_plan(py::module_& m) {
  auto plan =
      py::class_<Plan>(m, "Plan")
          .def(
              py::init<const tconv::Geometry&, const py::array&, const std::optional<py::array>&>(),
              py::arg("geometry"), py::arg("weight"), py::arg("bias"))
          .def("run", &Plan::run, py::arg("geometry"), py::arg("x"), py::arg("out"))
          .def_property_readonly("packed_bytes", &Plan::packed_bytes)
          .def_property_readonly(
              "weight",
              [](const py::object& self) { return self.cast<const Plan&>().weight(self); },
              "The plan's own copy of the weights, read-only (C-contiguous).");
  refuse_pickle(plan, "pickle the tconv.ConvTranspose that holds it");
}

}  // namespace tconv_py
