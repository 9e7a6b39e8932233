// Every instruction set this build can run against the portable kernel and a literal scatter loop.
//
// A plain program (no test framework) so that it also builds with a cross compiler and runs under
// user-mode emulation, where neither Python nor GoogleTest is at hand. Layers are drawn from a
// fixed-seed generator to hit each path of the phase driver: one GEMM (kernel == stride), phases
// without taps, tiny C_out (position kernel), channel panels with tails, grouped and depthwise
// layers, dilation, asymmetric padding, output_padding, both data formats, both dtypes, with and
// without bias, strided outputs, on 1 and 2 threads.
//
// Usage: cross_isa_check [configurations]   (default 300). Exits 1 on any mismatch.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "support.hpp"
#include "tconv/tconv.hpp"

namespace {

using tconv::DataFormat;
using tconv::Isa;

int g_failed = 0;
int g_passed = 0;

void fail(const std::string& what) {
  ++g_failed;
  std::printf("FAIL: %s\n", what.c_str());
}

using tconv_test::Rng;

struct Layer {
  int rank = 1;
  DataFormat format = DataFormat::channels_first;
  std::int64_t batch = 1, groups = 1, cin_g = 1, cout_g = 1;
  std::vector<std::int64_t> size, kernel, stride, dilation, pad_lo, pad_hi, outpad;
  bool bias = false;
  bool strided_y = false;  // y with a gap after each channel row / position
  bool strided_x = false;  // x likewise, the gaps holding NaN (a read of one shows)
  int threads = 1;
  bool f64 = false;
};

Layer draw(Rng& r) {
  Layer l;
  l.rank = static_cast<int>(r.range(1, 3));
  l.format = r.range(0, 1) ? DataFormat::channels_last : DataFormat::channels_first;
  l.batch = r.range(1, 2);
  const std::int64_t kind = r.range(0, 5);
  if (kind == 0) {  // depthwise
    l.groups = r.range(1, 6);
    l.cin_g = 1;
    l.cout_g = 1;
  } else {
    l.groups = r.pick(std::vector<std::int64_t>{1, 1, 1, 2, 3});
    l.cin_g = r.range(1, 8);
    // Around the channel panels (16 fp32 / 8 fp64 on NEON and AVX2) and the position kernel's
    // 1-4 channels; C_out = groups * cout_g stays within 1-40 for one group.
    const std::vector<std::int64_t> couts{1,  2,  3,  4,  5,  7,  8,  9,  12,
                                          15, 16, 17, 23, 24, 31, 32, 33, 40};
    l.cout_g = r.pick(couts);
    if (l.groups > 1) l.cout_g = std::max<std::int64_t>(1, l.cout_g / l.groups);
  }
  const bool shuffle = kind == 5;  // kernel == stride, no padding: the one-GEMM path
  for (int d = 0; d < l.rank; ++d) {
    const bool last = d == l.rank - 1;
    l.size.push_back(last ? r.range(1, 40) : r.range(1, 4));
    const std::int64_t k = r.range(1, 5), s = r.range(1, 4);
    l.kernel.push_back(shuffle ? s : k);
    l.stride.push_back(s);
    l.dilation.push_back(shuffle ? 1 : r.pick(std::vector<std::int64_t>{1, 1, 2, 3}));
    const std::int64_t ek = l.dilation[d] * (l.kernel[d] - 1) + 1;
    const std::int64_t full = (l.size[d] - 1) * l.stride[d] + ek;
    const std::int64_t lo =
        shuffle ? 0 : r.range(0, std::max<std::int64_t>(0, std::min(ek - 1, full - 1)));
    const std::int64_t hi =
        shuffle ? 0 : r.range(0, std::max<std::int64_t>(0, std::min(ek - 1, full - 1 - lo)));
    l.pad_lo.push_back(lo);
    l.pad_hi.push_back(hi);
    l.outpad.push_back(shuffle ? 0 : r.range(0, std::max(l.stride[d], l.dilation[d]) - 1));
  }
  l.bias = r.range(0, 1) != 0;
  l.strided_y = r.range(0, 3) == 0;
  l.strided_x = r.range(0, 3) == 0;
  l.threads = static_cast<int>(r.range(1, 2));
  l.f64 = r.range(0, 1) != 0;
  return l;
}

std::string describe(const Layer& l) {
  auto vec = [](const std::vector<std::int64_t>& v) {
    std::string s = "(";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
    return s + ")";
  };
  return std::string(l.f64 ? "f64" : "f32") +
         (l.format == DataFormat::channels_last ? " channels_last" : " channels_first") +
         " batch " + std::to_string(l.batch) + " groups " + std::to_string(l.groups) + " cin/g " +
         std::to_string(l.cin_g) + " cout/g " + std::to_string(l.cout_g) + " size " + vec(l.size) +
         " kernel " + vec(l.kernel) + " stride " + vec(l.stride) + " dilation " + vec(l.dilation) +
         " pads " + vec(l.pad_lo) + vec(l.pad_hi) + " output_padding " + vec(l.outpad) +
         (l.bias ? " bias" : "") + (l.strided_y ? " strided y" : "") +
         (l.strided_x ? " strided x" : "") + " threads " + std::to_string(l.threads);
}

// The definition (tconv_test::scatter) over C-contiguous x and w, accumulated in long double
// from zero, bias last.
std::vector<long double> scatter(const tconv::Geometry& g, const std::vector<double>& x,
                                 const std::vector<double>& w, const std::vector<double>* bias) {
  const std::vector<std::int64_t> xs = g.input_shape(), ws = g.weight_shape(),
                                  ys = g.output_shape();
  std::size_t ny = 1;
  for (auto e : ys) ny *= static_cast<std::size_t>(e);
  std::vector<long double> y(ny, 0.0L);
  auto bias_at = [&](std::int64_t c) { return (*bias)[static_cast<std::size_t>(c)]; };
  tconv_test::scatter(
      g, [&](const tconv_test::Index& i) { return x[tconv_test::c_offset(xs, i)]; },
      [&](const tconv_test::Index& i) { return w[tconv_test::c_offset(ws, i)]; },
      bias ? &bias_at : nullptr,
      [&](const tconv_test::Index& i, double a, double b) {
        y[tconv_test::c_offset(ys, i)] += static_cast<long double>(a) * b;
      });
  return y;
}

// A C-order array, contiguous or with one element of gap after every innermost row.
template <class T>
struct Array {
  std::vector<T> buf;
  std::vector<std::int64_t> strides;  // empty: contiguous
  std::vector<std::int64_t> shape;

