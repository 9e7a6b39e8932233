// Framework conventions (TensorFlow, ONNX, JAX padding rules) exposed to tconv.shapes.
#include "bindings.hpp"

namespace tconv_py {
void bind_conventions(pybind11::module_& m) { (void)m; }
}  // namespace tconv_py
