// The pieces of the _core extension module; each binding file fills one.
#pragma once

#include <pybind11/pybind11.h>

namespace tconv_py {
void bind_shape(pybind11::module_& m);
void bind_ops(pybind11::module_& m);
void bind_conventions(pybind11::module_& m);
void bind_plan(pybind11::module_& m);
void bind_bench(pybind11::module_& m);
void bind_info(pybind11::module_& m);
}  // namespace tconv_py
