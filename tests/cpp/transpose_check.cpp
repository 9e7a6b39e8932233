// The kernel sets' strided transposes (KernelSet::transpose and transpose_stream), called
// directly: AVX2 float32 and float64, AVX-512 float32 (16 x 16 blocks, edges under lane masks),
// wherever the CPU has them. Each is checked against the definition
// dst[j * dl + i] = src[i * sl + j] on every shape up to 40 x 40 around the block sizes, and
// on random shapes, strides and destination alignments (whole 64-byte rows, where the stream
// form writes with streaming stores, and rows off a line), in both sweep orders; every
// destination element outside the block must keep its value.
//
// Usage: transpose_check. Exits 1 on any mismatch, 77 (skipped) without AVX2.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "kernels/avx2.hpp"
#include "kernels/microkernel.hpp"
#include "support.hpp"
#include "tconv/tconv.hpp"
#ifdef TCONV_HAVE_AVX512
#include "kernels/avx512.hpp"
#endif

namespace {

int g_failed = 0;

struct Case {
  std::int64_t rows, cols, sl, dl, dst_skip;
  bool dst_order;
};

template <class T>
void check_one(tconv::kernels::TransposeFn<T> fn, const char* name, const Case& c) {
  const std::int64_t src_n = c.rows == 0 ? 0 : (c.rows - 1) * c.sl + c.cols;
  std::vector<T> src(static_cast<std::size_t>(src_n));
  for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<T>(i % 997) + T(0.25);
  // A 64-byte aligned destination, the block starting dst_skip elements into it.
  const std::int64_t dst_n = c.dst_skip + c.cols * c.dl + 64;
  std::vector<T> store(static_cast<std::size_t>(dst_n + 64 / sizeof(T)));
  const auto addr = reinterpret_cast<std::uintptr_t>(store.data());
  T* dst = store.data() + (64 - addr % 64) % 64 / sizeof(T);
  const T kUntouched = T(-7.5);
  for (std::int64_t i = 0; i < dst_n; ++i) dst[i] = kUntouched;
  fn(src.data(), c.sl, dst + c.dst_skip, c.dl, c.rows, c.cols, c.dst_order);
  int bad = 0;
  for (std::int64_t e = 0; e < dst_n && bad == 0; ++e) {
    const std::int64_t o = e - c.dst_skip, j = o >= 0 ? o / c.dl : -1, i = o >= 0 ? o % c.dl : -1;
    const bool inside = o >= 0 && j < c.cols && i < c.rows;
    const T want = inside ? src[static_cast<std::size_t>(i * c.sl + j)] : kUntouched;
    if (dst[e] != want) bad = 1;
  }
  if (bad && ++g_failed <= 20)
    std::printf("FAIL %s: rows=%ld cols=%ld sl=%ld dl=%ld skip=%ld dst_order=%d\n", name,
                (long)c.rows, (long)c.cols, (long)c.sl, (long)c.dl, (long)c.dst_skip,
                (int)c.dst_order);
}

template <class T>
void check(tconv::kernels::TransposeFn<T> fn, const char* name) {
  if (fn == nullptr) return;
  for (std::int64_t rows = 0; rows <= 40; ++rows)
    for (std::int64_t cols = 0; cols <= 40; ++cols)
      for (int order = 0; order < 2; ++order)
        check_one(fn, name, {rows, cols, cols + 3, rows + 1, 0, order == 1});
  tconv_test::Rng r{20261205};
  for (int trial = 0; trial < 3000; ++trial) {
    const std::int64_t rows = r.range(1, 70), cols = r.range(1, 70);
    // Half the destinations have rows of whole lines on a line (the streaming case).
    const bool lines = r.range(0, 1) == 0;
    const std::int64_t per_line = 64 / static_cast<std::int64_t>(sizeof(T));
    const std::int64_t dl =
        lines ? (rows + per_line - 1) / per_line * per_line + per_line * r.range(0, 2)
              : rows + r.range(0, 20);
    const std::int64_t skip = lines ? 0 : r.range(0, 15);
    check_one(fn, name, {rows, cols, cols + r.range(0, 20), dl, skip, r.range(0, 1) == 1});
  }
}

}  // namespace

int main() {
  bool avx2 = false, avx512 = false;
  for (tconv::Isa i : tconv::available_isas()) {
    avx2 = avx2 || i == tconv::Isa::avx2;
    avx512 = avx512 || i == tconv::Isa::avx512;
  }
  if (!avx2) {
    std::printf("no AVX2 on this CPU: nothing to check\n");
    return 77;
  }
  const auto a32 = tconv::kernels::avx2::kernels_f32();
  const auto a64 = tconv::kernels::avx2::kernels_f64();
  check<float>(a32.transpose, "avx2 float32");
  check<float>(a32.transpose_stream, "avx2 float32 stream");
  check<double>(a64.transpose, "avx2 float64");
#ifdef TCONV_HAVE_AVX512
  if (avx512) {
    const auto b32 = tconv::kernels::avx512::kernels_f32(false);
    check<float>(b32.transpose, "avx512 float32");
    check<float>(b32.transpose_stream, "avx512 float32 stream");
  }
#endif
  (void)avx512;
  if (g_failed) {
    std::printf("%d failures\n", g_failed);
    return 1;
  }
  std::printf("transpose_check: every check passed\n");
  return 0;
}
