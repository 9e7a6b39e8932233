// The AVX2 Inf/NaN check the pack runs on its staged weights (KernelSet::finite), called
// directly: for every run length up to a few vectors past the lane count, one Inf, -Inf or NaN
// (quiet, signalling, negative) at every position must be found, wherever it falls among the
// lanes and the tail; runs of finite extremes (the largest, the smallest normal and subnormal,
// zeros of both signs) must pass; and on random runs with a sprinkling of non-finite values it
// must agree with detail::finite_run, the scalar definition.
//
// Usage: finite_check. Exits 1 on any mismatch, 77 (skipped) without AVX2.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "finite.hpp"
#include "kernels/avx2.hpp"
#include "kernels/microkernel.hpp"
#include "support.hpp"
#include "tconv/tconv.hpp"

namespace {

int g_failed = 0;

void fail(const char* what, const char* type, std::int64_t n, std::int64_t at) {
  if (++g_failed <= 20) std::printf("FAIL %s: %s, n=%ld, at=%ld\n", what, type, (long)n, (long)at);
}

template <class T>
T from_bits(std::uint64_t bits) {
  T v;
  if constexpr (sizeof(T) == 4) {
    const auto b = static_cast<std::uint32_t>(bits);
    std::memcpy(&v, &b, sizeof v);
  } else {
    std::memcpy(&v, &bits, sizeof v);
  }
  return v;
}

template <class T>
void check(tconv::kernels::FiniteFn<T> finite, const char* type) {
  using L = std::numeric_limits<T>;
  const bool f32 = sizeof(T) == 4;
  const std::vector<T> bad = {
      L::infinity(),   -L::infinity(),     L::quiet_NaN(),
      -L::quiet_NaN(), L::signaling_NaN(), from_bits<T>(f32 ? 0x7f800001u : 0x7ff0000000000001ull)};
  const std::vector<T> good = {L::max(), -L::max(), L::min(), L::denorm_min(), T(0), -T(0), T(1.5)};
  const std::int64_t longest = 3 * 32 / static_cast<std::int64_t>(sizeof(T)) + 3;
  // One past the run, so a read past its end would meet a non-finite value.
  std::vector<T> run(static_cast<std::size_t>(longest + 1));
  for (std::int64_t n = 0; n <= longest; ++n) {
    for (std::int64_t i = 0; i < n; ++i) run[static_cast<std::size_t>(i)] = good[i % good.size()];
    run[static_cast<std::size_t>(n)] = L::quiet_NaN();
    if (!finite(run.data(), n)) fail("finite run reported non-finite", type, n, -1);
    for (std::int64_t at = 0; at < n; ++at)
      for (T v : bad) {
        const T keep = run[static_cast<std::size_t>(at)];
        run[static_cast<std::size_t>(at)] = v;
        if (finite(run.data(), n)) fail("non-finite value missed", type, n, at);
        run[static_cast<std::size_t>(at)] = keep;
      }
  }
  tconv_test::Rng r{20261205};
  for (int trial = 0; trial < 2000; ++trial) {
    const std::int64_t n = r.range(0, 300), offset = r.range(0, 7);
    std::vector<T> v(static_cast<std::size_t>(n + offset));
    for (auto& x : v) x = r.range(0, 400) == 0 ? r.pick(bad) : static_cast<T>(r.unit());
    const T* p = v.data() + offset;
    if (finite(p, n) != tconv::detail::finite_run(p, n))
      fail("disagrees with finite_run", type, n, offset);
  }
}

}  // namespace

int main() {
  bool avx2 = false;
  for (tconv::Isa i : tconv::available_isas()) avx2 = avx2 || i == tconv::Isa::avx2;
  if (!avx2) {
    std::printf("no AVX2 on this CPU: nothing to check\n");
    return 77;
  }
  check<float>(tconv::kernels::avx2::kernels_f32().finite, "float32");
  check<double>(tconv::kernels::avx2::kernels_f64().finite, "float64");
  if (g_failed) {
    std::printf("%d failures\n", g_failed);
    return 1;
  }
  std::printf("finite_check: every check passed\n");
  return 0;
}
