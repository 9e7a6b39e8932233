// The operator over pointers + strides, against a naive scatter written here: for every input
// position and kernel tap, y[i*stride + k*dilation - pad_lo] += x[i] * w[k].
//
// Every tensor lives in a buffer laid out by random element strides (permuted axes, gaps,
// negative and, for the inputs, zero strides); y's buffer starts as NaN so that writes
// outside its elements are seen.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tconv/tconv.hpp>
#include <thread>
#include <vector>

#include "support.hpp"

using tconv::DataFormat;
using tconv::Geometry;
using tconv::LayerSpec;
using V = tconv_test::Index;
using tconv_test::next_index;

namespace {

// ---- strided storage -------------------------------------------------------------------------

struct Layout {
  V shape, strides;         // strides in elements
  std::int64_t base = 0;    // offset of element (0, ..., 0) in the buffer
  std::int64_t size = 0;    // buffer length
  bool pass_empty = false;  // hand the operator an empty stride vector (C-contiguous)

  std::int64_t offset(const V& idx) const {
    std::int64_t o = base;
    for (std::size_t a = 0; a < idx.size(); ++a) o += idx[a] * strides[a];
    return o;
  }
  V given() const { return pass_empty ? V{} : strides; }
};

struct LayoutChoice {
  bool contiguous = false;  // plain C order (and pass {} as strides)
  bool allow_zero = false;  // broadcast axes are fine for inputs, not for y
};

Layout make_layout(const V& shape, std::mt19937_64& rng, LayoutChoice choice) {
  Layout l;
  l.shape = shape;
  const std::size_t n = shape.size();
  l.strides.assign(n, 0);
  std::vector<std::size_t> order(n);  // innermost first
  std::iota(order.begin(), order.end(), 0);
  std::reverse(order.begin(), order.end());
  auto coin = [&](int in) { return std::uniform_int_distribution<int>(0, in - 1)(rng) == 0; };
  if (!choice.contiguous) {
    if (coin(2)) std::shuffle(order.begin(), order.end(), rng);
  }
  std::int64_t acc = 1;
  for (std::size_t a : order) {
    const std::int64_t gap = (!choice.contiguous && coin(4)) ? 2 : 1;
    l.strides[a] = acc * gap;
    acc = l.strides[a] * std::max<std::int64_t>(shape[a], 1);
  }
  if (!choice.contiguous) {
    for (std::size_t a = 0; a < n; ++a) {
      if (choice.allow_zero && shape[a] > 1 && coin(6))
        l.strides[a] = 0;
      else if (coin(4))
        l.strides[a] = -l.strides[a];
    }
  }
  l.pass_empty = choice.contiguous && coin(2);
  std::int64_t lo = 0, hi = 0;
  for (std::size_t a = 0; a < n; ++a) {
    const std::int64_t reach = (std::max<std::int64_t>(shape[a], 1) - 1) * l.strides[a];
    (reach < 0 ? lo : hi) += reach;
  }
  l.base = -lo;
  l.size = hi - lo + 1;
  return l;
}

std::int64_t count(const V& shape) {
  std::int64_t c = 1;
  for (auto s : shape) c *= s;
  return c;
}

// ---- layer description -----------------------------------------------------------------------

struct Config {
  int rank = 1;
  bool channels_last = false;
  std::int64_t batch = 1, cin_g = 1, cout_g = 1, groups = 1;
  V input, kernel, stride, dilation, pad_lo, pad_hi, output_padding;
  bool bias = false;

