#include "threadpool.hpp"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "buffer.hpp"
#include "tconv/conv_transpose.hpp"  // Interrupted

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TCONV_PAUSE() _mm_pause()
// Kernels may write with streaming stores (KernelSet::transpose_stream), which are weakly
// ordered: each thread orders them before its part of a job counts as done.
#define TCONV_STORE_FENCE() _mm_sfence()
#elif defined(__aarch64__)
#define TCONV_PAUSE() asm volatile("yield")
#define TCONV_STORE_FENCE() ((void)0)
#else
#define TCONV_PAUSE() ((void)0)
#define TCONV_STORE_FENCE() ((void)0)
#endif

namespace tconv::detail {
namespace {

// Long enough to bridge the gap between the layers of one forward pass, short enough not to
// steal a shared core from other processes for long.
constexpr auto kSpin = std::chrono::microseconds(100);

class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mutex_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int size() const { return static_cast<int>(workers_.size()); }

  // Caller holds the job lock (one job at a time).
  void run(std::int64_t n_items, int threads, const std::function<void(std::int64_t, int)>& fn,
           Schedule schedule) {
    grow(threads - 1);
    fn_ = &fn;
    n_items_ = n_items;
    // Runs of about 1/(2 * threads) of what is left: long ones first, single items at the end,
    // so a thread that loses its core for a while leaves little behind.
    share_ = schedule == Schedule::runs ? 2 * static_cast<std::int64_t>(threads) : 0;
    active_ = threads - 1;
    next_.store(0, std::memory_order_relaxed);
    error_ = nullptr;
    failed_.store(false, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lk(mutex_);
      const std::uint64_t gen = generation_.load(std::memory_order_relaxed) + 1;
      open_.store(gen, std::memory_order_seq_cst);
      generation_.store(gen, std::memory_order_release);
    }
    cv_.notify_all();
    work(0);
    TCONV_STORE_FENCE();
    // The caller does not wait for workers that have not joined yet: on a busy machine a
    // worker may not get a core for a whole time slice, and the caller has taken every item
    // by now. It closes the job and waits only for items in flight. A worker counts itself
    // in flight before it checks that its job is still open (and the caller closes before it
    // reads the count), so either the worker sees the job closed or the caller sees it.
    open_.store(0, std::memory_order_seq_cst);
    while (inflight_.load(std::memory_order_seq_cst) != 0) TCONV_PAUSE();
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void grow(int n) {
    // A new worker must count the job about to be published as unseen.
    const std::uint64_t gen = generation_.load(std::memory_order_acquire);
    while (size() < n) {
      const int index = size() + 1;  // slot 0 is the caller
      workers_.emplace_back([this, index, gen] { loop(index, gen); });
    }
  }

  void work(int slot) {
    for (;;) {
      std::int64_t first = 0, last = 0;
      if (share_ == 0) {
        first = next_.fetch_add(1, std::memory_order_relaxed);
        last = first + 1;
      } else {
        first = next_.load(std::memory_order_relaxed);
        do {
          if (first >= n_items_) break;
          const std::int64_t left = n_items_ - first;
          last = first + (left > share_ ? left / share_ : 1);
        } while (!next_.compare_exchange_weak(first, last, std::memory_order_relaxed));
      }
      if (first >= n_items_) return;
      try {
        // Item by item, also inside a run: a failure or an interrupt stops every thread
        // within one item.
        for (std::int64_t item = first; item < last; ++item) {
          if (failed_.load(std::memory_order_relaxed)) return;
          (*fn_)(item, slot);
          check_interrupt();  // asks only on the caller's thread
        }
      } catch (...) {
        std::lock_guard<std::mutex> lk(error_mutex_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true, std::memory_order_relaxed);
      }
    }
  }

  void loop(int index, std::uint64_t seen) {
    // Only a worker that took part in the last job spins for the next one: the others (a
    // smaller thread count than the pool's size) sleep at once instead of taking turns on
    // the cores the job runs on.
    bool took_part = true;
    for (;;) {
      std::uint64_t gen = seen;
      const auto until = std::chrono::steady_clock::now() + kSpin;
      for (int i = 0; took_part && gen == seen; ++i) {
        gen = generation_.load(std::memory_order_acquire);
        if (gen != seen) break;
        if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) break;
        TCONV_PAUSE();
      }
      if (gen == seen) {
        std::unique_lock<std::mutex> lk(mutex_);
        cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        gen = generation_.load(std::memory_order_acquire);
      }
      seen = gen;
      if (stop_) return;
      inflight_.fetch_add(1, std::memory_order_seq_cst);
      took_part = open_.load(std::memory_order_seq_cst) == gen && index <= active_;
      if (took_part) {
        work(index);
        TCONV_STORE_FENCE();
      }
      inflight_.fetch_sub(1, std::memory_order_release);
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::atomic<std::uint64_t> generation_{0};
  bool stop_ = false;

  const std::function<void(std::int64_t, int)>* fn_ = nullptr;
  std::int64_t n_items_ = 0, share_ = 0;
  int active_ = 0;
  std::atomic<std::int64_t> next_{0};
  std::atomic<std::uint64_t> open_{0};  // the generation of the job still handing out items
  std::atomic<int> inflight_{0};        // workers inside a job's work loop
  std::atomic<bool> failed_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

// Held for the whole of a job and across fork(), so a child never inherits a half-run job.
std::mutex g_job_mutex;
Pool* g_pool = nullptr;  // never destroyed: workers may outlive static destruction order

void before_fork() {
  g_job_mutex.lock();
  BlockPool::lock_all();
}
void after_fork_parent() {
  BlockPool::unlock_all();
  g_job_mutex.unlock();
}
void after_fork_child() {
  // The workers do not exist in the child. Their Pool cannot be destroyed (joining would
  // hang), so it is abandoned and a fresh one is made on demand.
  g_pool = nullptr;
  BlockPool::unlock_all();
  g_job_mutex.unlock();  // locked by this same thread in before_fork
}

// Registered while the library loads, before any thread of ours exists: a lazy registration
// would need a once-flag, itself a lock a fork() could catch half-taken.
const int g_atfork_registered = pthread_atfork(before_fork, after_fork_parent, after_fork_child);

// The calling thread's interrupt poll (Options::interrupt) and when to ask it next.
constexpr std::int64_t kInterruptPoll = 20'000'000;  // ns: well inside a 0.2 s response
constexpr std::int64_t kInterruptPollMax = 150'000'000;
thread_local const std::function<bool()>* t_poll = nullptr;
thread_local std::int64_t t_next_poll = 0;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// When the next poll is due, read after every item: a coarse clock is cheaper to read than
// steady_clock, and its tick (a few ms) is well inside the poll's 20 ms.
std::int64_t due_clock_ns() {
#ifdef CLOCK_MONOTONIC_COARSE
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
#else
  return now_ns();
#endif
}

}  // namespace

InterruptScope::InterruptScope(const std::function<bool()>& poll)
    : saved_(t_poll), saved_next_(t_next_poll) {
  t_poll = poll ? &poll : nullptr;
  t_next_poll = due_clock_ns() + kInterruptPoll;
}

InterruptScope::~InterruptScope() {
  t_poll = saved_;
  t_next_poll = saved_next_;
}

void check_interrupt() {
  if (!t_poll) return;
  const std::int64_t now = due_clock_ns();
  if (now < t_next_poll) return;
  const std::int64_t start = now_ns();
  const bool stop = (*t_poll)();
  // A poll that has to wait (Python's GIL held by a busy thread: up to its 5 ms switch
  // interval) is asked less often, so that it takes at most ~5% of the call.
  const std::int64_t spent = now_ns() - start;
  t_next_poll = now + std::min(std::max(kInterruptPoll, 20 * spent), kInterruptPollMax);
  if (stop) throw Interrupted();
}

void parallel_for(std::int64_t n_items, int threads,
                  const std::function<void(std::int64_t, int)>& fn, Schedule schedule) {
  (void)g_atfork_registered;  // registered at load; named here so that it is kept
  if (n_items <= 0) return;
  if (threads > n_items) threads = static_cast<int>(n_items);
  if (threads > 1) {
    std::unique_lock<std::mutex> lk(g_job_mutex, std::try_to_lock);
    if (lk.owns_lock()) {
      if (!g_pool) g_pool = new Pool();
      g_pool->run(n_items, threads, fn, schedule);
      return;
    }
  }
  for (std::int64_t i = 0; i < n_items; ++i) {
    fn(i, 0);
    check_interrupt();
  }
  TCONV_STORE_FENCE();
}

int pool_workers() {
  std::lock_guard<std::mutex> lk(g_job_mutex);
  return g_pool ? g_pool->size() : 0;
}

}  // namespace tconv::detail
