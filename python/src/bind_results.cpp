// Buffers for large results. glibc maps every block beyond its largest mmap threshold (32 MiB)
// afresh and unmaps it on free, so each page of each such result faults in again, call after
// call: on a 32 MiB output that cost about as much as the convolution itself. A buffer from here
// is owned by a capsule; when the last array over it dies, it is kept (a detail::BlockPool: at
// most kKeptBuffers and kKeptMaxBytes in all) for the next result of the same size. A buffer is
// only handed out again once nothing refers to it, so results never share memory.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <vector>

#include "bindings.hpp"
#include "buffer.hpp"

namespace py = pybind11;

namespace tconv_py {
namespace {

constexpr std::size_t kReuseBytes = std::size_t{32} << 20;
constexpr std::size_t kKeptMaxBytes = std::size_t{512} << 20;
constexpr std::size_t kKeptBuffers = 2;

// Never destroyed: results may outlive the module's statics at exit.
tconv::detail::BlockPool& results() {
  static auto* pool = new tconv::detail::BlockPool(kReuseBytes, kKeptMaxBytes, kKeptBuffers);
  return *pool;
}

struct Block {
  void* data;
  std::size_t bytes;
};

// A uint8 array of `bytes` on a 64-byte boundary: from the kept buffers for sizes from
// kReuseBytes on, numpy's allocator below.
py::array result_buffer(std::size_t bytes) {
  if (bytes < kReuseBytes) return py::array_t<std::uint8_t>(static_cast<py::ssize_t>(bytes));
  Block* owner =
      new Block{results().take(bytes, "the result", tconv::detail::kScratchAdvice), bytes};
  py::capsule base(owner, [](void* p) {
    Block* b = static_cast<Block*>(p);
    results().give_back(b->data, b->bytes);
    delete b;
  });
  return py::array_t<std::uint8_t>({static_cast<py::ssize_t>(bytes)}, {py::ssize_t{1}},
                                   static_cast<std::uint8_t*>(owner->data), base);
}

}  // namespace

// Over a result_buffer: one call where Python took four.
py::array result_array(const std::vector<py::ssize_t>& shape, const py::dtype& dtype) {
  constexpr std::size_t kLine = 64;
  const auto item = static_cast<std::size_t>(dtype.itemsize());
  std::size_t count = 1;
  for (auto e : shape) count *= static_cast<std::size_t>(e);
  py::array raw = result_buffer(count * item + kLine);
  auto* data = static_cast<std::uint8_t*>(raw.mutable_data());
  const std::size_t start = (kLine - reinterpret_cast<std::uintptr_t>(data) % kLine) % kLine;
  std::vector<py::ssize_t> strides(shape.size());
  auto step = static_cast<py::ssize_t>(item);
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i] = step;
    step *= shape[i];
  }
  return py::array(dtype, shape, strides, data + start, raw);
}

void bind_results(py::module_& m) {
  m.def("result_array", &result_array, py::arg("shape"), py::arg("dtype"),
        "An uninitialised C-contiguous array on a 64-byte line; large ones reuse freed buffers.");
  m.def(
      "kept_result_buffers", [] { return results().kept(); },
      "Freed large result buffers kept for reuse (for tests).");
  m.def(
      "kept_weight_buffers", [] { return tconv::detail::buffer_pool().kept(); },
      "Freed buffers of packed or copied weights kept for reuse (for tests).");
  m.attr("RESULT_REUSE_BYTES") = kReuseBytes;
}

}  // namespace tconv_py