  LayerSpec spec() const {
    LayerSpec s;
    s.rank = rank;
    s.stride = stride;
    s.dilation = dilation;
    s.pad_lo = pad_lo;
    s.pad_hi = pad_hi;
    s.output_padding = output_padding;
    s.groups = groups;
    s.data_format = channels_last ? DataFormat::channels_last : DataFormat::channels_first;
    return s;
  }
  V x_shape() const {
    const std::int64_t c = cin_g * groups;
    V s{batch};
    if (!channels_last) s.push_back(c);
    s.insert(s.end(), input.begin(), input.end());
    if (channels_last) s.push_back(c);
    return s;
  }
  V w_shape() const {
    const std::int64_t c = cin_g * groups;
    V s;
    if (!channels_last) {
      s = {c, cout_g};
      s.insert(s.end(), kernel.begin(), kernel.end());
    } else {
      s = kernel;
      s.push_back(cout_g);
      s.push_back(c);
    }
    return s;
  }
  std::string describe() const {
    std::ostringstream o;
    auto j = [&](const V& v) {
      o << '(';
      for (std::size_t i = 0; i < v.size(); ++i) o << (i ? "," : "") << v[i];
      o << ')';
    };
    o << (channels_last ? "NHWC" : "NCHW") << " rank " << rank << " N=" << batch
      << " cin_g=" << cin_g << " cout_g=" << cout_g << " groups=" << groups << " in=";
    j(input);
    o << " k=";
    j(kernel);
    o << " s=";
    j(stride);
    o << " d=";
    j(dilation);
    o << " pad_lo=";
    j(pad_lo);
    o << " pad_hi=";
    j(pad_hi);
    o << " op=";
    j(output_padding);
    o << " bias=" << bias;
    return o.str();
  }
};

Config base_config(int rank) {
  Config c;
  c.rank = rank;
  const auto r = static_cast<std::size_t>(rank);
  c.input.assign(r, 4);
  c.kernel.assign(r, 3);
  c.stride.assign(r, 1);
  c.dilation.assign(r, 1);
  c.pad_lo.assign(r, 0);
  c.pad_hi.assign(r, 0);
  c.output_padding.assign(r, 0);
  return c;
}

// ---- the check -------------------------------------------------------------------------------

template <class T>
void check_config(const Config& c, std::mt19937_64& rng, bool contiguous_only = false) {
  SCOPED_TRACE(c.describe());
  const LayerSpec spec = c.spec();
  const Geometry g = tconv::resolve_geometry(c.x_shape(), c.w_shape(), spec);

  const Layout lx = make_layout(g.input_shape(), rng, {contiguous_only, true});
  const Layout lw = make_layout(g.weight_shape(), rng, {contiguous_only, true});
  const Layout ly = make_layout(g.output_shape(), rng, {contiguous_only, false});
  std::uniform_real_distribution<double> val(-1.0, 1.0);
  std::vector<T> xb(static_cast<std::size_t>(lx.size)), wb(static_cast<std::size_t>(lw.size));
  for (auto& v : xb) v = static_cast<T>(val(rng));
  for (auto& v : wb) v = static_cast<T>(val(rng));
  std::vector<T> bias(static_cast<std::size_t>(g.out_channels));
  for (auto& v : bias) v = static_cast<T>(val(rng));

  // Reference in double, plus the sum of magnitudes and the term count for an error bound.
  const V yshape = g.output_shape();
  const std::int64_t ny = count(yshape);
  std::vector<double> ref(static_cast<std::size_t>(ny), 0.0), mag(ref.size(), 0.0);
  std::vector<std::int64_t> terms(ref.size(), 0);
  auto y_lin = [&](const V& idx) { return tconv_test::c_offset(yshape, idx); };  // into ref
  auto bias_at = [&](std::int64_t ch) {
    return static_cast<double>(bias[static_cast<std::size_t>(ch)]);
  };
  tconv_test::scatter(
      g, [&](const V& i) { return static_cast<double>(xb[lx.offset(i)]); },
      [&](const V& i) { return static_cast<double>(wb[lw.offset(i)]); },
      c.bias ? &bias_at : nullptr,
      [&](const V& i, double a, double b) {
        const std::size_t at = y_lin(i);
        ref[at] += a * b;
        mag[at] += std::fabs(a * b);
        ++terms[at];
      });

  const T* bias_ptr = c.bias ? bias.data() : nullptr;
  std::vector<tconv::Isa> isas = tconv::available_isas();
  std::vector<T> first;  // y of the first ISA at 1 thread, for the thread-count comparison
  for (tconv::Isa isa : isas) {
    for (int threads : {1, 2}) {
      SCOPED_TRACE(std::string("isa ") + tconv::isa_name(isa) + " threads " +
                   std::to_string(threads));
      std::vector<T> yb(static_cast<std::size_t>(ly.size), std::numeric_limits<T>::quiet_NaN());
      tconv::Options opt;
      opt.num_threads = threads;
      opt.cap_isa = true;
      opt.max_isa = isa;
      tconv::conv_transpose(g, xb.data() + lx.base, lx.given(), wb.data() + lw.base, lw.given(),
                            bias_ptr, yb.data() + ly.base, ly.given(), opt);
      std::vector<bool> is_elem(yb.size(), false);
      V idx(yshape.size(), 0);
      std::int64_t bad = 0;
      if (ny > 0) do {
          const std::size_t at = y_lin(idx);
          const auto off = static_cast<std::size_t>(ly.offset(idx));
          is_elem[off] = true;
          const double got = static_cast<double>(yb[off]);
          const double tol =
              static_cast<double>(terms[at] + 2) * std::numeric_limits<T>::epsilon() * mag[at];
          if (!(std::fabs(got - ref[at]) <= tol) && bad++ < 5)
            ADD_FAILURE() << "element " << at << ": got " << got << ", expected " << ref[at]
                          << " (tolerance " << tol << ")";
        } while (next_index(idx, yshape));
      for (std::size_t p = 0; p < yb.size(); ++p)
        if (!is_elem[p] && !std::isnan(yb[p]) && bad++ < 5)
          ADD_FAILURE() << "wrote buffer cell " << p << ", which is not an element of y";
      ASSERT_EQ(bad, 0);
      // Same ISA, another thread count: the very same bits.
      std::vector<T> elems;
      idx.assign(yshape.size(), 0);
      if (ny > 0) do
          elems.push_back(yb[static_cast<std::size_t>(ly.offset(idx))]);
        while (next_index(idx, yshape));
      if (threads == 1) {
        first = elems;
      } else {
        ASSERT_EQ(elems.size(), first.size());
        for (std::size_t e = 0; e < elems.size(); ++e)
          ASSERT_EQ(std::memcmp(&elems[e], &first[e], sizeof(T)), 0) << "element " << e;
      }
    }
  }
}

Config random_config(std::mt19937_64& rng) {
  auto pick = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  };
  for (;;) {
    Config c = base_config(static_cast<int>(pick(1, 3)));
    c.channels_last = pick(0, 1) == 1;
    c.batch = pick(0, 2);
    c.groups = pick(1, 3);
    c.cin_g = pick(1, 3);
    c.cout_g = pick(1, 3);
    c.bias = pick(0, 1) == 1;
    const std::int64_t max_in = c.rank == 3 ? 4 : 7;
    for (int d = 0; d < c.rank; ++d) {
      c.input[d] = pick(1, max_in);
      c.kernel[d] = pick(1, c.rank == 3 ? 3 : 5);
      c.stride[d] = pick(1, 4);
      c.dilation[d] = pick(1, 3);
      const std::int64_t span = c.dilation[d] * (c.kernel[d] - 1);
      c.pad_lo[d] = pick(0, span);
      c.pad_hi[d] = pick(0, span);
      c.output_padding[d] = pick(0, std::max(c.stride[d], c.dilation[d]) - 1);
    }
    if (tconv::try_resolve_geometry(c.x_shape(), c.w_shape(), c.spec()).ok()) return c;
  }
}

