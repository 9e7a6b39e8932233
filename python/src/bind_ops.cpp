// The operator. Four beats per call: validate (GIL held), take the output (allocated by the
// caller in Python, GIL held), release the GIL around the one core call, return.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <tconv/conv_transpose.hpp>
#include <tconv/plan.hpp>
#include <vector>

#include "bindings.hpp"

namespace py = pybind11;

namespace tconv_py {
namespace {

std::string shape_str(const std::vector<std::int64_t>& s) {
  std::string r = "(";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

// Element strides of `a`, after checking its shape against `expected`.
template <class T>
std::vector<std::int64_t> element_strides(const py::array& a,
                                          const std::vector<std::int64_t>& expected,
                                          const char* name) {
  std::vector<std::int64_t> shape(a.shape(), a.shape() + a.ndim());
  if (shape != expected)
    throw py::value_error(std::string(name) + " has shape " + shape_str(shape) + ", expected " +
                          shape_str(expected));
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) != 0)
    throw py::value_error(std::string(name) + " is not aligned to its item size; copy it first");
  std::vector<std::int64_t> strides(static_cast<std::size_t>(a.ndim()));
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (a.strides(i) % static_cast<py::ssize_t>(sizeof(T)) != 0)
      throw py::value_error(std::string(name) +
                            " has strides that are not a multiple of its item size; copy it first");
    strides[static_cast<std::size_t>(i)] = a.strides(i) / static_cast<py::ssize_t>(sizeof(T));
  }
  return strides;
}

template <class T>
void run(const tconv::Geometry& g, const py::array& x, const py::array& w,
         const std::optional<py::array>& bias, py::array& out, const tconv::Options& opt) {
  auto xs = element_strides<T>(x, g.input_shape(), "x");
  auto ws = element_strides<T>(w, g.weight_shape(), "weight");
  auto ys = element_strides<T>(out, g.output_shape(), "out");
  if (!out.writeable()) throw py::value_error("out is read-only; pass a writeable array");
  const T* bias_ptr = nullptr;
  if (bias) {
    if (bias->ndim() != 1 || bias->shape(0) != g.out_channels ||
        !(bias->flags() & py::array::c_style))
      throw py::value_error("bias must be a contiguous array of shape (" +
                            std::to_string(g.out_channels) + ",)");
    if (reinterpret_cast<std::uintptr_t>(bias->data()) % alignof(T) != 0)
      throw py::value_error("bias is not aligned to its item size; copy it first");
    bias_ptr = static_cast<const T*>(bias->data());
  }
  const T* xp = static_cast<const T*>(x.data());
  const T* wp = static_cast<const T*>(w.data());
  T* yp = static_cast<T*>(out.mutable_data());

  run_released(opt, [&](const tconv::Options& o) {
    tconv::conv_transpose(g, xp, xs, wp, ws, bias_ptr, yp, ys, o);
  });
}

}  // namespace

void bind_ops(py::module_& m) {
  m.def(
      "conv_transpose",
      [](const tconv::Geometry& g, const py::array& x, const py::array& w,
         const std::optional<py::array>& bias, py::array out, int num_threads,
         std::optional<std::string> max_isa, std::optional<std::string> driver) {
        tconv::Options opt;
        opt.num_threads = num_threads;
        if (driver) opt.driver = *driver;
        if (max_isa) {
          opt.cap_isa = true;
          try {
            opt.max_isa = tconv::isa_from_name(*max_isa);
          } catch (const std::invalid_argument& e) {
            throw py::value_error(e.what());
          }
        }
        const auto dt = x.dtype();
        auto same = [&](const py::array& a) { return a.dtype().is(dt) || a.dtype().equal(dt); };
        if (!same(w) || !same(out) || (bias && !same(*bias)))
          throw py::type_error("x, weight, bias and out must share one dtype");
        if (dt.equal(py::dtype::of<float>())) {
          run<float>(g, x, w, bias, out, opt);
        } else if (dt.equal(py::dtype::of<double>())) {
          run<double>(g, x, w, bias, out, opt);
        } else {
          throw py::type_error("the compiled core computes float32 and float64 only");
        }
      },
      py::arg("geometry"), py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("out"),
      py::arg("num_threads") = 0, py::arg("max_isa") = py::none(), py::arg("driver") = py::none());
  m.def("drivers", &tconv::drivers, "The drivers, in the order the dispatch tries them.");

  m.def("available_isas", [] {
    std::vector<std::string> names;
    for (auto isa : tconv::available_isas()) names.emplace_back(tconv::isa_name(isa));
    return names;
  });
  m.def("compiled_isas", [] {
    std::vector<std::string> names;
    for (auto isa : tconv::compiled_isas()) names.emplace_back(tconv::isa_name(isa));
    return names;
  });
  m.def("active_isa", [] { return std::string(tconv::isa_name(tconv::active_isa())); });
  m.def("set_max_isa", [](const std::string& name) {
    try {
      tconv::set_max_isa(tconv::isa_from_name(name));
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  });
  m.def(
      "last_call_memory",
      [] {
        const auto mem = tconv::last_call_memory();
        py::dict d;
        d["scratch_bytes"] = mem.scratch_bytes;
        d["packed_weight_bytes"] = mem.packed_weight_bytes;
        d["dims_reordered"] = mem.dims_reordered;
        d["output_streamed"] = mem.output_streamed;
        d["slices"] = mem.slices;
        return d;
      },
      "Working memory of this thread's last core call, beyond x, weight, bias and y.");
  m.def(
      "last_call_isa", [] { return std::string(tconv::isa_name(tconv::last_call_isa())); },
      "The instruction set whose kernels ran this thread's last core call.");
  m.def(
      "last_call_kernel", [] { return std::string(tconv::last_call_kernel()); },
      "The driver (and its variant) that ran this thread's last core call.");
  m.def("set_num_threads", &tconv::set_num_threads, py::arg("n"));
  m.def("get_num_threads", &tconv::get_num_threads);
}

}  // namespace tconv_py
