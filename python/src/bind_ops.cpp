// The operator. Four beats per call: validate (GIL held), take the output (allocated by the
// caller in Python, GIL held), release the GIL around the one core call, return.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <tconv/conv_transpose.hpp>
#include <tconv/plan.hpp>
#include <unordered_map>
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

// ---- repeated functional calls ------------------------------------------------------------
// The resolution of each functional call the full Python path completed (see _api.py), kept by
// the values of its arguments, so that a repeat goes from Python to the kernels in one call.
// Keys are made only from operands the full path passes to the core as they are (plain aligned
// ndarrays of one native float dtype, the bias contiguous) and layer arguments that are exact
// ints, strings, None, or lists and tuples of exact ints: True and 2.0 equal 1 and 2 in Python
// but are refused as sizes, so they take the full path and its errors.

struct Known {
  tconv::Geometry geometry;
  std::vector<py::ssize_t> y_shape;  // batched
  bool batched = true;
};

constexpr std::size_t kMaxKnown = 256;
constexpr int kAligned = 0x0100, kCContiguous = 0x0001;  // NPY_ARRAY_ALIGNED, _C_CONTIGUOUS

std::mutex g_known_mutex;
std::unordered_map<std::string, Known> g_known;

void put(std::string& key, std::int64_t v) {
  key.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// An exact int within int64 appended to key, or false.
bool put_int(std::string& key, PyObject* v) {
  if (!PyLong_CheckExact(v)) return false;
  int overflow = 0;
  const long long n = PyLong_AsLongLongAndOverflow(v, &overflow);
  if (overflow != 0 || (n == -1 && PyErr_Occurred())) {
    PyErr_Clear();
    return false;
  }
  put(key, n);
  return true;
}

bool put_arg(std::string& key, PyObject* v) {
  if (v == Py_None) {
    key.push_back('n');
    return true;
  }
  if (PyLong_CheckExact(v)) {
    key.push_back('i');
    return put_int(key, v);
  }
  if (PyUnicode_CheckExact(v)) {
    Py_ssize_t len = 0;
    const char* text = PyUnicode_AsUTF8AndSize(v, &len);
    if (text == nullptr) {
      PyErr_Clear();
      return false;
    }
    key.push_back('s');
    put(key, len);
    key.append(text, static_cast<std::size_t>(len));
    return true;
  }
  if (!PyTuple_CheckExact(v) && !PyList_CheckExact(v)) return false;
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(v);
  PyObject** items = PySequence_Fast_ITEMS(v);
  key.push_back('t');
  put(key, n);
  for (Py_ssize_t i = 0; i < n; ++i)
    if (!put_int(key, items[i])) return false;
  return true;
}

bool is_ndarray(const py::handle& a) {
  static PyTypeObject* const ndarray = reinterpret_cast<PyTypeObject*>(
      py::object(py::module_::import("numpy").attr("ndarray")).release().ptr());
  return Py_TYPE(a.ptr()) == ndarray;
}

// The operand as a plain ndarray of `dtype` with all of `flags`, its shape appended to key.
bool put_array(std::string& key, const py::handle& a, const py::dtype& dtype, int flags) {
  if (!is_ndarray(a)) return false;
  const auto arr = py::reinterpret_borrow<py::array>(a);
  if (!arr.dtype().is(dtype) || (arr.flags() & flags) != flags) return false;
  put(key, arr.ndim());
  for (py::ssize_t i = 0; i < arr.ndim(); ++i) put(key, arr.shape(i));
  return true;
}

// The key of a call (x, w, b, the layer arguments), or false where it takes the full path.
bool make_key(const py::handle& x, const py::handle& w, const py::handle& b, const py::tuple& args,
              std::string& key) {
  // Handles that are never released: no reference is dropped after the interpreter is gone.
  static const py::handle f32 = py::dtype::of<float>().release();
  static const py::handle f64 = py::dtype::of<double>().release();
  if (!is_ndarray(x)) return false;
  const py::dtype dtype = py::reinterpret_borrow<py::array>(x).dtype();
  const bool f = dtype.is(f32), d = dtype.is(f64);
  if (!f && !d) return false;
  key.push_back(f ? 'f' : 'd');
  if (!put_array(key, x, dtype, kAligned) || !put_array(key, w, dtype, kAligned)) return false;
  if (b.is_none())
    key.push_back('-');
  else if (!put_array(key, b, dtype, kAligned | kCContiguous))
    return false;
  for (const auto& v : args)
    if (!put_arg(key, v.ptr())) return false;
  return true;
}

// The same array with a leading axis of 1, or without its leading axis (one of 1).
py::array with_batch(const py::array& a, bool add) {
  std::vector<py::ssize_t> shape(a.shape(), a.shape() + a.ndim());
  std::vector<py::ssize_t> strides(a.strides(), a.strides() + a.ndim());
  if (add) {
    shape.insert(shape.begin(), 1);
    strides.insert(strides.begin(), a.itemsize());
  } else {
    shape.erase(shape.begin());
    strides.erase(strides.begin());
  }
  return py::array(a.dtype(), shape, strides, a.data(), a);
}

// The call's result if its layer was resolved before, else None.
py::object repeat(const py::handle& x, const py::handle& w, const py::handle& b,
                  const py::tuple& args) {
  std::string key;
  if (!make_key(x, w, b, args, key)) return py::none();
  Known known;
  {
    std::lock_guard<std::mutex> lock(g_known_mutex);
    const auto it = g_known.find(key);
    if (it == g_known.end()) return py::none();
    known = it->second;
  }
  const auto xa = py::reinterpret_borrow<py::array>(x);
  const auto wa = py::reinterpret_borrow<py::array>(w);
  std::optional<py::array> bias;
  if (!b.is_none()) bias = py::reinterpret_borrow<py::array>(b);
  py::array y = result_array(known.y_shape, xa.dtype());
  const py::array xb = known.batched ? xa : with_batch(xa, true);
  if (xa.itemsize() == sizeof(float))
    run<float>(known.geometry, xb, wa, bias, y, tconv::Options{});
  else
    run<double>(known.geometry, xb, wa, bias, y, tconv::Options{});
  return known.batched ? y : with_batch(y, false);
}

void remember(const py::handle& x, const py::handle& w, const py::handle& b, const py::tuple& args,
              const tconv::Geometry& geometry, const std::vector<py::ssize_t>& y_shape,
              bool batched) {
  std::string key;
  if (!make_key(x, w, b, args, key)) return;
  std::lock_guard<std::mutex> lock(g_known_mutex);
  if (g_known.size() >= kMaxKnown) g_known.clear();
  g_known[key] = Known{geometry, y_shape, batched};
}

}  // namespace

void bind_ops(py::module_& m) {
  m.def("repeat", &repeat, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("args"),
        "The functional call's result where remember() kept its layer's resolution, else None.");
  m.def("remember", &remember, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("args"),
        py::arg("geometry"), py::arg("y_shape"), py::arg("batched"),
        "Keeps a completed functional call's resolution for repeat() (plain calls only).");
  m.def(
      "forget_repeats",
      [] {
        std::lock_guard<std::mutex> lock(g_known_mutex);
        g_known.clear();
      },
      "Drops every resolution remember() kept.");
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
        d["input_copy_bytes"] = mem.input_copy_bytes;
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
