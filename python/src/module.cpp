#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "tconv's compiled core; use the tconv package, not this module.";
#ifdef TCONV_VERSION_INFO
  m.attr("__version__") = TCONV_VERSION_INFO;
#endif
  tconv_py::bind_shape(m);
  tconv_py::bind_ops(m);
  tconv_py::bind_conventions(m);
  tconv_py::bind_plan(m);
  tconv_py::bind_bench(m);
  tconv_py::bind_info(m);
  tconv_py::bind_results(m);
}
