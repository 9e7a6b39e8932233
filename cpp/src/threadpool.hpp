// A persistent pool of std::threads shared by every call of the process.
//
// parallel_for hands out items dynamically; callers make every item compute a disjoint set of
// outputs in a fixed order, so the numbers never depend on which thread ran which item or on
// how many threads there were. Workers spin briefly after a job (back-to-back layers are the
// common case) and then sleep on a condition variable. After fork() the child starts with no
// workers and creates new ones on its first parallel call. Callers ask for at most as many
// threads as the process has CPUs (runtime::choose_threads): more would only take turns.
#pragma once

#include <cstdint>
#include <functional>

namespace tconv::detail {

// Calls fn(item, slot) for every item in [0, n_items), on at most `threads` threads including
// the caller. `slot` is in [0, threads) and unique among the threads running concurrently
// (callers index per-thread scratch with it). Runs inline when threads <= 1, n_items <= 1, or
// the pool is already busy with another caller's job. Exceptions from fn are rethrown in the
// caller (the first one; remaining items are skipped).
//
// How items are handed out: one at a time (the finest balance), or in runs of consecutive
// items, long first and shorter as the work runs out (guided), for callers whose neighbouring
// items share cached data (the phase driver's input rows). Which thread runs an item never
// changes what the item computes.
enum class Schedule { items, runs };

void parallel_for(std::int64_t n_items, int threads,
                  const std::function<void(std::int64_t item, int slot)>& fn,
                  Schedule schedule = Schedule::items);

// Number of worker threads currently alive (for tests and diagnostics).
int pool_workers();

// Stopping a call early (Options::interrupt). While an InterruptScope lives on a thread, that
// thread's parallel_for calls ask the poll between items, and check_interrupt() asks it when
// called there; either asks about every 20 ms (a slow poll less often, at most every 150 ms)
// and throws tconv::Interrupted once the poll says stop (the other threads then take no
// further item). Drivers call check_interrupt() between pieces of bounded work that do not go
// through parallel_for.
class InterruptScope {
 public:
  explicit InterruptScope(const std::function<bool()>& poll);  // an empty poll never stops
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

 private:
  const std::function<bool()>* saved_;
  std::int64_t saved_next_;
};
void check_interrupt();

}  // namespace tconv::detail
