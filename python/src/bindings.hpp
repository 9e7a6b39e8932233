// The pieces of the _core extension module; each binding file fills one.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <tconv/conv_transpose.hpp>
#include <vector>

namespace tconv_py {

// Runs core(options) with the GIL released and Ctrl-C honoured. On the main thread (the only
// one Python runs signal handlers on) the core asks every ~20 ms: the GIL is taken and the
// handlers run; one that raises (KeyboardInterrupt) stops the core call, and its exception is
// raised here once the GIL is back. y is then partly written.
template <class Core>
void run_released(tconv::Options options, const Core& core) {
  const auto ident = pybind11::module_::import("threading").attr("main_thread")().attr("ident");
  if (ident.cast<unsigned long>() == PyThread_get_thread_ident())
    options.interrupt = [] {
      pybind11::gil_scoped_acquire gil;
      return PyErr_CheckSignals() != 0;  // the exception stays set on this thread
    };
  try {
    pybind11::gil_scoped_release release;
    core(options);
  } catch (const tconv::Interrupted&) {
    if (PyErr_Occurred()) throw pybind11::error_already_set();
    throw;
  }
}

// pickle and copy of a core object: a TypeError saying what to pickle instead (without this,
// pickle protocols 0 and 1 abort the process inside pybind11).
template <class Class>
void refuse_pickle(Class& cls, const char* instead) {
  const std::string message = std::string("tconv._core.") +
                              pybind11::cast<std::string>(cls.attr("__name__")) +
                              " cannot be pickled or copied; " + instead;
  cls.def("__reduce_ex__", [message](const pybind11::object&, const pybind11::object&) {
    throw pybind11::type_error(message);
  });
}

// An uninitialised C-contiguous array of `shape` and `dtype` whose data starts on a 64-byte
// line (the kernels store whole 64-byte vectors; numpy's own allocations start 16 bytes into
// one); large ones reuse the buffers of dropped results (bind_results.cpp).
pybind11::array result_array(const std::vector<pybind11::ssize_t>& shape,
                             const pybind11::dtype& dtype);

void bind_shape(pybind11::module_& m);
void bind_ops(pybind11::module_& m);
void bind_conventions(pybind11::module_& m);
void bind_plan(pybind11::module_& m);
void bind_bench(pybind11::module_& m);
void bind_info(pybind11::module_& m);
void bind_results(pybind11::module_& m);
}  // namespace tconv_py
