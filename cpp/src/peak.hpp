// The FMA throughput probe: how many GFLOP/s this machine's cores can execute at best, so the
// benchmark reports its figures as a fraction of a measured ceiling instead of an assumed one.
#pragma once

#include <cstdint>

namespace tconv::kernels::avx2 {
// Runs `iters` iterations of 12 independent 256-bit vfmadd231 chains (96 float lanes or 48
// double lanes per iteration) and returns a value that depends on every chain, so that no
// work can be dropped. Call only when the CPU has AVX2 and FMA.
double fma_chains_f32(std::int64_t iters);
double fma_chains_f64(std::int64_t iters);
}  // namespace tconv::kernels::avx2

namespace tconv::kernels::avx512 {
// The same with 512-bit chains (192 float or 96 double lanes per iteration). Call only when the
// CPU and the OS support AVX-512F.
double fma_chains_f32(std::int64_t iters);
double fma_chains_f64(std::int64_t iters);
}  // namespace tconv::kernels::avx512

namespace tconv::detail {

struct PeakResult {
  double gflops = 0;      // floating-point operations per second of all threads together, / 1e9
  bool used_fma = false;  // false: the portable multiply-add loop ran instead (an estimate)
  const char* chains = "portable";  // which chains ran: "avx512", "avx2" or "portable"
};

// Runs the probe on `threads` threads at once (the caller plus threads - 1 new ones) for about
// `seconds` in total and returns the best throughput seen. With AVX-512F, or else AVX2 and FMA,
// on the CPU (and built) it times the widest FMA chains the kernels use; otherwise a portable
// multiply-then-add loop of the same shape, compiled for the baseline ISA.
PeakResult fma_peak(bool f64, int threads, double seconds);

}  // namespace tconv::detail
