// libFuzzer target: the shape arithmetic and the operator's argument checks.
//
// Bytes become a layer description (rank, shapes, stride/dilation/padding vectors of any
// length, groups, data format, padding mode, output_padding / output_size), values drawn
// mostly small and sometimes extreme. The only allowed outcomes are a result or one of the
// documented exceptions (ShapeError, SizeOverflowError, std::invalid_argument); anything
// else -- another exception, a sanitizer report, a broken invariant -- is a crash.
//
// When the layer resolves to a small problem, the operator runs on real buffers, sometimes
// after the geometry, the stride vectors or a pointer has been spoiled, and the result is
// compared with a direct scatter evaluated here.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <tconv/conventions.hpp>
#include <tconv/tconv.hpp>
#include <vector>

#include "../cpp/support.hpp"

namespace {

using V = std::vector<std::int64_t>;

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}
  std::uint8_t byte() { return p_ < end_ ? *p_++ : 0; }
  // Mostly small values; sometimes negative, zero, huge or an int64 edge.
  std::int64_t value() {
    const std::uint8_t kind = byte();
    switch (kind % 16) {
      case 0:
        return -static_cast<std::int64_t>(byte() % 4);
      case 1:
        return std::numeric_limits<std::int64_t>::max() - (byte() % 4);
      case 2:
        return std::numeric_limits<std::int64_t>::min() + (byte() % 4);
      case 3:
        return std::int64_t{1} << (byte() % 63);
      case 4: {
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = (v << 8) | byte();
        return static_cast<std::int64_t>(v);
      }
      default:
        return byte() % 8;
    }
  }
  V vec(std::size_t len) {
    V v(len);
    for (auto& e : v) e = value();
    return v;
  }
  // A length near `want`: usually equal, sometimes off by one or two.
  std::size_t len_near(int want) {
    const std::uint8_t b = byte();
    const int delta = b % 8 == 0 ? -1 : b % 8 == 1 ? 1 : b % 8 == 2 ? 2 : 0;
    return static_cast<std::size_t>(std::max(0, want + delta));
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

[[noreturn]] void crash(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_shape: %s: %s\n", what, detail.c_str());
  std::abort();
}

// Runs f; documented exceptions are fine, anything else crashes. Returns true on success.
template <class F>
bool allowed(const char* where, F&& f) {
  try {
    f();
    return true;
  } catch (const tconv::ShapeError& e) {
    if (std::strlen(e.what()) < 20) crash(where, std::string("terse ShapeError: ") + e.what());
  } catch (const tconv::SizeOverflowError& e) {
    if (!std::strstr(e.what(), "overflows")) crash(where, e.what());
  } catch (const std::invalid_argument& e) {
    if (std::strlen(e.what()) < 20) crash(where, std::string("terse error: ") + e.what());
  } catch (const std::exception& e) {
    crash(where, std::string("undocumented exception: ") + e.what());
  }
  return false;
}

void one_dim_functions(Input& in) {
  const std::int64_t i = in.value(), k = in.value(), s = in.value(), d = in.value();
  const std::int64_t lo = in.value(), hi = in.value(), op = in.value();
  // shape.hpp: any values at all.
  allowed("effective_kernel", [&] { tconv::effective_kernel(k, d); });
  allowed("transposed_length", [&] { tconv::transposed_length(i, k, s, d, lo, hi, op); });
  allowed("conv_length", [&] { tconv::conv_length(i, k, s, d, lo, hi); });
  const auto mode = static_cast<tconv::PadMode>(in.byte() % 3);
  std::optional<std::int64_t> kop;
  if (in.byte() % 2) kop = op;
  allowed("resolve_keras_padding", [&] { tconv::resolve_keras_padding(mode, k, s, d, kop); });
  allowed("keras_length", [&] { tconv::keras_length(i, mode, k, s, d, kop); });
  // conventions.hpp: the rules of real layers (positive sizes, stride and dilation), whose
  // arguments tconv.shapes validates first.
  if (i < 1 || k < 1 || s < 1 || d < 1) return;
  allowed("torch_length", [&] { tconv::torch_length(i, k, s, d, lo, op); });
  allowed("torch_output_size_range", [&] { tconv::torch_output_size_range(i, k, s, d, lo); });
  const auto tf = static_cast<tconv::TfPadding>(in.byte() % 3);
  allowed("tf_conv", [&] { tconv::tf_conv(i, k, s, d, tf, lo, hi); });
  allowed("tf_transposed_range", [&] { tconv::tf_transposed_range(i, k, s, d, tf, lo, hi); });
  allowed("tf_transposed", [&] { tconv::tf_transposed(i, op, k, s, d, tf, lo, hi); });
  const auto onnx = static_cast<tconv::OnnxAutoPad>(in.byte() % 4);
  std::optional<std::int64_t> shape;
  if (in.byte() % 2) shape = in.value();
  allowed("onnx_resolve", [&] { tconv::onnx_resolve(i, k, s, d, op, onnx, lo, hi, shape); });
  allowed("onnx_output_shape_range", [&] { tconv::onnx_output_shape_range(i, k, s, d); });
  const auto jax = static_cast<tconv::JaxPadding>(in.byte() % 3);
  allowed("jax_resolve", [&] { tconv::jax_resolve(i, k, s, d, jax, lo, hi); });
}

// The definition (tconv_test::scatter) over C-contiguous buffers, in double.
template <class T>
std::vector<double> scatter(const tconv::Geometry& g, const std::vector<T>& x,
                            const std::vector<T>& w, const std::vector<T>& bias, bool has_bias) {
  const V xs = g.input_shape(), ws = g.weight_shape(), ys = g.output_shape();
  std::vector<double> y(static_cast<std::size_t>(tconv::checked_product(ys, "y")), 0.0);
  auto bias_at = [&](std::int64_t c) {
    return static_cast<double>(bias[static_cast<std::size_t>(c)]);
  };
  tconv_test::scatter(
      g, [&](const V& i) { return static_cast<double>(x[tconv_test::c_offset(xs, i)]); },
      [&](const V& i) { return static_cast<double>(w[tconv_test::c_offset(ws, i)]); },
      has_bias ? &bias_at : nullptr,
      [&](const V& i, double a, double b) { y[tconv_test::c_offset(ys, i)] += a * b; });
  return y;
}

std::string describe(const tconv::Geometry& g) {
  auto j = [](const V& v) {
    std::string s = "(";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return s + ")";
  };
  return "x " + j(g.input_shape()) + " weight " + j(g.weight_shape()) + " groups " +
         std::to_string(g.groups) + " stride " + j(g.stride) + " dilation " + j(g.dilation) +
         " pad_lo " + j(g.pad_lo) + " pad_hi " + j(g.pad_hi) + " output_padding " +
         j(g.output_padding) + " -> y " + j(g.output_shape()) +
         (g.data_format == tconv::DataFormat::channels_last ? " channels_last" : "");
}

template <class T>
void run_operator(Input& in, const tconv::Geometry& good) {
  // Reproducing a crash: TCONV_FUZZ_VERBOSE=1 ./fuzz_shape crash-file
  if (std::getenv("TCONV_FUZZ_VERBOSE"))
    std::fprintf(stderr, "run %s: %s\n", sizeof(T) == 4 ? "float" : "double",
                 describe(good).c_str());
  const V xs = good.input_shape(), ws = good.weight_shape(), ys = good.output_shape();
  const std::int64_t nx = tconv::checked_product(xs, "x"), nw = tconv::checked_product(ws, "w"),
                     ny = tconv::checked_product(ys, "y");
  std::vector<T> x(static_cast<std::size_t>(nx)), w(static_cast<std::size_t>(nw)),
      bias(static_cast<std::size_t>(good.out_channels));
  for (auto& v : x) v = static_cast<T>(static_cast<int>(in.byte() % 9) - 4);
  for (auto& v : w) v = static_cast<T>(static_cast<int>(in.byte() % 9) - 4);
  for (auto& v : bias) v = static_cast<T>(static_cast<int>(in.byte() % 5) - 2);
  const bool has_bias = in.byte() % 2;
  std::vector<T> y(static_cast<std::size_t>(ny) + 1, T(12345));  // one guard cell at the end

  // Spoil one thing, or nothing. Each spoil leaves the geometry inconsistent (or unchanged):
  // a consistent geometry for other shapes cannot be told from the buffers' real sizes.
  tconv::Geometry g = good;
  V x_strides, w_strides, y_strides;
  const T* xp = x.data();
  const T* wp = w.data();
  T* yp = y.data();
  bool spoiled = true;
  const std::size_t r = static_cast<std::size_t>(g.rank);
  switch (in.byte() % 12) {
    case 0: {
      std::int64_t& o = g.output[in.byte() % r];  // may be huge when the batch is empty
      o = o == 1 ? 2 : o - 1;
      break;
    }
    case 1:
      g.pad_lo[in.byte() % r] = in.value();
      break;
    case 2:
      g.groups = -static_cast<std::int64_t>(in.byte() % 3);
      break;
    case 3:
      g.in_channels = -1 - static_cast<std::int64_t>(in.byte() % 3);
      break;
    case 4:
      g.rank = static_cast<int>(in.byte() % 6);
      break;
    case 5:
      x_strides = in.vec(in.byte() % 2 ? xs.size() + 1 : xs.size() - 1);
      break;
    case 6:
      y_strides = V(ys.size(), 0);
      break;
    case 7:
      xp = nx ? nullptr : xp;
      spoiled = nx > 0;
      break;
    case 8:
      g.kernel[in.byte() % r] = in.value();
      break;
    default:
      spoiled = false;
  }
  tconv::Options opt;
  opt.num_threads = 1 + in.byte() % 2;
  opt.cap_isa = in.byte() % 2;
  opt.max_isa = tconv::Isa::portable;
  const bool ok = allowed("conv_transpose", [&] {
    tconv::conv_transpose(g, xp, x_strides, wp, w_strides, has_bias ? bias.data() : nullptr, yp,
                          y_strides, opt);
  });
  if (y.back() != T(12345)) crash("conv_transpose", "wrote past the end of y");
  if (!ok) {
    for (std::size_t i = 0; i < y.size(); ++i)
      if (y[i] != T(12345)) crash("conv_transpose", "refused the call but wrote y");
    return;
  }
  // An accepted call must have been a valid one: compare with the scatter of the geometry it
  // ran (which, when a spoil was accepted, must be consistent with the buffers it got).
  if (spoiled && (g.input_shape() != xs || g.output_shape() != ys || g.weight_shape() != ws))
    crash("conv_transpose", "accepted a geometry that does not match the buffers");
  const std::vector<double> want = scatter(g, x, w, bias, has_bias);
  for (std::size_t i = 0; i < want.size(); ++i)
    if (static_cast<double>(y[i]) != want[i])  // small integers: exact in float and double
      crash("conv_transpose", "wrong value at " + std::to_string(i));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  one_dim_functions(in);

  tconv::LayerSpec spec;
  spec.rank = static_cast<int>(in.byte() % 5);  // 0 is invalid, 4 is allowed
  const std::size_t r = static_cast<std::size_t>(spec.rank);
  spec.data_format =
      in.byte() % 2 ? tconv::DataFormat::channels_last : tconv::DataFormat::channels_first;
  spec.pad_mode = static_cast<tconv::PadMode>(in.byte() % 3);
  spec.groups = in.byte() % 4 == 0 ? in.value() : 1 + in.byte() % 3;
  spec.stride = in.vec(in.len_near(spec.rank));
  spec.dilation = in.vec(in.len_near(spec.rank));
  spec.pad_lo = in.vec(in.len_near(spec.rank));
  spec.pad_hi = in.vec(in.len_near(spec.rank));
  if (in.byte() % 2) spec.output_padding = in.vec(in.len_near(spec.rank));
  const V x_shape = in.vec(in.len_near(spec.rank + 2));
  const V w_shape = in.vec(in.len_near(spec.rank + 2));

  std::optional<tconv::Geometry> g;
  std::string thrown;
  allowed("resolve_geometry", [&] {
    try {
      g = tconv::resolve_geometry(x_shape, w_shape, spec);
    } catch (const std::exception& e) {
      thrown = e.what();
      throw;
    }
  });
  const auto res = tconv::try_resolve_geometry(x_shape, w_shape, spec);
  if (res.ok() != g.has_value()) crash("try_resolve_geometry", "disagrees with resolve_geometry");
  if (!res.ok() && res.error() != thrown) crash("try_resolve_geometry", "another message");

  const V wanted = in.vec(in.len_near(spec.rank));
  allowed("output_padding_for_size", [&] {
    const V op = tconv::output_padding_for_size(x_shape, w_shape, spec, wanted);
    // The padding found must give exactly the wanted size.
    tconv::LayerSpec s2 = spec;
    s2.output_padding = op;
    const auto g2 = tconv::resolve_geometry(x_shape, w_shape, s2);
    if (wanted.size() == r && g2.output != wanted) crash("output_padding_for_size", "wrong size");
  });

  if (!g) return 0;
  // Invariants of a resolved geometry.
  for (std::size_t d = 0; d < r; ++d) {
    if (g->output[d] < 1 || g->pad_lo[d] < 0 || g->pad_hi[d] < 0 || g->output_padding[d] < 0)
      crash("resolve_geometry", "resolved geometry with a non-positive output or negative pad");
    if (g->output[d] != tconv::transposed_length(g->input[d], g->kernel[d], g->stride[d],
                                                 g->dilation[d], g->pad_lo[d], g->pad_hi[d],
                                                 g->output_padding[d]))
      crash("resolve_geometry", "output disagrees with transposed_length");
  }
  if (g->input_shape() != x_shape || g->weight_shape() != w_shape)
    crash("resolve_geometry", "geometry shapes differ from the shapes given");

  // Run small problems for real.
  const double work = g->flops();
  const std::int64_t ny = tconv::checked_product(g->output_shape(), "y");
  const std::int64_t nx = tconv::checked_product(g->input_shape(), "x");
  const std::int64_t nw = tconv::checked_product(g->weight_shape(), "w");
  // The reference below loops over every batch entry, tap and input cell, even when a channel
  // count of zero leaves no work for the operator: bound those too.
  double taps = 1, cells = 1;  // in double: with an empty tensor these may exceed int64
  for (auto k : g->kernel) taps *= static_cast<double>(k);
  for (auto i : g->input) cells *= static_cast<double>(i);
  if (work > 2e5 || ny > 4096 || nx > 4096 || nw > 4096 || taps > 4096 || cells > 4096 ||
      g->batch > 4096 || g->in_channels > 4096 || g->out_channels > 4096 ||
      taps * cells * static_cast<double>(g->batch * g->in_channels) > 1e6)
    return 0;
  if (in.byte() % 2)
    run_operator<float>(in, *g);
  else
    run_operator<double>(in, *g);
  return 0;
}