template <class T>
class ConvTranspose : public ::testing::Test {};
using Types = ::testing::Types<float, double>;
TYPED_TEST_SUITE(ConvTranspose, Types);

}  // namespace

TYPED_TEST(ConvTranspose, PlainLayersEachRankAndFormat) {
  std::mt19937_64 rng(1);
  for (int rank = 1; rank <= 3; ++rank)
    for (bool cl : {false, true}) {
      Config c = base_config(rank);
      c.channels_last = cl;
      c.cin_g = 3;
      c.cout_g = 2;
      c.batch = 2;
      check_config<TypeParam>(c, rng, /*contiguous_only=*/true);
    }
}

TYPED_TEST(ConvTranspose, StrideDilationPaddingOutputPadding) {
  std::mt19937_64 rng(2);
  for (bool cl : {false, true}) {
    Config c = base_config(2);
    c.channels_last = cl;
    c.cin_g = 2;
    c.cout_g = 3;
    c.input = {5, 3};
    c.kernel = {3, 4};
    c.stride = {2, 3};
    c.dilation = {2, 1};
    c.pad_lo = {1, 0};  // asymmetric
    c.pad_hi = {3, 2};
    c.output_padding = {1, 2};
    c.bias = true;
    check_config<TypeParam>(c, rng, true);
    check_config<TypeParam>(c, rng, false);
  }
}

