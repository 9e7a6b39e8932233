#include "tconv/shape.hpp"

#include <algorithm>
#include <sstream>

#include "format.hpp"

namespace tconv {
namespace {

using detail::join;

[[noreturn]] void fail(const std::ostringstream& msg) { throw ShapeError(msg.str()); }

const char* dim_name(int rank, int d) {
  static const char* const names2[] = {"height", "width"};
  static const char* const names3[] = {"depth", "height", "width"};
  if (rank == 2) return names2[d];
  if (rank == 3) return names3[d];
  return nullptr;
}

std::string where(int rank, int d) {
  std::ostringstream s;
  s << "spatial dimension " << d;
  if (const char* n = dim_name(rank, d)) s << " (" << n << ")";
  return s.str();
}

void check_param(const std::vector<std::int64_t>& v, int rank, const char* name) {
  if (static_cast<std::int64_t>(v.size()) != rank) {
    std::ostringstream m;
    m << name << " must have one value per spatial dimension (" << rank << "), got " << v.size()
      << " values " << join(v) << "; pass a single int or a tuple of length " << rank;
    fail(m);
  }
}

}  // namespace

std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* what) {
  std::int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) {
    std::ostringstream m;
    m << what << " overflows a 64-bit integer (" << a << " * " << b
      << "); the sizes involved are far larger than any memory can hold";
    throw SizeOverflowError(m.str());
  }
  return r;
}

std::int64_t checked_add(std::int64_t a, std::int64_t b, const char* what) {
  std::int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    std::ostringstream m;
    m << what << " overflows a 64-bit integer (" << a << " + " << b
      << "); the sizes involved are far larger than any memory can hold";
    throw SizeOverflowError(m.str());
  }
  return r;
}

std::int64_t checked_sub(std::int64_t a, std::int64_t b, const char* what) {
  std::int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) {
    std::ostringstream m;
    m << what << " overflows a 64-bit integer (" << a << " - " << b
      << "); the sizes involved are far larger than any memory can hold";
    throw SizeOverflowError(m.str());
  }
  return r;
}

std::int64_t checked_product(const std::vector<std::int64_t>& values, const char* what) {
  std::int64_t p = 1;
  for (std::int64_t v : values) p = checked_mul(p, v, what);
  return p;
}

std::int64_t effective_kernel(std::int64_t kernel, std::int64_t dilation) {
  return checked_add(
      checked_mul(dilation, checked_sub(kernel, 1, "kernel - 1"), "dilation * (kernel - 1)"), 1,
      "the dilated kernel span");
}

std::int64_t output_padding_limit(std::int64_t stride, std::int64_t dilation) {
  return std::max(stride, dilation);
}

std::int64_t transposed_length(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                               std::int64_t dilation, std::int64_t pad_lo, std::int64_t pad_hi,
                               std::int64_t output_padding) {
  const char* what = "the transposed convolution output length";
  std::int64_t full = checked_add(checked_mul(checked_sub(input, 1, what), stride, what),
                                  effective_kernel(kernel, dilation), what);
  std::int64_t cropped = checked_sub(full, pad_lo, what);
  cropped = checked_sub(cropped, pad_hi, what);
  return checked_add(cropped, output_padding, what);
}

std::int64_t conv_length(std::int64_t input, std::int64_t kernel, std::int64_t stride,
                         std::int64_t dilation, std::int64_t pad_lo, std::int64_t pad_hi) {
  const char* what = "the convolution output length";
  if (stride < 1) {
    std::ostringstream m;
    m << "stride must be a positive integer, got " << stride << "; use stride=1 for no "
      << "downsampling";
    fail(m);
  }
  std::int64_t padded = checked_add(checked_add(input, pad_lo, what), pad_hi, what);
  std::int64_t room = checked_sub(padded, effective_kernel(kernel, dilation), what);
  // Floor division: a negative room means no window fits.
  std::int64_t q = room / stride;
  if (room % stride != 0 && room < 0) --q;
  return checked_add(q, 1, what);
}