  Array(const std::vector<std::int64_t>& shape_, bool strided) : shape(shape_) {
    // Strided: one element of gap after every innermost row, so the kernels' strides differ
    // from the contiguous ones, and stray reads and writes touch NaNs the check can see.
    std::vector<std::int64_t> padded = shape;
    if (strided) padded.back() += 1;
    std::int64_t total = 1;
    for (auto e : padded) total *= e;
    buf.assign(static_cast<std::size_t>(total), std::numeric_limits<T>::quiet_NaN());
    if (strided) {
      strides.assign(shape.size(), 1);
      for (std::size_t a = shape.size() - 1; a-- > 0;) strides[a] = strides[a + 1] * padded[a + 1];
    }
  }
  // Element i of the logical C-order output.
  std::size_t at(std::int64_t i) const {
    if (strides.empty()) return static_cast<std::size_t>(i);
    std::int64_t off = 0;
    for (std::size_t a = shape.size(); a-- > 0;) {
      off += (i % shape[a]) * strides[a];
      i /= shape[a];
    }
    return static_cast<std::size_t>(off);
  }
};

template <class T>
double rel_error(const Array<T>& y, const std::vector<long double>& want, bool* gaps_ok) {
  long double scale = 1.0L, err = 0.0L;
  for (auto v : want) scale = std::max(scale, std::fabs(v));
  std::vector<char> used(y.buf.size(), 0);
  for (std::size_t i = 0; i < want.size(); ++i) {
    const std::size_t j = y.at(static_cast<std::int64_t>(i));
    used[j] = 1;
    const long double got = y.buf[j];
    if (std::isnan(got)) return std::numeric_limits<double>::infinity();
    err = std::max(err, std::fabs(got - want[i]));
  }
  *gaps_ok = true;
  for (std::size_t j = 0; j < y.buf.size(); ++j)
    if (!used[j] && !std::isnan(y.buf[j])) *gaps_ok = false;
  return static_cast<double>(err / scale);
}

template <class T>
void check_layer(const Layer& l, Rng& r, const std::vector<Isa>& isas, std::vector<int>* ran) {
  tconv::LayerSpec spec;
  spec.rank = l.rank;
  spec.stride = l.stride;
  spec.dilation = l.dilation;
  spec.pad_lo = l.pad_lo;
  spec.pad_hi = l.pad_hi;
  spec.output_padding = l.outpad;
  spec.groups = l.groups;
  spec.data_format = l.format;
  const std::int64_t cin = l.cin_g * l.groups, cout = l.cout_g * l.groups;
  std::vector<std::int64_t> xs{l.batch}, ws;
  if (l.format == DataFormat::channels_first) {
    xs.push_back(cin);
    xs.insert(xs.end(), l.size.begin(), l.size.end());
    ws = {cin, l.cout_g};
    ws.insert(ws.end(), l.kernel.begin(), l.kernel.end());
  } else {
    xs.insert(xs.end(), l.size.begin(), l.size.end());
    xs.push_back(cin);
    ws = l.kernel;
    ws.push_back(l.cout_g);
    ws.push_back(cin);
  }
  const tconv::Geometry g = tconv::resolve_geometry(xs, ws, spec);
  auto count = [](const std::vector<std::int64_t>& s) {
    std::int64_t n = 1;
    for (auto e : s) n *= e;
    return static_cast<std::size_t>(n);
  };
  // Values exactly representable in both dtypes, so the two precisions see the same layer.
  std::vector<double> xd(count(xs)), wd(count(ws)), bd(static_cast<std::size_t>(cout));
  for (auto& v : xd) v = static_cast<float>(r.unit());
  for (auto& v : wd) v = static_cast<float>(r.unit());
  for (auto& v : bd) v = static_cast<float>(r.unit());
  const std::vector<T> w(wd.begin(), wd.end()), b(bd.begin(), bd.end());
  Array<T> x(xs, l.strided_x);
  for (std::size_t i = 0; i < xd.size(); ++i)
    x.buf[x.at(static_cast<std::int64_t>(i))] = static_cast<T>(xd[i]);
  const std::vector<long double> want = scatter(g, xd, wd, l.bias ? &bd : nullptr);

  const double tol = l.f64 ? 1e-12 : 2e-5;
  const std::vector<std::int64_t> ys = g.output_shape();
  std::vector<Array<T>> outs;
  for (Isa isa : isas) {
    Array<T> y(ys, l.strided_y);
    tconv::Options opt;
    opt.num_threads = l.threads;
    opt.cap_isa = true;
    opt.max_isa = isa;
    tconv::conv_transpose(g, x.buf.data(), x.strides, w.data(), {}, l.bias ? b.data() : nullptr,
                          y.buf.data(), y.strides, opt);
    const Isa used = tconv::last_call_isa();
    ++(*ran)[static_cast<int>(used)];
    // Small layers always go to the phase driver, on the ISA asked for.
    if (used != isa)
      fail(std::string("asked for ") + tconv::isa_name(isa) + ", ran " + tconv::isa_name(used) +
           ": " + describe(l));
    bool gaps_ok = false;
    const double err = rel_error(y, want, &gaps_ok);
    if (!(err <= tol))
      fail(std::string(tconv::isa_name(isa)) + " vs scatter: relative error " +
           std::to_string(err) + ": " + describe(l));
    if (!gaps_ok) fail(std::string(tconv::isa_name(isa)) + " wrote outside y: " + describe(l));
    outs.push_back(std::move(y));
  }
  // Each vector ISA against portable (the last), element by element.
  long double scale = 1.0L;
  for (auto v : want) scale = std::max(scale, std::fabs(v));
  for (std::size_t k = 0; k + 1 < outs.size(); ++k) {
    long double err = 0.0L;
    for (std::size_t i = 0; i < want.size(); ++i) {
      const std::size_t j = outs[k].at(static_cast<std::int64_t>(i));
      err = std::max(err, std::fabs(static_cast<long double>(outs[k].buf[j]) - outs.back().buf[j]));
    }
    if (!(err / scale <= tol))
      fail(std::string(tconv::isa_name(isas[k])) + " vs portable: relative error " +
           std::to_string(static_cast<double>(err / scale)) + ": " + describe(l));
  }
}

void check_isa_list() {
  const std::vector<Isa> isas = tconv::available_isas();
  std::string names;
  for (Isa i : isas) names += std::string(names.empty() ? "" : " ") + tconv::isa_name(i);
  std::printf("available ISAs: %s\n", names.c_str());
  if (isas.empty() || isas.back() != Isa::portable) fail("available_isas() must end with portable");
#if defined(__aarch64__)
  if (isas.size() != 2 || isas.front() != Isa::neon)
    fail("on AArch64 available_isas() must be {neon, portable}, got: " + names);
#endif
  if (tconv::isa_from_name("NEON") != Isa::neon ||
      std::string(tconv::isa_name(Isa::neon)) != "neon")
    fail("the name 'neon' must round-trip");
  try {
    (void)tconv::isa_from_name("sse9");
    fail("isa_from_name accepted 'sse9'");
  } catch (const std::invalid_argument& e) {
    if (std::string(e.what()).find("'neon'") == std::string::npos)
      fail(std::string("the unknown-ISA message must list neon: ") + e.what());
  }
  // Caps: portable lowers the choice, either vector ISA's name leaves the best one.
  tconv::set_max_isa(Isa::portable);
  if (tconv::active_isa() != Isa::portable) fail("set_max_isa(portable) did not cap");
  tconv::set_max_isa(Isa::neon);
  if (tconv::active_isa() != (isas.front() == Isa::avx512 ? isas[1] : isas.front()))
    fail("set_max_isa(neon) must allow the best ISA up to the avx2 / neon tier");
  // avx2 and neon are one tier: a cap at either leaves the best vector ISA below avx512.
  const Isa best_below_avx512 = isas.front() == Isa::avx512 ? isas[1] : isas.front();
  tconv::set_max_isa(Isa::avx2);
  if (tconv::active_isa() != best_below_avx512)
    fail("set_max_isa(avx2) must allow the best ISA up to avx2");
  tconv::set_max_isa(Isa::avx512);
  if (tconv::active_isa() != isas.front()) fail("set_max_isa(avx512) must allow the best ISA");
  ::setenv("TCONV_MAX_ISA", "portable", 1);
  if (tconv::active_isa() != Isa::portable) fail("TCONV_MAX_ISA=portable did not cap");
  ::unsetenv("TCONV_MAX_ISA");
  if (tconv::active_isa() != isas.front()) fail("unsetting TCONV_MAX_ISA did not lift the cap");
}

}  // namespace

