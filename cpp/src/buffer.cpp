#include "buffer.hpp"

#ifdef __linux__
#include <sys/mman.h>
#endif

#include <cstdint>
#include <cstdio>
#include <vector>

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

// Blocks from 4 MiB start on a 2 MiB boundary and are advised as huge pages, as numpy does its
// large arrays: a fresh 8 MiB block then faults in four pages rather than 2048.
constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;
constexpr std::size_t kHugeFromBytes = std::size_t{4} << 20;

void* allocate_aligned(std::size_t bytes, const char* what, const char* advice) {
  constexpr std::size_t kLine = 64;
  const std::size_t align = bytes >= kHugeFromBytes ? kHugePageBytes : kLine;
  if (bytes > SIZE_MAX - align) throw_out_of_memory(static_cast<double>(bytes), what, advice);
  const std::size_t rounded = bytes == 0 ? align : (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, rounded);
  if (!p) throw_out_of_memory(static_cast<double>(rounded), what, advice);
#ifdef __linux__
  if (align == kHugePageBytes) madvise(p, rounded, MADV_HUGEPAGE);  // advice: failing is harmless
#endif
  return p;
}

namespace {

std::mutex g_pools_mutex;

std::vector<BlockPool*>& pools() {
  static auto* all = new std::vector<BlockPool*>;
  return *all;
}

}  // namespace

BlockPool::BlockPool(std::size_t min_bytes, std::size_t max_bytes, std::size_t max_blocks)
    : min_bytes_(min_bytes), max_bytes_(max_bytes), max_blocks_(max_blocks) {
  const std::lock_guard<std::mutex> lock(g_pools_mutex);
  pools().push_back(this);
}

void BlockPool::lock_all() {
  g_pools_mutex.lock();
  for (BlockPool* p : pools()) p->mutex_.lock();
}

void BlockPool::unlock_all() {
  for (BlockPool* p : pools()) p->mutex_.unlock();
  g_pools_mutex.unlock();
}

void* BlockPool::take(std::size_t bytes, const char* what, const char* advice) {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = kept_.begin(); it != kept_.end(); ++it)
      if (it->bytes == bytes) {
        void* p = it->data;
        kept_bytes_ -= bytes;
        kept_.erase(it);
        return p;
      }
  }
  return allocate_aligned(bytes, what, advice);
}

void BlockPool::give_back(void* p, std::size_t bytes) {
  if (!p) return;
  if (bytes < min_bytes_ || bytes > max_bytes_) return std::free(p);
  const std::lock_guard<std::mutex> lock(mutex_);
  kept_.push_back({p, bytes});
  kept_bytes_ += bytes;
  while (kept_.size() > max_blocks_ || kept_bytes_ > max_bytes_) {
    std::free(kept_.front().data);
    kept_bytes_ -= kept_.front().bytes;
    kept_.pop_front();
  }
}

std::size_t BlockPool::kept() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return kept_.size();
}

BlockPool& buffer_pool() {
  static BlockPool* pool = new BlockPool(std::size_t{128} << 10, std::size_t{128} << 20, 4);
  return *pool;
}

}  // namespace tconv::detail
