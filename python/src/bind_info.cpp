// What this build of the extension is, for `tconv info`: set at configure time by
// python/CMakeLists.txt, so a bug report names the compiler and build type that made the wheel.
#include <pybind11/pybind11.h>

#include "bindings.hpp"

#ifndef TCONV_BUILD_TYPE
#define TCONV_BUILD_TYPE ""
#endif
#ifndef TCONV_COMPILER_ID
#define TCONV_COMPILER_ID ""
#endif
#ifndef TCONV_COMPILER_VERSION
#define TCONV_COMPILER_VERSION ""
#endif

#define TCONV_STR_(x) #x
#define TCONV_STR(x) TCONV_STR_(x)

namespace py = pybind11;

namespace tconv_py {

void bind_info(py::module_& m) {
  m.def(
      "build_info",
      [] {
        py::dict d;
        d["build_type"] = TCONV_BUILD_TYPE;
        d["compiler_id"] = TCONV_COMPILER_ID;
        d["compiler_version"] = TCONV_COMPILER_VERSION;
        d["pybind11_version"] = TCONV_STR(PYBIND11_VERSION_MAJOR) "." TCONV_STR(
            PYBIND11_VERSION_MINOR) "." TCONV_STR(PYBIND11_VERSION_PATCH);
        return d;
      },
      "How this extension was built: CMake build type, C++ compiler, pybind11.");
}

}  // namespace tconv_py
