// Uninitialised, cache-line-aligned heap buffers for weight-sized data (packed weights, plan
// copies). Every element is written by its owner before it is read, so value-initialising the
// memory (as std::vector does) would only add a pass over many megabytes.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>

namespace tconv::detail {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

template <class T>
using Buffer = std::unique_ptr<T[], FreeDeleter>;

// Throws std::bad_alloc when the memory is not available.
void* allocate_aligned(std::size_t bytes);

template <class T>
Buffer<T> make_buffer(std::size_t count) {
  return Buffer<T>(static_cast<T*>(allocate_aligned(count * sizeof(T))));
}

}  // namespace tconv::detail