DimPadding resolve_keras_padding(PadMode mode, std::int64_t kernel, std::int64_t stride,
                                 std::int64_t dilation,
                                 std::optional<std::int64_t> output_padding) {
  const char* what = "Keras' padding";
  if (kernel < 1 || stride < 1 || dilation < 1) {
    std::ostringstream m;
    m << "kernel size, stride and dilation must be positive integers, got " << kernel << ", "
      << stride << " and " << dilation;
    fail(m);
  }
  const std::int64_t k = effective_kernel(kernel, dilation);
  DimPadding r;
  if (mode == PadMode::valid) {
    // Keras infers max(k, s) - k, i.e. input * stride + max(k - stride, 0) cells.
    r.output_padding = output_padding ? *output_padding : checked_sub(std::max(k, stride), k, what);
    return r;
  }
  // Keras expresses "same" as padding of the stride-dilated input (its JAX formulation); the
  // crop of the scatter form is (k - 1) minus that padding on each side.
  // k >= 1, so k - 1 and k - 2 cannot overflow.
  const std::int64_t pad_len = output_padding ? checked_add(k - 2 + k % 2, *output_padding, what)
                                              : checked_add(stride, k - 2, what);
  const std::int64_t left = std::min(pad_len / 2 + pad_len % 2, k - 1);
  const std::int64_t right = checked_sub(pad_len, left, what);
  r.pad_lo = checked_sub(k - 1, left, what);
  const std::int64_t crop_hi = checked_sub(k - 1, right, what);
  if (crop_hi >= 0) {
    r.pad_hi = crop_hi;
  } else {
    r.output_padding = checked_sub(0, crop_hi, what);
  }
  return r;
}

std::int64_t keras_length(std::int64_t input, PadMode mode, std::int64_t kernel,
                          std::int64_t stride, std::int64_t dilation,
                          std::optional<std::int64_t> output_padding) {
  DimPadding p = resolve_keras_padding(mode, kernel, stride, dilation, output_padding);
  return transposed_length(input, kernel, stride, dilation, p.pad_lo, p.pad_hi, p.output_padding);
}

std::vector<std::int64_t> Geometry::input_shape() const {
  std::vector<std::int64_t> s{batch};
  if (data_format == DataFormat::channels_first) s.push_back(in_channels);
  s.insert(s.end(), input.begin(), input.end());
  if (data_format == DataFormat::channels_last) s.push_back(in_channels);
  return s;
}

std::vector<std::int64_t> Geometry::weight_shape() const {
  std::vector<std::int64_t> s;
  const std::int64_t cout_g = groups ? out_channels / groups : 0;
  if (data_format == DataFormat::channels_first) {
    s = {in_channels, cout_g};
    s.insert(s.end(), kernel.begin(), kernel.end());
  } else {
    s = kernel;
    s.push_back(cout_g);
    s.push_back(in_channels);
  }
  return s;
}

std::vector<std::int64_t> Geometry::output_shape() const {
  std::vector<std::int64_t> s{batch};
  if (data_format == DataFormat::channels_first) s.push_back(out_channels);
  s.insert(s.end(), output.begin(), output.end());
  if (data_format == DataFormat::channels_last) s.push_back(out_channels);
  return s;
}

double Geometry::flops() const {
  double f = 2.0 * static_cast<double>(batch) * static_cast<double>(in_channels);
  f *= groups ? static_cast<double>(out_channels / groups) : 0.0;
  for (auto v : input) f *= static_cast<double>(v);
  for (auto v : kernel) f *= static_cast<double>(v);
  return f;
}