int main(int argc, char** argv) {
  const int configs = argc > 1 ? std::atoi(argv[1]) : 300;
  ::unsetenv("TCONV_MAX_ISA");
  const int failed_before = g_failed;
  check_isa_list();
  if (g_failed == failed_before) ++g_passed;
  // Every ISA this CPU runs, best first and portable last.
  const std::vector<Isa> isas = tconv::available_isas();
  const Isa best = isas.front();
  std::vector<int> ran(4, 0);
  Rng r{20261124};
  for (int i = 0; i < configs; ++i) {
    const Layer l = draw(r);
    const int before = g_failed;
    try {
      if (l.f64)
        check_layer<double>(l, r, isas, &ran);
      else
        check_layer<float>(l, r, isas, &ran);
    } catch (const std::exception& e) {
      fail(std::string("exception: ") + e.what() + ": " + describe(l));
    }
    if (g_failed == before) ++g_passed;
  }
  auto calls = [&](Isa isa) { return ran[static_cast<int>(isa)]; };
  std::printf("calls per ISA: avx512 %d, avx2 %d, neon %d, portable %d\n", calls(Isa::avx512),
              calls(Isa::avx2), calls(Isa::neon), calls(Isa::portable));
  if (ran[static_cast<int>(best)] == 0) fail("the best ISA never ran");
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
