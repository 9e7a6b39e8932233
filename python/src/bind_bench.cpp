// Private helpers for the benchmark (tconv bench): not part of the public API.
#include <string>

#include "bindings.hpp"
#include "peak.hpp"

namespace py = pybind11;

namespace tconv_py {

void bind_bench(py::module_& m) {
  m.def(
      "_fma_peak",
      [](const std::string& dtype, int threads, double seconds) {
        if (dtype != "float32" && dtype != "float64")
          throw py::value_error("_fma_peak: dtype must be 'float32' or 'float64', got '" + dtype +
                                "'");
        if (threads < 1 || threads > 1024)
          throw py::value_error("_fma_peak: threads must be in [1, 1024], got " +
                                std::to_string(threads));
        if (!(seconds > 0 && seconds <= 10))
          throw py::value_error("_fma_peak: seconds must be in (0, 10], got " +
                                std::to_string(seconds));
        tconv::detail::PeakResult r;
        {
          py::gil_scoped_release release;
          r = tconv::detail::fma_peak(dtype == "float64", threads, seconds);
        }
        py::dict d;
        d["gflops"] = r.gflops;
        d["fma"] = r.used_fma;
        d["chains"] = std::string(r.chains);
        return d;
      },
      py::arg("dtype") = "float32", py::arg("threads") = 1, py::arg("seconds") = 0.05,
      "Measured floating-point throughput of `threads` threads, GFLOP/s: 12 independent FMA\n"
      "chains of the widest vectors the kernels use ('chains': 'avx512' or 'avx2'; 'fma': True),\n"
      "else a portable multiply-add loop ('chains': 'portable').");
}

}  // namespace tconv_py