namespace {

// The operand layouts named in the messages.
struct Layouts {
  const char* x;
  const char* w;
};

// The ranks of x and the weight, and the per-dim parameters' lengths.
void check_ranks(const std::vector<std::int64_t>& x_shape,
                 const std::vector<std::int64_t>& weight_shape, const LayerSpec& spec,
                 const Layouts& lay) {
  const int rank = spec.rank;
  if (rank < 1) {
    std::ostringstream m;
    m << "a transposed convolution needs at least one spatial dimension; the weight must have "
         "rank >= 3 "
      << lay.w << ", got rank " << weight_shape.size();
    fail(m);
  }
  // In 64 bits: rank is any int a caller put in the spec.
  const std::int64_t full_rank = std::int64_t{rank} + 2;
  if (static_cast<std::int64_t>(weight_shape.size()) != full_rank) {
    std::ostringstream m;
    m << "weight must have rank " << full_rank << " " << lay.w << " for a " << rank
      << "-D transposed convolution, got shape " << join(weight_shape);
    fail(m);
  }
  if (static_cast<std::int64_t>(x_shape.size()) != full_rank) {
    std::ostringstream m;
    m << "x must have rank " << full_rank << " " << lay.x << " to match a weight of shape "
      << join(weight_shape) << " (" << rank << " spatial dimensions), got shape " << join(x_shape);
    fail(m);
  }
  check_param(spec.stride, rank, "stride");
  check_param(spec.dilation, rank, "dilation");
  if (spec.pad_mode == PadMode::explicit_pads) {
    check_param(spec.pad_lo, rank, "padding");
    check_param(spec.pad_hi, rank, "padding");
  }
  if (spec.output_padding) check_param(*spec.output_padding, rank, "output_padding");
}

// No negative sizes, positive groups, the weight's C_in equal to x's channels and divisible
// by groups.
void check_channels(const std::vector<std::int64_t>& x_shape,
                    const std::vector<std::int64_t>& weight_shape, const Geometry& g,
                    std::int64_t w_cin, const Layouts& lay) {
  const bool cf = g.data_format == DataFormat::channels_first;
  for (std::size_t i = 0; i < x_shape.size(); ++i) {
    if (x_shape[i] < 0) {
      std::ostringstream m;
      m << "x has a negative size in its shape " << join(x_shape);
      fail(m);
    }
  }
  for (std::size_t i = 0; i < weight_shape.size(); ++i) {
    if (weight_shape[i] < 0) {
      std::ostringstream m;
      m << "weight has a negative size in its shape " << join(weight_shape);
      fail(m);
    }
  }
  if (g.groups < 1) {
    std::ostringstream m;
    m << "groups must be a positive integer, got " << g.groups << "; use groups=1 for an "
      << "ordinary layer or groups=C_in for a depthwise one";
    fail(m);
  }
  if (w_cin != g.in_channels) {
    std::ostringstream m;
    m << "x has " << g.in_channels << " input channels but the weight expects " << w_cin
      << " (weight shape " << join(weight_shape) << " is " << lay.w << ", x shape " << join(x_shape)
      << " is " << lay.x << ")";
    if (!cf && x_shape.size() >= 3 && x_shape[1] == w_cin)
      m << "; x looks channels_first: pass data_format=\"channels_first\" or move the channel "
           "axis last";
    else if (cf && x_shape.back() == w_cin)
      m << "; x looks channels_last: pass data_format=\"channels_last\" (with a Keras-layout "
           "weight) or transpose x to (N, C, *spatial)";
    else
      m << "; the weight's C_in axis must equal the number of channels of x";
    fail(m);
  }
  if (g.in_channels % g.groups != 0) {
    std::ostringstream m;
    m << "in_channels (" << g.in_channels << ") must be divisible by groups (" << g.groups
      << "); use a groups value that divides " << g.in_channels;
    fail(m);
  }
}

// Kernel size, stride, dilation and input size of spatial dim d.
void check_dim(const std::vector<std::int64_t>& x_shape,
               const std::vector<std::int64_t>& weight_shape, const Geometry& g, int d,
               std::int64_t s, std::int64_t dil) {
  const int rank = g.rank;
  const std::int64_t k = g.kernel[d];
  if (k < 1) {
    std::ostringstream m;
    m << "kernel size must be at least 1 in every spatial dimension, got " << k << " in "
      << where(rank, d) << " (weight shape " << join(weight_shape) << ")";
    fail(m);
  }
  if (s < 1) {
    std::ostringstream m;
    m << "stride must be a positive integer, got " << s << " in " << where(rank, d)
      << "; use stride=1 for no upsampling";
    fail(m);
  }
  if (dil < 1) {
    std::ostringstream m;
    m << "dilation must be a positive integer, got " << dil << " in " << where(rank, d)
      << "; use dilation=1 for an ordinary kernel";
    fail(m);
  }
  if (g.input[d] < 1) {
    std::ostringstream m;
    m << "x must have at least one element along every spatial dimension, got size " << g.input[d]
      << " in " << where(rank, d) << " (x shape " << join(x_shape) << ")";
    fail(m);
  }
}

// Explicit padding of dim d: non-negative crops, output_padding below max(stride, dilation).
DimPadding explicit_padding(const LayerSpec& spec, int d, std::int64_t s, std::int64_t dil) {
  const int rank = spec.rank;
  DimPadding p;
  p.pad_lo = spec.pad_lo[d];
  p.pad_hi = spec.pad_hi[d];
  if (p.pad_lo < 0 || p.pad_hi < 0) {
    std::ostringstream m;
    m << "padding must be non-negative, got (" << p.pad_lo << ", " << p.pad_hi << ") in "
      << where(rank, d) << "; to enlarge the output use output_padding instead";
    fail(m);
  }
  p.output_padding = spec.output_padding ? (*spec.output_padding)[d] : 0;
  const std::int64_t limit = output_padding_limit(s, dil);
  if (p.output_padding < 0 || p.output_padding >= limit) {
    std::ostringstream m;
    m << "output_padding must be smaller than either stride or dilation (and >= 0), got "
      << "output_padding=" << p.output_padding << " with stride=" << s << " and dilation=" << dil
      << " in " << where(rank, d) << "; use output_padding in [0, " << limit - 1 << "]";
    if (p.output_padding >= limit)
      m << ", or add " << p.output_padding - (limit - 1)
        << " to the output another way (a larger kernel or less padding)";
    fail(m);
  }
  return p;
}

// Keras' "same"/"valid" padding of dim d, its output_padding below the stride.
DimPadding keras_padding(const LayerSpec& spec, int d, std::int64_t k, std::int64_t s,
                         std::int64_t dil) {
  std::optional<std::int64_t> op;
  if (spec.output_padding) {
    op = (*spec.output_padding)[d];
    if (*op < 0 || *op >= s) {
      std::ostringstream m;
      m << "output_padding must be smaller than the stride with padding=\""
        << (spec.pad_mode == PadMode::same ? "same" : "valid") << "\" (Keras' rule), got "
        << "output_padding=" << *op << " with stride=" << s << " in " << where(spec.rank, d)
        << "; use output_padding in [0, " << s - 1 << "] or output_padding=None";
      fail(m);
    }
  }
  return resolve_keras_padding(spec.pad_mode, k, s, dil, op);
}

// The output length of dim d, at least 1.
std::int64_t output_length(const Geometry& g, int d, std::int64_t s, std::int64_t dil,
                           const DimPadding& p) {
  const std::int64_t k = g.kernel[d];
  const std::int64_t out =
      transposed_length(g.input[d], k, s, dil, p.pad_lo, p.pad_hi, p.output_padding);
  if (out < 1) {
    const std::int64_t full = transposed_length(g.input[d], k, s, dil, 0, 0, 0);
    std::ostringstream m;
    m << "the output would have size " << out << " in " << where(g.rank, d)
      << ": the uncropped result has " << full << " cells and padding crops " << p.pad_lo << " + "
      << p.pad_hi << "; use padding of at most " << (full - 1) / 2 << " per side (total < " << full
      << ")";
    fail(m);
  }
  return out;
}

}  // namespace