TYPED_TEST(ConvTranspose, GroupsAndDepthwise) {
  std::mt19937_64 rng(3);
  for (bool cl : {false, true}) {
    Config c = base_config(2);
    c.channels_last = cl;
    c.groups = 3;
    c.cin_g = 2;
    c.cout_g = 2;
    c.stride = {2, 2};
    c.bias = true;
    check_config<TypeParam>(c, rng);
    c.groups = 5;  // depthwise with a channel multiplier of 1
    c.cin_g = 1;
    c.cout_g = 1;
    check_config<TypeParam>(c, rng);
  }
}

TYPED_TEST(ConvTranspose, KernelEqualsStrideAndOneByOne) {
  std::mt19937_64 rng(4);
  for (bool cl : {false, true}) {
    Config c = base_config(2);
    c.channels_last = cl;
    c.cin_g = 4;
    c.cout_g = 3;
    c.kernel = {2, 2};
    c.stride = {2, 2};
    check_config<TypeParam>(c, rng);
    c.kernel = {1, 1};
    c.stride = {1, 1};
    check_config<TypeParam>(c, rng);
  }
}

TYPED_TEST(ConvTranspose, NegativeAndZeroInputStrides) {
  // x reversed along every axis, weight broadcast along C_out (stride 0).
  Config c = base_config(2);
  c.cin_g = 2;
  c.cout_g = 3;
  c.stride = {2, 1};
  c.bias = true;
  const Geometry g = tconv::resolve_geometry(c.x_shape(), c.w_shape(), c.spec());
  std::vector<TypeParam> x(static_cast<std::size_t>(count(g.input_shape())));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<TypeParam>(0.25 * (i % 9) - 1);
  std::vector<TypeParam> w(2 * 9);  // (C_in, 1, 3, 3), repeated along C_out
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<TypeParam>(0.5 * (i % 5) - 1);
  const std::vector<TypeParam> bias{1, 2, 3};
  const V xs{-32, -16, -4, -1};  // C-contiguous (1, 2, 4, 4), walked backwards
  const TypeParam* x_last = x.data() + x.size() - 1;
  std::vector<TypeParam> y(static_cast<std::size_t>(count(g.output_shape())));
  tconv::conv_transpose(g, x_last, xs, w.data(), V{9, 0, 3, 1}, bias.data(), y.data(), {});

  // The same layer with explicit contiguous copies.
  std::vector<TypeParam> xr(x.rbegin(), x.rend()), wf;
  for (int ci = 0; ci < 2; ++ci)
    for (int co = 0; co < 3; ++co)
      for (int t = 0; t < 9; ++t) wf.push_back(w[static_cast<std::size_t>(ci * 9 + t)]);
  std::vector<TypeParam> y2(y.size());
  tconv::conv_transpose(g, xr.data(), {}, wf.data(), {}, bias.data(), y2.data(), {});
  EXPECT_EQ(y, y2);
  // And channel co of the result is channel 0 plus the bias difference.
  const std::size_t plane = static_cast<std::size_t>(g.output[0] * g.output[1]);
  for (std::size_t p = 0; p < plane; ++p) {
    EXPECT_NEAR(static_cast<double>(y[plane + p] - y[p]), 1.0, 1e-5);
    EXPECT_NEAR(static_cast<double>(y[2 * plane + p] - y[p]), 2.0, 1e-5);
  }
}

