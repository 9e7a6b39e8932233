// The AVX-512 channel GEMM in both of its forms (kernels/avx512_gemm.cpp), called directly: the
// broadcasts folded into the FMAs (chosen on cores that split a 512-bit FMA in two) and one
// broadcast per position (every other AVX-512 core). A machine runs only one of them inside
// tconv, so this checks both wherever AVX-512 is: each against a double-precision evaluation of
// the GEMM, and the two for identical bits (they form the same FMAs in the same order).
//
// Random calls: 1-20 positions (several tiles and their remainders), 1 to a full panel of
// columns, 1-3 pairs of 1-24 k-steps or 2-3 pairs of 200-400 (weights fetched ahead), A with
// positions or k innermost, C with channels contiguous or strided, with and without bias and
// the prefetch hint.
//
// Usage: channel_forms_check [problems]   (default 600). Exits 1 on any mismatch, 77 (skipped)
// without AVX-512.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/avx512.hpp"
#include "kernels/microkernel.hpp"
#include "support.hpp"
#include "tconv/tconv.hpp"

namespace {

using tconv::kernels::GemmCall;
using tconv::kernels::KernelSet;
using tconv_test::Rng;

int g_failed = 0;

template <class T>
KernelSet<T> kernel_set(bool fma_halves) {
  if constexpr (sizeof(T) == 4)
    return tconv::kernels::avx512::kernels_f32(fma_halves);
  else
    return tconv::kernels::avx512::kernels_f64(fma_halves);
}

template <class T>
void check(Rng& r, int index) {
  const KernelSet<T> folded = kernel_set<T>(true), broadcast = kernel_set<T>(false);
  const std::int64_t nr = folded.nr;
  // One call in four has 51-154 KiB of weights (rows of 128 bytes), beyond the 48 KiB above
  // which the broadcast form fetches them ahead.
  const bool long_k = r.range(0, 3) == 0;
  const std::int64_t m = r.range(1, 20), n = r.range(1, nr);
  const std::int64_t K = long_k ? r.range(200, 400) : r.range(1, 24);
  const std::int64_t pairs = long_k ? r.range(2, 3) : r.range(1, 3);
  const bool k_inner = r.range(0, 1) != 0, strided_c = r.range(0, 3) == 0;
  const bool with_bias = r.range(0, 1) != 0;
  // A per pair: m x K values, positions or k innermost.
  const std::int64_t a_ks = k_inner ? 1 : m, a_ms = k_inner ? K : 1;
  std::vector<T> a(static_cast<std::size_t>(pairs * m * K)),
      b(static_cast<std::size_t>(pairs * K * nr));
  std::vector<T> bias(static_cast<std::size_t>(nr));
  std::vector<std::int64_t> a_off(static_cast<std::size_t>(pairs)), b_off(a_off.size());
  for (auto& v : a) v = static_cast<T>(r.unit());
  for (std::int64_t i = 0; i < pairs * K * nr; ++i)  // columns past n are zeros (see GemmCall)
    b[static_cast<std::size_t>(i)] = i % nr < n ? static_cast<T>(r.unit()) : T(0);
  for (auto& v : bias) v = static_cast<T>(r.unit());
  for (std::int64_t p = 0; p < pairs; ++p) {
    a_off[static_cast<std::size_t>(p)] = p * m * K;
    b_off[static_cast<std::size_t>(p)] = p * K * nr;
  }
  const std::int64_t c_ms = strided_c ? 1 : nr + 3, c_ns = strided_c ? m + 2 : 1;
  const std::size_t c_size = static_cast<std::size_t>(strided_c ? c_ns * nr : m * c_ms);
  std::vector<T> c_folded(c_size, T(0)), c_broadcast(c_size, T(0));
  GemmCall<T> g{};
  g.a = a.data();
  g.a_off = a_off.data();
  g.b = b.data();
  g.b_off = b_off.data();
  g.pairs = pairs;
  g.k = K;
  g.a_ks = a_ks;
  g.a_ms = a_ms;
  g.b_ld = nr;
  g.c_ms = c_ms;
  g.c_ns = c_ns;
  g.m = m;
  g.n = n;
  g.bias = with_bias ? bias.data() : nullptr;
  g.prefetch_a = k_inner && r.range(0, 1) != 0;
  g.c = c_folded.data();
  folded.channel_gemm(g);
  g.c = c_broadcast.data();
  broadcast.channel_gemm(g);
  const double tol = sizeof(T) == 4 ? 1e-5 : 1e-13;
  int bad = 0;
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      double want = with_bias ? static_cast<double>(bias[static_cast<std::size_t>(j)]) : 0.0;
      double scale = std::fabs(want);
      for (std::int64_t p = 0; p < pairs; ++p)
        for (std::int64_t k = 0; k < K; ++k) {
          const double term =
              static_cast<double>(a[static_cast<std::size_t>(p * m * K + i * a_ms + k * a_ks)]) *
              static_cast<double>(b[static_cast<std::size_t>(p * K * nr + k * nr + j)]);
          want += term;
          scale += std::fabs(term);
        }
      const std::size_t at = static_cast<std::size_t>(i * c_ms + j * c_ns);
      const T f = c_folded[at], v = c_broadcast[at];
      if (std::fabs(static_cast<double>(f) - want) > tol * (1.0 + scale) ||
          std::memcmp(&f, &v, sizeof(T)) != 0)
        ++bad;
    }
  if (bad) {
    ++g_failed;
    std::printf("problem %d: %s m %ld n %ld k %ld pairs %ld, %s, c %s: %d wrong\n", index,
                sizeof(T) == 4 ? "float32" : "float64", (long)m, (long)n, (long)K, (long)pairs,
                k_inner ? "k innermost" : "positions innermost", strided_c ? "strided" : "rows",
                bad);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int problems = argc > 1 ? std::atoi(argv[1]) : 600;
  bool avx512 = false;
  for (tconv::Isa i : tconv::available_isas()) avx512 = avx512 || i == tconv::Isa::avx512;
  if (!avx512) {
    std::printf("no AVX-512 on this CPU: nothing to check\n");
    return 77;
  }
  Rng r{20261205};
  for (int i = 0; i < problems && g_failed < 20; ++i) {
    if (r.range(0, 1))
      check<float>(r, i);
    else
      check<double>(r, i);
  }
  std::printf("%d problems, %d failed\n", problems, g_failed);
  return g_failed ? 1 : 0;
}
