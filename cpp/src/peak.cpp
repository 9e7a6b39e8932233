// The throughput probe's timing and threading (baseline ISA; the vector chains are in
// kernels/avx2_peak.cpp and kernels/avx512_peak.cpp, reached only after the CPU check).
#include "peak.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

#include "tconv/conv_transpose.hpp"

namespace tconv::detail {
namespace {

// The portable estimate: 12 independent chains of one SSE-width vector each (GCC and Clang keep
// them in registers at -O2 and up), multiply then add since FMA is not in the baseline ISA.
template <class T>
double portable_chains(std::int64_t iters) {
  constexpr int kLanes = 16 / sizeof(T);
  constexpr int kN = 12 * kLanes;
  T a[kN];
  for (int j = 0; j < kN; ++j) a[j] = static_cast<T>(j % 12);
  const T m = static_cast<T>(0.999), c = static_cast<T>(0.001);
  for (std::int64_t it = 0; it < iters; ++it)
    for (int j = 0; j < kN; ++j) a[j] = a[j] * m + c;
  double total = 0;
  for (T v : a) total += static_cast<double>(v);
  return total;
}

using ChainFn = double (*)(std::int64_t);

// Runs `rounds` rounds of fn(iters) on `threads` threads at once (the caller and threads - 1
// helpers that live for all rounds and spin between them, so a round's time is the work, not
// thread start-up) and returns the shortest round's wall time in seconds.
double best_round(ChainFn fn, std::int64_t iters, int threads, int rounds) {
  std::atomic<int> round{0};
  std::atomic<int> done{0};
  std::atomic<double> sink{0};
  std::vector<std::thread> helpers;
  helpers.reserve(static_cast<std::size_t>(threads - 1));
  for (int i = 1; i < threads; ++i)
    helpers.emplace_back([&] {
      for (int r = 1; r <= rounds; ++r) {
        while (round.load(std::memory_order_acquire) < r) std::this_thread::yield();
        sink.store(fn(iters), std::memory_order_relaxed);
        done.fetch_add(1, std::memory_order_acq_rel);
      }
    });
  double best = 0;
  for (int r = 1; r <= rounds; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    round.store(r, std::memory_order_release);
    sink.store(fn(iters), std::memory_order_relaxed);
    while (done.load(std::memory_order_acquire) < (threads - 1) * r) std::this_thread::yield();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r == 1 || s < best) best = s;
  }
  for (auto& t : helpers) t.join();
  // Reading the sink keeps every round's result observable.
  return std::isnan(sink.load()) ? 0 : best;
}

}  // namespace

PeakResult fma_peak(bool f64, int threads, double seconds) {
  threads = std::clamp(threads, 1, 1024);
  if (!(seconds > 0)) seconds = 0.05;
  seconds = std::min(seconds, 10.0);

  PeakResult res;
  ChainFn fn = f64 ? &portable_chains<double> : &portable_chains<float>;
  // Floating-point operations per iteration per thread: 12 chains x lanes x (mul + add).
  double flops_per_iter = 12.0 * (16.0 / (f64 ? 8 : 4)) * 2;
#ifdef TCONV_HAVE_AVX2
  const auto isas = available_isas();
  if (std::find(isas.begin(), isas.end(), Isa::avx2) != isas.end()) {
    fn = f64 ? &kernels::avx2::fma_chains_f64 : &kernels::avx2::fma_chains_f32;
    flops_per_iter = 12.0 * (f64 ? 4 : 8) * 2;
    res.used_fma = true;
    res.chains = "avx2";
  }
#endif
#ifdef TCONV_HAVE_AVX512
  if (std::find(isas.begin(), isas.end(), Isa::avx512) != isas.end()) {
    fn = f64 ? &kernels::avx512::fma_chains_f64 : &kernels::avx512::fma_chains_f32;
    flops_per_iter = 12.0 * (f64 ? 8 : 16) * 2;
    res.chains = "avx512";
  }
#endif

  // Calibrate on the calling thread until one round takes >= 1 ms, then spend the budget on
  // rounds of ~2.5 ms and keep the fastest: short rounds are the likeliest to run undisturbed
  // on a machine that is shared with other work.
  std::int64_t iters = 1024;
  double t = best_round(fn, iters, 1, 1);
  while (t < 1e-3 && iters < (std::int64_t{1} << 40)) {
    iters *= 4;
    t = best_round(fn, iters, 1, 1);
  }
  const double round_s = 2.5e-3;
  const int rounds = std::clamp(static_cast<int>(seconds / round_s), 3, 4000);
  iters = std::max<std::int64_t>(
      1, static_cast<std::int64_t>(static_cast<double>(iters) * round_s / t));
  const double best = best_round(fn, iters, threads, rounds);
  if (best > 0) res.gflops = flops_per_iter * static_cast<double>(iters) * threads / best / 1e9;
  return res;
}

}  // namespace tconv::detail
