#include "buffer.hpp"

#include <cstdio>

namespace tconv::detail {

const char* const kScratchAdvice =
    "reduce the batch or the input size per call, or raise the memory or address-space limit "
    "(ulimit -v)";

const char* const kWeightsAdvice =
    "the kernels keep a packed copy of the weights, about their size; free memory or raise the "
    "memory or address-space limit (ulimit -v)";

void throw_out_of_memory(double bytes, const char* what, const char* advice) {
  char size[64];
  if (bytes >= 1024.0 * 1024.0 * 1024.0) {
    std::snprintf(size, sizeof size, "%.1f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  } else {
    std::snprintf(size, sizeof size, "%.1f MiB", bytes / (1024.0 * 1024.0));
  }
  throw OutOfMemory(std::string("tconv needed ") + size + " for " + what +
                    " and the allocation failed (out of memory or above the process's "
                    "address-space limit); " +
                    advice);
}

void* allocate_aligned(std::size_t bytes, const char* what, const char* advice) {
  constexpr std::size_t kLine = 64;
  const std::size_t rounded = (bytes + kLine - 1) / kLine * kLine;
  void* p = std::aligned_alloc(kLine, rounded == 0 ? kLine : rounded);
  if (!p) throw_out_of_memory(static_cast<double>(rounded), what, advice);
  return p;
}

}  // namespace tconv::detail