Geometry resolve_geometry(const std::vector<std::int64_t>& x_shape,
                          const std::vector<std::int64_t>& weight_shape, const LayerSpec& spec) {
  const int rank = spec.rank;
  const bool cf = spec.data_format == DataFormat::channels_first;
  const Layouts lay{cf ? "(N, C_in, *spatial)" : "(N, *spatial, C_in)",
                    cf ? "(C_in, C_out/groups, *kernel)" : "(*kernel, C_out/groups, C_in)"};
  check_ranks(x_shape, weight_shape, spec, lay);

  Geometry g;
  g.rank = rank;
  g.data_format = spec.data_format;
  g.groups = spec.groups;
  g.batch = x_shape[0];
  g.in_channels = cf ? x_shape[1] : x_shape.back();
  const std::int64_t w_cin = cf ? weight_shape[0] : weight_shape.back();
  const std::int64_t cout_g = cf ? weight_shape[1] : weight_shape[rank];
  for (int d = 0; d < rank; ++d) {
    g.input.push_back(x_shape[(cf ? 2 : 1) + d]);
    g.kernel.push_back(weight_shape[(cf ? 2 : 0) + d]);
  }
  check_channels(x_shape, weight_shape, g, w_cin, lay);
  g.out_channels = checked_mul(cout_g, g.groups, "out_channels");

  for (int d = 0; d < rank; ++d) {
    const std::int64_t s = spec.stride[d], dil = spec.dilation[d];
    check_dim(x_shape, weight_shape, g, d, s, dil);
    const DimPadding p = spec.pad_mode == PadMode::explicit_pads
                             ? explicit_padding(spec, d, s, dil)
                             : keras_padding(spec, d, g.kernel[d], s, dil);
    const std::int64_t out = output_length(g, d, s, dil, p);
    g.stride.push_back(s);
    g.dilation.push_back(dil);
    g.pad_lo.push_back(p.pad_lo);
    g.pad_hi.push_back(p.pad_hi);
    g.output_padding.push_back(p.output_padding);
    g.output.push_back(out);
  }
  // Every element count the operator will index must fit in int64 (and in bytes).
  const std::int64_t elem = 8;
  checked_mul(checked_product(g.input_shape(), "the number of elements of x"), elem,
              "the byte size of x");
  checked_mul(checked_product(g.weight_shape(), "the number of elements of weight"), elem,
              "the byte size of weight");
  checked_mul(checked_product(g.output_shape(), "the number of elements of the output"), elem,
              "the byte size of the output");
  return g;
}

