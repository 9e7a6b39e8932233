// The x86 position micro-kernels (position_gemm and the multi-phase kernels) under row windows,
// called directly on random windows the phase driver may not produce today: windows starting
// before or inside a tile, ending before the call's last row or far past it, missing tiles
// entirely, a partner with a window of its own, tails of every length.
//
// Each pair's A rows sit in memory of their own, flush against an unreadable page on one side
// (a read at m_hi, or before m_lo, kills the process: the tail lanes that are never stored
// included) and NaN around them elsewhere (a stray read shows in the output). Checked against
// a double-precision evaluation of the formula, and for equality with the same call without
// windows on zero-filled rows: the phase driver reads in place or through row buffers
// depending on the thread count, and the results must not.
//
// On AVX-512 machines a third as many problems again for the kernel over every phase of two
// dims (GridCall), which always reads the input in place, in either of its forms (weights'
// broadcasts folded into the FMAs or not; each problem draws one).
//
// Usage: window_check [problems]   (default 1500). Exits 1 on any mismatch.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <vector>

#include "kernels/avx2.hpp"
#include "kernels/microkernel.hpp"
#include "support.hpp"
#include "tconv/tconv.hpp"
#ifdef TCONV_HAVE_AVX512
#include "kernels/avx512.hpp"
#endif

