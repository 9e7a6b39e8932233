#include "buffer.hpp"

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

void* allocate_aligned(std::size_t bytes, const char* what, const char* advice) {
  constexpr std::size_t kLine = 64;
  const std::size_t rounded = (bytes + kLine - 1) / kLine * kLine;
  void* p = std::aligned_alloc(kLine, rounded == 0 ? kLine : rounded);
  if (!p) throw_out_of_memory(static_cast<double>(rounded), what, advice);
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