TYPED_TEST(ConvTranspose, EmptyTensors) {
  std::mt19937_64 rng(5);
  Config c = base_config(1);
  c.batch = 0;
  check_config<TypeParam>(c, rng);
  // No input channels: the output is the bias alone.
  c.batch = 2;
  c.cin_g = 0;
  c.bias = true;
  const Geometry g = tconv::resolve_geometry(c.x_shape(), c.w_shape(), c.spec());
  std::vector<TypeParam> y(static_cast<std::size_t>(count(g.output_shape())), -7);
  const TypeParam b = 1.5;
  tconv::conv_transpose(g, static_cast<const TypeParam*>(nullptr), {},
                        static_cast<const TypeParam*>(nullptr), {}, &b, y.data(), {});
  for (auto v : y) EXPECT_EQ(v, b);
  // Empty batch: every pointer may be null.
  c.batch = 0;
  c.cin_g = 1;
  const Geometry g0 = tconv::resolve_geometry(c.x_shape(), c.w_shape(), c.spec());
  std::vector<TypeParam> w(static_cast<std::size_t>(count(g0.weight_shape())), 1);
  tconv::conv_transpose(g0, static_cast<const TypeParam*>(nullptr), {}, w.data(), {}, &b,
                        static_cast<TypeParam*>(nullptr), {});
}

TYPED_TEST(ConvTranspose, ConvenienceFormReturnsGeometry) {
  const V xs{1, 1, 3}, ws{1, 1, 2};
  const std::vector<TypeParam> x{1, 2, 3}, w{1, 10};
  std::vector<TypeParam> y(6, -1);
  LayerSpec s;
  s.rank = 1;
  s.stride = {2};
  s.dilation = {1};
  s.pad_lo = s.pad_hi = {0};
  const Geometry g =
      tconv::conv_transpose<TypeParam>(xs, x.data(), ws, w.data(), nullptr, y.data(), s);
  EXPECT_EQ(g.output, (V{6}));
  // Stride 2, kernel (1, 10): each input value lands at 2i and 2i + 1 (times 10).
  EXPECT_EQ(y, (std::vector<TypeParam>{1, 10, 2, 20, 3, 30}));
}

