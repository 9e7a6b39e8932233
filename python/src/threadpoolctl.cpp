// The two C functions threadpoolctl's controller for tconv calls through ctypes
// (tconv/_threadpoolctl.py). Exported despite the module's hidden default visibility.
#include <tconv/conv_transpose.hpp>

extern "C" {
__attribute__((visibility("default"))) int tconv_threadpoolctl_get_num_threads() {
  return tconv::get_num_threads();
}
__attribute__((visibility("default"))) void tconv_threadpoolctl_set_num_threads(int n) {
  tconv::set_num_threads(n);
}
}
