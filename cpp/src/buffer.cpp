#include "buffer.hpp"

#include <new>

namespace tconv::detail {

void* allocate_aligned(std::size_t bytes) {
  constexpr std::size_t kLine = 64;
  const std::size_t rounded = (bytes + kLine - 1) / kLine * kLine;
  void* p = std::aligned_alloc(kLine, rounded == 0 ? kLine : rounded);
  if (!p) throw std::bad_alloc();
  return p;
}

}  // namespace tconv::detail