namespace {

using namespace tconv::kernels;

int g_failed = 0;

using tconv_test::Rng;

// Pages: [unreadable][data][unreadable] per pair.
struct Fenced {
  void* map = nullptr;
  std::size_t bytes = 0;
  Fenced() = default;
  Fenced(const Fenced&) = delete;
  Fenced& operator=(const Fenced&) = delete;
  ~Fenced() {
    if (map) munmap(map, bytes);
  }
};

constexpr std::int64_t kB = 4;  // b_ld: the weights of one k row

template <class T>
struct Problem {
  int isa = 2;                                                        // 2: AVX2, 512: AVX-512
  std::int64_t pairs = 1, k = 1, a_ks = 1, m = 1, n = 1, phases = 0;  // phases 0: position_gemm
  std::vector<std::int64_t> a_off, b_off, partner, lo, hi;
  std::vector<T> b, bias;
  bool with_bias = false, with_partner = false;
  std::int64_t c_ms = 0, c_ps = 0, c_ns = 0, c_size = 0;
};

template <class T>
bool run(const Problem<T>& P, const T* a, T* c, bool windows) {
  if (P.phases == 0) {
    GemmCall<T> g;
    g.a = a;
    g.a_off = P.a_off.data();
    g.b = P.b.data();
    g.b_off = P.b_off.data();
    g.pairs = P.pairs;
    g.k = P.k;
    g.a_ks = P.a_ks;
    g.a_ms = 1;
    g.b_ld = kB;
    g.c = c;
    g.c_ms = P.c_ms;
    g.c_ns = P.c_ns;
    g.m = P.m;
    g.n = P.n;
    g.bias = P.with_bias ? P.bias.data() : nullptr;
    if (windows) {
      g.m_lo = P.lo.data();
      g.m_hi = P.hi.data();
    }
    // The AVX-512 set runs the AVX2 position_gemm.
    if constexpr (sizeof(T) == 4)
      tconv::kernels::avx2::kernels_f32().position_gemm(g);
    else
      tconv::kernels::avx2::kernels_f64().position_gemm(g);
    return true;
  }
  PhaseCall<T> g;
  g.a = a;
  g.a_off = P.a_off.data();
  g.b = P.b.data();
  g.b_off = P.b_off.data();
  g.partner = P.with_partner ? P.partner.data() : nullptr;
  g.pairs = P.pairs;
  g.k = P.k;
  g.a_ks = P.a_ks;
  g.b_ld = kB;
  g.phases = P.phases;
  g.c = c;
  g.c_ms = P.c_ms;
  g.c_ps = P.c_ps;
  g.c_ns = P.c_ns;
  g.m = P.m;
  g.n = P.n;
  g.bias = P.with_bias ? P.bias.data() : nullptr;
  if (windows) {
    g.m_lo = P.lo.data();
    g.m_hi = P.hi.data();
  }
#ifdef TCONV_HAVE_AVX512
  if (P.isa == 512) {
    if constexpr (sizeof(T) == 4)
      return tconv::kernels::avx512::phase_f32(g);
    else
      return tconv::kernels::avx512::phase_f64(g);
  }
#endif
  if constexpr (sizeof(T) == 4)
    return tconv::kernels::avx2::phase_f32(g);
  else
    return tconv::kernels::avx2::phase_f64(g);
}

template <class T>
void check(Rng& r, int isa, int id) {
  Problem<T> P;
  P.isa = isa;
  if (r.range(0, 2) != 0) {
    // Every (channels, phases) the multi-phase kernels take; 4 x 4 only at 512 bits.
    static const int kCases[12][2] = {{1, 2}, {1, 3}, {1, 4}, {2, 2}, {2, 3}, {2, 4},
                                      {3, 2}, {3, 3}, {3, 4}, {4, 2}, {4, 3}, {4, 4}};
    const auto c = r.range(0, isa == 512 ? 11 : 10);
    P.n = kCases[c][0];
    P.phases = kCases[c][1];
  } else {
    P.n = r.range(1, 4);
  }
  P.k = r.range(0, 9) == 0 ? 0 : r.range(1, 6);
  P.pairs = r.range(1, 6);
  P.m = r.range(0, 3) == 0 ? r.range(1, 20) : r.range(1, 160);
  P.with_bias = r.range(0, 1) != 0;
  P.with_partner = r.range(0, 5) != 0;
  for (std::int64_t p = 0; p < P.pairs; ++p) {
    std::int64_t lo, hi;
    switch (r.range(0, 5)) {
      case 0:  // past both ends
        lo = -r.range(0, 70);
        hi = P.m + r.range(0, 70);
        break;
      case 1:
        lo = 0;
        hi = P.m;
        break;
      default:
        lo = r.range(-40, P.m + 10);
        hi = lo + r.range(-2, P.m + 40);
        if (r.range(0, 3) == 0) lo = -r.range(0, 3);
        if (r.range(0, 3) == 0) hi = P.m - r.range(0, 3);
    }
    P.lo.push_back(lo);
    P.hi.push_back(hi);
  }
  std::int64_t width = 1;
  for (std::int64_t p = 0; p < P.pairs; ++p) width = std::max(width, P.hi[p] - P.lo[p]);
  P.a_ks = width + r.range(0, 3);

  // A: each pair's K rows flush against the unreadable page after them or before them.
  const std::int64_t page = sysconf(_SC_PAGESIZE);
  const std::int64_t page_e = page / static_cast<std::int64_t>(sizeof(T));
  const std::int64_t data_e = (P.k * P.a_ks + 16 + page_e - 1) / page_e * page_e;
  const std::int64_t span_e = data_e + page_e;
  Fenced f;
  f.bytes =
      static_cast<std::size_t>((span_e * P.pairs + page_e) * static_cast<std::int64_t>(sizeof(T)));
  f.map = mmap(nullptr, f.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (f.map == MAP_FAILED) {
    std::perror("mmap");
    std::exit(2);
  }
  T* a = static_cast<T*>(f.map);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (std::int64_t i = 0; i < span_e * P.pairs + page_e; ++i)
    if (i % span_e >= page_e) a[i] = nan;
  for (std::int64_t p = 0; p <= P.pairs; ++p)
    if (mprotect(reinterpret_cast<char*>(a + p * span_e), static_cast<std::size_t>(page),
                 PROT_NONE) != 0) {
      std::perror("mprotect");
      std::exit(2);
    }
  for (std::int64_t p = 0; p < P.pairs; ++p) {
    const std::int64_t w = P.hi[p] - P.lo[p];
    const std::int64_t used = P.k > 0 && w > 0 ? (P.k - 1) * P.a_ks + w : 0;
    const std::int64_t start = r.range(0, 1) ? (p + 1) * span_e - used : p * span_e + page_e;
    P.a_off.push_back(start - P.lo[p]);
    for (std::int64_t k = 0; k < P.k; ++k)
      for (std::int64_t mm = P.lo[p]; mm < P.hi[p]; ++mm)
        a[P.a_off[p] + k * P.a_ks + mm] = static_cast<T>(r.unit());
  }

  // B: a K x kB panel per (pair, phase); partners feed the phases their pair lacks.
  const std::int64_t nph = std::max<std::int64_t>(P.phases, 1);
  P.b.resize(static_cast<std::size_t>(P.pairs * nph * P.k * kB + 8));
  for (auto& v : P.b) v = static_cast<T>(r.unit());
  P.bias.resize(4);
  for (auto& v : P.bias) v = static_cast<T>(r.unit());
  if (P.phases == 0) {
    for (std::int64_t p = 0; p < P.pairs; ++p) P.b_off.push_back(p * P.k * kB);
  } else {
    const int full = (1 << P.phases) - 1;
    std::vector<int> masks(static_cast<std::size_t>(P.pairs));
    P.partner.assign(static_cast<std::size_t>(P.pairs), -1);
    for (auto& mk : masks) mk = static_cast<int>(r.range(1, full));
    for (std::int64_t p = 0; P.with_partner && p + 1 < P.pairs; ++p) {
      if (P.partner[p] != -1 || masks[p] == full || r.range(0, 2) == 0) continue;
      for (std::int64_t q = p + 1; q < P.pairs; ++q)
        if (P.partner[q] == -1 && r.range(0, 1)) {
          P.partner[p] = q;
          P.partner[q] = -2;
          masks[q] = full ^ masks[p];
          break;
        }
    }
    for (std::int64_t p = 0; p < P.pairs; ++p)
      for (std::int64_t ph = 0; ph < P.phases; ++ph)
        P.b_off.push_back(((masks[p] >> ph) & 1) ? (p * nph + ph) * P.k * kB : -1);
  }

  // C: channels_first rows (the interleaving stores) or channels_last.
  const bool rows = r.range(0, 1) != 0;
  if (P.phases == 0) {
    P.c_ms = rows ? 1 : P.n;
    P.c_ns = rows ? P.m + 3 : 1;
    P.c_size = P.m * P.n + 3 * P.n + 8;
  } else if (rows) {
    P.c_ps = 1;
    P.c_ms = P.phases;
    P.c_ns = P.m * P.phases + 5;
    P.c_size = P.c_ns * P.n + 8;
  } else {
    P.c_ns = 1;
    P.c_ps = P.n;
    P.c_ms = P.n * P.phases;
    P.c_size = P.m * P.c_ms + 8;
  }
  const T sentinel = static_cast<T>(12345.0);
  std::vector<T> c(static_cast<std::size_t>(P.c_size), sentinel);
  if (!run(P, a, c.data(), true)) {
    std::printf("FAIL %d: the kernel refused %ld channels x %ld phases\n", id, (long)P.n,
                (long)P.phases);
    ++g_failed;
    return;
  }

  // Against the formula, with zeros outside the windows.
  bool bad = false;
  std::vector<char> stored(c.size(), 0);
  for (std::int64_t ph = 0; ph < nph && !bad; ++ph)
    for (std::int64_t mm = 0; mm < P.m && !bad; ++mm)
      for (std::int64_t nn = 0; nn < P.n && !bad; ++nn) {
        double want = P.with_bias ? static_cast<double>(P.bias[nn]) : 0.0, mag = std::fabs(want);
        for (std::int64_t p = 0; p < P.pairs; ++p) {
          const std::int64_t bo = P.phases ? P.b_off[p * P.phases + ph] : P.b_off[p];
          if (mm < P.lo[p] || mm >= P.hi[p] || bo < 0) continue;
          for (std::int64_t k = 0; k < P.k; ++k) {
            const double t = static_cast<double>(a[P.a_off[p] + k * P.a_ks + mm]) *
                             static_cast<double>(P.b[bo + k * kB + nn]);
            want += t;
            mag += std::fabs(t);
          }
        }
        const std::int64_t at = ph * P.c_ps + mm * P.c_ms + nn * P.c_ns;
        stored[at] = 1;
        const double got = static_cast<double>(c[at]);
        const double tol = (sizeof(T) == 4 ? 1e-5 : 1e-13) * (mag + 1.0);
        if (!(std::fabs(got - want) <= tol)) {
          std::printf("FAIL %d: C[phase %ld][row %ld][channel %ld] = %g, expected %g\n", id,
                      (long)ph, (long)mm, (long)nn, got, want);
          bad = true;
        }
      }
  for (std::size_t i = 0; i < c.size() && !bad; ++i)
    if (!stored[i] && !(c[i] == sentinel)) {
      std::printf("FAIL %d: wrote outside the output (element %zu)\n", id, i);
      bad = true;
    }

  // The same call without windows, on the rows zero-filled and spaced so that every read
  // lands in them: the same numbers, to the bit (but the sign of a zero).
  if (!bad) {
    std::int64_t lo_min = 0, hi_max = P.m + 64;
    for (std::int64_t p = 0; p < P.pairs; ++p) {
      lo_min = std::min(lo_min, P.lo[p]);
      hi_max = std::max(hi_max, P.hi[p]);
    }
    Problem<T> Q = P;
    Q.a_ks = hi_max - lo_min;
    std::vector<T> z(static_cast<std::size_t>(P.pairs * P.k * Q.a_ks + 1), T(0));
    for (std::int64_t p = 0; p < P.pairs; ++p) {
      Q.a_off[p] = p * P.k * Q.a_ks - lo_min;
      for (std::int64_t k = 0; k < P.k; ++k)
        for (std::int64_t mm = P.lo[p]; mm < P.hi[p]; ++mm)
          z[Q.a_off[p] + k * Q.a_ks + mm] = a[P.a_off[p] + k * P.a_ks + mm];
    }
    std::vector<T> c2(c.size(), sentinel);
    run(Q, z.data(), c2.data(), false);
    for (std::size_t i = 0; i < c.size() && !bad; ++i)
      if (!(c[i] == c2[i])) {
        std::printf("FAIL %d: element %zu is %g with windows, %g without\n", id, i,
                    static_cast<double>(c[i]), static_cast<double>(c2[i]));
        bad = true;
      }
  }
  if (bad) {
    ++g_failed;
    std::printf("  %s isa %d, %ld channels, %ld phases, m %ld, k %ld, windows:",
                sizeof(T) == 4 ? "float32" : "float64", isa, (long)P.n, (long)P.phases, (long)P.m,
                (long)P.k);
    for (std::int64_t p = 0; p < P.pairs; ++p)
      std::printf(" [%ld, %ld)%s", (long)P.lo[p], (long)P.hi[p],
                  P.phases && P.with_partner && P.partner[p] >= 0 ? " + partner" : "");
    std::printf("\n");
  }
}

#ifdef TCONV_HAVE_AVX512
// The AVX-512 kernel over every phase of two dims (GridCall), which always reads in place:
// groups of pairs (one input row each, its shifts), a row mask per group and a column mask
// per pair, windows as above, and output rows or row tails it must not store.
template <class T>
void check_grid(Rng& r, int id) {
  static const int kShapes[][3] = {{1, 2, 2}, {1, 3, 3}, {1, 4, 4}, {1, 2, 4}, {1, 4, 3},
                                   {2, 2, 2}, {2, 3, 4}, {2, 4, 2}, {3, 2, 2}, {3, 3, 2},
                                   {3, 2, 4}, {4, 2, 2}, {4, 3, 2}, {2, 3, 3}};
  const auto& sh = kShapes[r.range(0, 13)];
  const std::int64_t n = sh[0], RY = sh[1], PH = sh[2];
  const std::int64_t U = r.range(1, 4), groups = r.range(1, 3), pairs = U * groups;
  const std::int64_t K = r.range(0, 9) == 0 ? 0 : r.range(1, 6);
  const std::int64_t m = r.range(0, 3) == 0 ? r.range(1, 20) : r.range(1, 100);
  std::vector<std::int64_t> lo, hi, rmask, cmask;
  for (std::int64_t p = 0; p < pairs; ++p) {
    std::int64_t l = r.range(-40, m + 10), h = l + r.range(-2, m + 40);
    if (r.range(0, 2) == 0) {
      l = -r.range(0, 20);
      h = m + r.range(0, 20);
    }
    lo.push_back(l);
    hi.push_back(h);
    rmask.push_back(p % U == 0 ? r.range(1, (1 << RY) - 1) : rmask[p - 1]);
    cmask.push_back(r.range(1, (1 << PH) - 1));
  }
  std::int64_t width = 1;
  for (std::int64_t p = 0; p < pairs; ++p) width = std::max(width, hi[p] - lo[p]);
  const std::int64_t a_ks = width + r.range(0, 3);
  const std::int64_t page = sysconf(_SC_PAGESIZE);
  const std::int64_t page_e = page / static_cast<std::int64_t>(sizeof(T));
  const std::int64_t data_e = (K * a_ks + 16 + page_e - 1) / page_e * page_e;
  const std::int64_t span_e = data_e + page_e;
  Fenced f;
  f.bytes =
      static_cast<std::size_t>((span_e * pairs + page_e) * static_cast<std::int64_t>(sizeof(T)));
  f.map = mmap(nullptr, f.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (f.map == MAP_FAILED) {
    std::perror("mmap");
    std::exit(2);
  }
  T* a = static_cast<T*>(f.map);
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (std::int64_t i = 0; i < span_e * pairs + page_e; ++i)
    if (i % span_e >= page_e) a[i] = nan;
  for (std::int64_t p = 0; p <= pairs; ++p)
    if (mprotect(reinterpret_cast<char*>(a + p * span_e), static_cast<std::size_t>(page),
                 PROT_NONE) != 0) {
      std::perror("mprotect");
      std::exit(2);
    }
  std::vector<std::int64_t> a_off, b_off;
  for (std::int64_t p = 0; p < pairs; ++p) {
    const std::int64_t w = hi[p] - lo[p];
    const std::int64_t used = K > 0 && w > 0 ? (K - 1) * a_ks + w : 0;
    const std::int64_t start = r.range(0, 1) ? (p + 1) * span_e - used : p * span_e + page_e;
    a_off.push_back(start - lo[p]);
    for (std::int64_t k = 0; k < K; ++k)
      for (std::int64_t mm = lo[p]; mm < hi[p]; ++mm)
        a[a_off[p] + k * a_ks + mm] = static_cast<T>(r.unit());
  }
  const std::int64_t b_ld = RY * PH * n;
  std::vector<T> b(static_cast<std::size_t>(pairs * K * b_ld + 1)), bias(4);
  for (auto& v : b) v = static_cast<T>(r.unit());
  for (auto& v : bias) v = static_cast<T>(r.unit());
  for (std::int64_t p = 0; p < pairs; ++p) b_off.push_back(p * K * b_ld);
  // Output: rows of m * PH positions (phases interleaved), or channels_last.
  const bool cf = r.range(0, 1) != 0;
  const std::int64_t c_ps = cf ? 1 : n, c_ms = PH * c_ps, c_ns = cf ? m * PH + 5 : 1;
  const std::int64_t c_rs = cf ? c_ns * n + 3 : m * c_ms + 7;
  const std::int64_t c_size = RY * c_rs + 8;
  const std::int64_t rows_valid = r.range(0, 2) == 0 ? r.range(1, RY) : RY;
  const std::int64_t outputs = r.range(0, 2) == 0 ? r.range(1, m * PH) : m * PH;
  const bool with_bias = r.range(0, 1) != 0;
  const T sentinel = static_cast<T>(12345.0);
  std::vector<T> c(static_cast<std::size_t>(c_size), sentinel);
  GridCall<T> g;
  g.a = a;
  g.a_off = a_off.data();
  g.m_lo = lo.data();
  g.m_hi = hi.data();
  g.b = b.data();
  g.b_off = b_off.data();
  g.row_mask = rmask.data();
  g.col_mask = cmask.data();
  g.pairs = pairs;
  g.group = U;
  g.k = K;
  g.a_ks = a_ks;
  g.b_ld = b_ld;
  g.row_phases = RY;
  g.phases = PH;
  g.c = c.data();
  g.c_rs = c_rs;
  g.c_ms = c_ms;
  g.c_ps = c_ps;
  g.c_ns = c_ns;
  g.m = m;
  g.n = n;
  g.rows_valid = rows_valid;
  g.outputs = outputs;
  g.bias = with_bias ? bias.data() : nullptr;
  // Either form of the kernel: weights' broadcasts folded into the FMAs or not (avx512.hpp).
  const bool folded = r.range(0, 1) != 0;
  bool ran;
  if constexpr (sizeof(T) == 4)
    ran = folded ? tconv::kernels::avx512::grid_f32_folded(g) : tconv::kernels::avx512::grid_f32(g);
  else
    ran = folded ? tconv::kernels::avx512::grid_f64_folded(g) : tconv::kernels::avx512::grid_f64(g);
  bool bad = !ran;
  if (!ran)
    std::printf("FAIL %d: the kernel refused %ld x %ld x %ld\n", id, (long)n, (long)RY, (long)PH);
  std::vector<char> stored(c.size(), 0);
  for (std::int64_t ry = 0; ry < rows_valid && !bad; ++ry)
    for (std::int64_t ph = 0; ph < PH && !bad; ++ph)
      for (std::int64_t mm = 0; mm < m && !bad; ++mm) {
        if (mm * PH + ph >= outputs) continue;
        for (std::int64_t nn = 0; nn < n && !bad; ++nn) {
          double want = with_bias ? static_cast<double>(bias[nn]) : 0.0, mag = std::fabs(want);
          for (std::int64_t p = 0; p < pairs; ++p) {
            if (mm < lo[p] || mm >= hi[p] || !((rmask[p] >> ry) & 1) || !((cmask[p] >> ph) & 1))
              continue;
            for (std::int64_t k = 0; k < K; ++k) {
              const double t =
                  static_cast<double>(a[a_off[p] + k * a_ks + mm]) *
                  static_cast<double>(b[b_off[p] + k * b_ld + (ry * PH + ph) * n + nn]);
              want += t;
              mag += std::fabs(t);
            }
          }
          const std::int64_t at = ry * c_rs + mm * c_ms + ph * c_ps + nn * c_ns;
          stored[at] = 1;
          const double got = static_cast<double>(c[at]);
          const double tol = (sizeof(T) == 4 ? 1e-5 : 1e-13) * (mag + 1.0);
          if (!(std::fabs(got - want) <= tol)) {
            std::printf("FAIL %d: C[row %ld][phase %ld][pos %ld][channel %ld] = %g, expected %g\n",
                        id, (long)ry, (long)ph, (long)mm, (long)nn, got, want);
            bad = true;
          }
        }
      }
  for (std::size_t i = 0; i < c.size() && !bad; ++i)
    if (!stored[i] && !(c[i] == sentinel)) {
      std::printf("FAIL %d: wrote outside the output (element %zu)\n", id, i);
      bad = true;
    }
  if (bad) {
    ++g_failed;
    std::printf("  grid kernel %s, %ld channels x %ld rows x %ld phases, m %ld, k %ld\n",
                sizeof(T) == 4 ? "float32" : "float64", (long)n, (long)RY, (long)PH, (long)m,
                (long)K);
  }
}
#endif
}  // namespace

int main(int argc, char** argv) {
  const int problems = argc > 1 ? std::atoi(argv[1]) : 1500;
  ::unsetenv("TCONV_MAX_ISA");
  std::vector<int> isas;
  for (tconv::Isa i : tconv::available_isas()) {
    if (i == tconv::Isa::avx2) isas.push_back(2);
#ifdef TCONV_HAVE_AVX512
    if (i == tconv::Isa::avx512) isas.push_back(512);
#endif
  }
  if (isas.empty()) {
    std::printf("no AVX2 on this CPU: nothing to check\n");
    return 0;
  }
  Rng r{20261124};
  for (int i = 0; i < problems && g_failed < 20; ++i) {
    const int isa =
        isas[static_cast<std::size_t>(r.range(0, static_cast<std::int64_t>(isas.size()) - 1))];
    if (r.range(0, 1))
      check<float>(r, isa, i);
    else
      check<double>(r, isa, i);
  }
#ifdef TCONV_HAVE_AVX512
  if (std::find(isas.begin(), isas.end(), 512) != isas.end())
    for (int i = 0; i < problems / 3 && g_failed < 20; ++i) {
      if (r.range(0, 1))
        check_grid<float>(r, problems + i);
      else
        check_grid<double>(r, problems + i);
    }
#endif
  std::printf("%d problems, %d failed\n", problems, g_failed);
  return g_failed ? 1 : 0;
}