TYPED_TEST(ConvTranspose, RandomConfigurations) {
  std::mt19937_64 rng(20240611);
  for (int i = 0; i < 120; ++i) {
    const Config c = random_config(rng);
    check_config<TypeParam>(c, rng);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// ---- IEEE specials and interruption ----------------------------------------------------------

LayerSpec spec_1d(std::int64_t pad) {
  LayerSpec s;
  s.rank = 1;
  s.stride = {1};
  s.dilation = {1};
  s.pad_lo = s.pad_hi = {pad};
  return s;
}

TYPED_TEST(ConvTranspose, NonFiniteWeightReachesOnlyItsCellsOnEveryIsa) {
  using T = TypeParam;
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  const std::vector<T> x(4, 1);
  // x = ones(4), padding 1: y[o] sums w[k] over the k with o + 1 - k in [0, 4).
  const std::vector<std::vector<T>> weights{{1, 1, nan}, {inf, 1, 1}};
  const std::vector<std::vector<T>> wants{{2, nan, nan, nan}, {inf, inf, inf, 2}};
  for (tconv::Isa isa : tconv::available_isas()) {
    tconv::Options opt;
    opt.cap_isa = true;
    opt.max_isa = isa;
    for (std::size_t c = 0; c < weights.size(); ++c) {
      std::vector<T> y(4, 0);
      const Geometry g = tconv::resolve_geometry({1, 1, 4}, {1, 1, 3}, spec_1d(1));
      tconv::conv_transpose(g, x.data(), {}, weights[c].data(), {}, nullptr, y.data(), {}, opt);
      for (std::size_t o = 0; o < 4; ++o) {
        const std::string where = std::string(tconv::isa_name(isa)) + " case " + std::to_string(c) +
                                  " y[" + std::to_string(o) + "]";
        if (std::isnan(wants[c][o])) {
          EXPECT_TRUE(std::isnan(y[o])) << where;
        } else {
          EXPECT_EQ(y[o], wants[c][o]) << where;
        }
      }
    }
  }
}

// y of the layer of all-ones weights `ws` (stride 1, no padding) on an all-ones input.
template <class T>
std::vector<T> ones_layer(const V& ws, const V& x_shape, const tconv::Options& opt) {
  LayerSpec s;
  s.rank = 2;
  s.stride = {1, 1};
  s.dilation = {1, 1};
  s.pad_lo = s.pad_hi = {0, 0};
  const Geometry g = tconv::resolve_geometry(x_shape, ws, s);
  std::vector<T> w(static_cast<std::size_t>(count(ws)), 1);
  std::vector<T> x(static_cast<std::size_t>(count(g.input_shape())), 1);
  std::vector<T> y(static_cast<std::size_t>(count(g.output_shape())));
  tconv::conv_transpose(g, x.data(), {}, w.data(), {}, nullptr, y.data(), {}, opt);
  return y;
}

// ones_layer on two threads with a poll that says stop, on images (in, h, w) in batches of
// growing size until a call stops (the poll is asked after ~20 ms of work): it must stop, the
// poll asked once and only on the calling thread.
template <class T>
void expect_interrupted(const V& ws, const V& image, std::int64_t max_batch) {
  const auto caller = std::this_thread::get_id();
  int asked = 0;
  bool elsewhere = false;
  tconv::Options opt;
  opt.num_threads = 2;
  opt.interrupt = [&] {
    elsewhere = elsewhere || std::this_thread::get_id() != caller;
    ++asked;
    return true;
  };
  bool stopped = false;
  for (std::int64_t batch = 1; batch <= max_batch && !stopped; batch *= 2) {
    try {
      ones_layer<T>(ws, {batch, image[0], image[1], image[2]}, opt);
      EXPECT_EQ(asked, 0) << "asked to stop, the call still finished";
    } catch (const tconv::Interrupted&) {
      stopped = true;
    }
  }
  EXPECT_TRUE(stopped);
  EXPECT_EQ(asked, 1);  // stops at the first "yes"
  EXPECT_FALSE(elsewhere);
}

TYPED_TEST(ConvTranspose, InterruptStopsTheCallOnTheCallingThreadOnly) {
  using T = TypeParam;
  const V ws{32, 32, 5, 5};
  expect_interrupted<T>(ws, {32, 32, 32}, 256);
  // A poll that never says stop changes nothing in the numbers.
  tconv::Options opt;
  opt.num_threads = 2;
  opt.interrupt = [] { return false; };
  const std::vector<T> polled = ones_layer<T>(ws, {64, 32, 32, 32}, opt);
  opt.interrupt = nullptr;
  const std::vector<T> plain = ones_layer<T>(ws, {64, 32, 32, 32}, opt);
  EXPECT_EQ(0, std::memcmp(polled.data(), plain.data(), plain.size() * sizeof(T)));
}

// A call on two threads that runs in slices (see CallMemory::slices: here 1.6 MiB of weights,
// more than the input) still asks only on the calling thread and stops at the first "yes", the
// other thread's slice included.
TYPED_TEST(ConvTranspose, InterruptStopsASlicedCall) {
  using T = TypeParam;
  const V ws{32, 256, 7, 7};
  tconv::Options opt;
  opt.num_threads = 2;
  ones_layer<T>(ws, {1, 32, 16, 16}, opt);
  if (tconv::last_call_memory().slices != 2) GTEST_SKIP() << "no slices on this machine";
  expect_interrupted<T>(ws, {32, 16, 16}, 32);
}

// Layers the core runs in another order of their dims (unit dims dropped, a narrow last dim
// moved away from a long one), through permuted strides of every random layout.
TYPED_TEST(ConvTranspose, UnitAndNarrowLastDims) {
  std::mt19937_64 rng(7);
  for (bool cl : {false, true})
    for (std::int64_t groups : {1, 2}) {
      Config c = base_config(2);
      c.channels_last = cl;
      c.groups = groups;
      c.bias = true;
      c.input = {70, 1};  // a signal stored with a unit last dim
      c.kernel = {9, 1};
      c.stride = {2, 1};
      c.pad_lo = {1, 0};
      c.pad_hi = {2, 0};
      check_config<TypeParam>(c, rng, true);
      EXPECT_TRUE(tconv::last_call_memory().dims_reordered);
      check_config<TypeParam>(c, rng, false);
      EXPECT_TRUE(tconv::last_call_memory().dims_reordered);
      c.input = {80, 3};  // a tall kernel over three columns
      c.kernel = {5, 2};
      c.stride = {1, 2};
      c.pad_lo = {0, 0};
      c.pad_hi = {0, 0};
      check_config<TypeParam>(c, rng, false);
      EXPECT_TRUE(tconv::last_call_memory().dims_reordered);
      Config d = base_config(3);  // a unit middle dim
      d.channels_last = cl;
      d.groups = groups;
      d.input = {3, 1, 20};
      d.kernel = {2, 1, 3};
      d.stride = {2, 3, 2};
      check_config<TypeParam>(d, rng, false);
      EXPECT_TRUE(tconv::last_call_memory().dims_reordered);
    }
}

// last_call_kernel names the driver that ran: each layer below is built for one of them.
TYPED_TEST(ConvTranspose, LastCallKernelNamesTheDriverThatRan) {
  using T = TypeParam;
  auto run = [](std::vector<std::int64_t> xs, std::vector<std::int64_t> ws, std::int64_t s,
                std::int64_t groups, bool portable) {
    LayerSpec spec;
    spec.rank = 2;
    spec.stride = {s, s};
    spec.dilation = {1, 1};
    spec.pad_lo = {0, 0};
    spec.pad_hi = {0, 0};
    spec.groups = groups;
    const Geometry g = tconv::resolve_geometry(xs, ws, spec);
    std::vector<T> x(static_cast<std::size_t>(count(g.input_shape())), 1);
    std::vector<T> w(static_cast<std::size_t>(count(g.weight_shape())), 1);
    std::vector<T> y(static_cast<std::size_t>(count(g.output_shape())));
    tconv::Options opt;
    opt.cap_isa = portable;
    opt.max_isa = tconv::Isa::portable;
    tconv::conv_transpose(g, x.data(), {}, w.data(), {}, nullptr, y.data(), {}, opt);
    return std::string(tconv::last_call_kernel());
  };
  EXPECT_EQ(run({1, 8, 12, 12}, {8, 1, 3, 3}, 2, 8, false), "depthwise");
  EXPECT_EQ(run({1, 32, 12, 12}, {32, 1, 3, 3}, 2, 1, true), "portable");
  EXPECT_EQ(run({0, 32, 12, 12}, {32, 16, 3, 3}, 2, 1, false), "none");
  if (tconv::available_isas().front() != tconv::Isa::portable) {
    EXPECT_EQ(run({1, 32, 12, 12}, {32, 64, 3, 3}, 2, 1, false).rfind("phase_channel", 0), 0u);
  }
}

// Every driver of the dispatch's list that takes a layer (Options::driver) gives the portable
// driver's numbers, and the dispatch runs the first of them (direct aside, see below);
// drivers() closes with portable.
TYPED_TEST(ConvTranspose, EveryDriverThatTakesALayerAgreesAndTheFirstRuns) {
  using T = TypeParam;
  const std::vector<std::string> names = tconv::drivers();
  ASSERT_FALSE(names.empty());
  ASSERT_EQ(names.back(), "portable");
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> val(-1.0, 1.0);
  std::vector<int> taken(names.size(), 0);
  for (int trial = 0; trial < 60; ++trial) {
    Config c = random_config(rng);
    c.batch = std::max<std::int64_t>(c.batch, 1);
    SCOPED_TRACE(c.describe());
    const Geometry g = tconv::resolve_geometry(c.x_shape(), c.w_shape(), c.spec());
    std::vector<T> x(static_cast<std::size_t>(count(g.input_shape())));
    std::vector<T> w(static_cast<std::size_t>(count(g.weight_shape())));
    for (auto& v : x) v = static_cast<T>(val(rng));
    for (auto& v : w) v = static_cast<T>(val(rng));
    auto run = [&](const std::string& driver, std::vector<T>& y) {
      y.assign(static_cast<std::size_t>(count(g.output_shape())), T(0));
      tconv::Options opt;
      opt.driver = driver;
      tconv::conv_transpose(g, x.data(), {}, w.data(), {}, nullptr, y.data(), {}, opt);
      return std::string(tconv::last_call_kernel());
    };
    std::vector<T> want, got;
    run("portable", want);
    double scale = 1.0;
    for (T v : want) scale = std::max(scale, std::fabs(static_cast<double>(v)));
    const double tol = 64 * std::numeric_limits<T>::epsilon() * scale * 32;
    std::string first;
    for (std::size_t d = 0; d < names.size(); ++d) {
      std::string kernel;
      try {
        kernel = run(names[d], got);
      } catch (const std::invalid_argument&) {
        continue;  // this driver does not take the layer
      }
      ++taken[d];
      // The dispatch sends a layer to direct only where the pack does not pay (weights of a
      // megabyte or more), which these small layers never have.
      if (first.empty() && names[d] != "direct") first = names[d];
      EXPECT_EQ(kernel.rfind(names[d], 0), 0u) << kernel << " ran for driver " << names[d];
      for (std::size_t e = 0; e < got.size(); ++e)
        ASSERT_NEAR(static_cast<double>(got[e]), static_cast<double>(want[e]), tol)
            << "driver " << names[d] << ", element " << e;
    }
    const std::string dispatched = run("", got);
    EXPECT_EQ(dispatched.rfind(first, 0), 0u) << dispatched << " ran; the first taker is " << first;
  }
  EXPECT_EQ(taken.back(), 60);  // portable takes every layer
  // The small random layers reach every driver but the two for special shapes (kernel ==
  // stride with channels in place; tiny C_out on AVX-512), which test_drivers.py aims at.
  if (tconv::available_isas().front() != tconv::Isa::portable) {
    for (std::size_t d = 0; d < names.size(); ++d) {
      if (names[d] != "phase_shuffle" && names[d] != "phase_grid") {
        EXPECT_GT(taken[d], 0) << names[d] << " took none of the layers";
      }
    }
  }
}

TEST(Drivers, AnUnknownOrUnfitDriverIsAnInvalidArgument) {
  const Geometry g = tconv::resolve_geometry({1, 4, 5, 5}, {4, 6, 3, 3}, [] {
    LayerSpec s;
    s.rank = 2;
    s.stride = {2, 2};
    s.dilation = {1, 1};
    s.pad_lo = {0, 0};
    s.pad_hi = {0, 0};
    return s;
  }());
  std::vector<float> x(100, 1.0f), w(216, 1.0f),
      y(static_cast<std::size_t>(count(g.output_shape())));
  tconv::Options opt;
  opt.driver = "fast";
  EXPECT_THROW(tconv::conv_transpose(g, x.data(), {}, w.data(), {}, nullptr, y.data(), {}, opt),
               std::invalid_argument);
  opt.driver = "depthwise";  // four channels in one group: not a depthwise layer
  EXPECT_THROW(tconv::conv_transpose(g, x.data(), {}, w.data(), {}, nullptr, y.data(), {}, opt),
               std::invalid_argument);
}

TEST(Plan, KeepsADenseCopyOfWeightsGivenThroughStrides) {
  // Weights (C_in 2, C_out 3, kernel 2) stored with the channel axes swapped: [co][ci][k].
  std::vector<double> store(12);
  std::iota(store.begin(), store.end(), 1.0);
  LayerSpec spec;
  spec.rank = 1;
  spec.stride = {2};
  spec.dilation = {1};
  spec.pad_lo = {0};
  spec.pad_hi = {0};
  const tconv::ConvTransposePlan<double> plan({2, 3, 2}, store.data(), {2, 4, 1}, nullptr, spec);
  std::fill(store.begin(), store.end(), 0.0);  // the plan holds its own copy
  EXPECT_EQ(plan.weight_shape(), (V{2, 3, 2}));
  const double* w = plan.weight();
  for (int ci = 0; ci < 2; ++ci)
    for (int co = 0; co < 3; ++co)
      for (int k = 0; k < 2; ++k)
        EXPECT_EQ(w[(ci * 3 + co) * 2 + k], 1.0 + co * 4 + ci * 2 + k) << ci << co << k;
}