Result<Geometry> try_resolve_geometry(const std::vector<std::int64_t>& x_shape,
                                      const std::vector<std::int64_t>& weight_shape,
                                      const LayerSpec& spec) {
  try {
    return Result<Geometry>::success(resolve_geometry(x_shape, weight_shape, spec));
  } catch (const ShapeError& e) {
    return Result<Geometry>::failure(e.what());
  } catch (const SizeOverflowError& e) {
    return Result<Geometry>::failure(e.what());
  }
}

std::vector<std::int64_t> output_padding_for_size(const std::vector<std::int64_t>& x_shape,
                                                  const std::vector<std::int64_t>& weight_shape,
                                                  const LayerSpec& spec,
                                                  const std::vector<std::int64_t>& wanted) {
  // Resolve with the largest output_padding every convention accepts (stride - 1): the
  // smallest size may have no cell at all, which resolve_geometry would rightly refuse.
  LayerSpec base = spec;
  base.output_padding = spec.stride;
  for (auto& v : *base.output_padding)
    if (v > 0) v -= 1;  // a stride < 1 is reported by resolve_geometry below
  Geometry g = resolve_geometry(x_shape, weight_shape, base);
  std::vector<std::int64_t> want = wanted;
  // PyTorch accepts the full shape too and uses its trailing spatial part.
  if (static_cast<std::int64_t>(want.size()) == std::int64_t{spec.rank} + 2) {
    const bool cf = spec.data_format == DataFormat::channels_first;
    want = std::vector<std::int64_t>(wanted.begin() + (cf ? 2 : 1),
                                     wanted.begin() + (cf ? 2 : 1) + spec.rank);
  }
  if (static_cast<int>(want.size()) != spec.rank) {
    std::ostringstream m;
    m << "output_size must give " << spec.rank << " spatial sizes (or the full output shape of "
      << spec.rank + 2 << " values), got " << join(wanted);
    fail(m);
  }
  std::vector<std::int64_t> lo(g.output), hi(g.output), op(want.size());
  bool ok = true;
  for (int d = 0; d < spec.rank; ++d) {
    // Like PyTorch, the reachable sizes span one stride: [min, min + stride - 1], of which
    // only the positive ones exist.
    const std::int64_t min_len = hi[d] - (g.stride[d] - 1);
    lo[d] = std::max<std::int64_t>(min_len, 1);
    if (want[d] < lo[d] || want[d] > hi[d])
      ok = false;
    else
      op[d] = want[d] - min_len;
  }
  if (!ok) {
    std::ostringstream m;
    m << "requested an output size of " << join(want) << ", but valid sizes range from " << join(lo)
      << " to " << join(hi) << " (for an input of " << join(g.input)
      << "); change the padding, kernel or stride to reach it, or crop the result";
    fail(m);
  }
  return op;
}

}  // namespace tconv
