// Uninitialised, cache-line-aligned heap buffers for weight-sized data (packed weights, plan
// copies), the scratch budget every driver keeps to, and allocation failures that say which
// buffer could not be had. Every element of a Buffer is written by its owner before it is read,
// so value-initialising the memory (as std::vector does) would only add a pass over megabytes.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "tconv/shape.hpp"

namespace tconv::detail {

// Working memory (row buffers, tap tables) a call may take beyond its output and packed
// weights: 10 % of the output, or this floor for small outputs. Drivers size their tiles to
// stay within it; a driver whose tables would not fit declines the layer.
constexpr std::size_t kScratchFloorBytes = std::size_t{4} << 20;
constexpr double kScratchShare = 0.10;

// Bytes of the layer's output (batch included), elements of `elem` bytes.
inline double output_bytes(const Geometry& g, std::size_t elem) {
  double bytes = static_cast<double>(g.batch * g.out_channels) * static_cast<double>(elem);
  for (int d = 0; d < g.rank; ++d) bytes *= static_cast<double>(g.output[d]);
  return bytes;
}

inline double scratch_budget(double output_bytes) {
  const double share = kScratchShare * output_bytes;
  const double floor = static_cast<double>(kScratchFloorBytes);
  return share > floor ? share : floor;
}

// A failed allocation, with what it was for and what to do (Python sees a MemoryError carrying
// this message; C++ callers catching std::bad_alloc still catch it).
class OutOfMemory : public std::bad_alloc {
 public:
  explicit OutOfMemory(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// "tconv needed <size> for <what>, ...; <advice>" as an OutOfMemory.
[[noreturn]] void throw_out_of_memory(double bytes, const char* what, const char* advice);

// The advice for per-call working memory (row buffers, tap tables), and for copies of the
// weights (plans, packing: about the weights' size).
extern const char* const kScratchAdvice;
extern const char* const kWeightsAdvice;

// Throws OutOfMemory, naming `what`, when the memory is not available.
void* allocate_aligned(std::size_t bytes, const char* what, const char* advice);

// Freed blocks of at least min_bytes kept for the next request of the same size: at most
// max_blocks and max_bytes in all (the oldest given back go first). glibc hands large blocks back
// to the system when they are freed, so each page of a block allocated again faults in again: a
// functional call's packed weights did so call after call. A kept block is handed out only after it
// was given back, so no two owners share one.
// Pools are made with new and never destroyed (buffers freed during the program's exit still
// find theirs).
class BlockPool {
 public:
  BlockPool(std::size_t min_bytes, std::size_t max_bytes, std::size_t max_blocks);
  // Every pool, locked across fork() (by the thread pool's handlers, after its job lock: a job
  // may be waiting for a pool), so that a child never inherits one locked.
  static void lock_all();
  static void unlock_all();
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;
  // `bytes` on a 64-byte line: a kept block of that size, else a new one (OutOfMemory naming
  // `what` when the memory is not available).
  void* take(std::size_t bytes, const char* what, const char* advice);
  // Keeps block p (of `bytes`, from take) for a later take, or frees it.
  void give_back(void* p, std::size_t bytes);
  std::size_t kept() const;

 private:
  ~BlockPool() = default;

  struct Block {
    void* data;
    std::size_t bytes;
  };
  const std::size_t min_bytes_, max_bytes_, max_blocks_;
  mutable std::mutex mutex_;
  std::deque<Block> kept_;
  std::size_t kept_bytes_ = 0;
};

// The pool of weight-sized buffers (Buffer): blocks from 128 KiB, at most four and 128 MiB kept.
BlockPool& buffer_pool();

struct PoolDeleter {
  std::size_t bytes = 0;
  void operator()(void* p) const { buffer_pool().give_back(p, bytes); }
};

template <class T>
using Buffer = std::unique_ptr<T[], PoolDeleter>;

template <class T>
Buffer<T> make_buffer(std::size_t count, const char* what, const char* advice) {
  const std::size_t bytes = count * sizeof(T);
  return Buffer<T>(static_cast<T*>(buffer_pool().take(bytes, what, advice)), PoolDeleter{bytes});
}

// v.resize(n) or v.assign(n, value), with an OutOfMemory naming `what` on failure.
template <class V>
void resize_or_throw(V& v, std::size_t n, const char* what) {
  try {
    v.resize(n);
  } catch (const std::bad_alloc&) {
    throw_out_of_memory(static_cast<double>(n) * sizeof(typename V::value_type), what,
                        kScratchAdvice);
  }
}

template <class V>
void assign_or_throw(V& v, std::size_t n, const typename V::value_type& value, const char* what) {
  try {
    v.assign(n, value);
  } catch (const std::bad_alloc&) {
    throw_out_of_memory(static_cast<double>(n) * sizeof(typename V::value_type), what,
                        kScratchAdvice);
  }
}

}  // namespace tconv::detail
