#include "validate.hpp"

#include <algorithm>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

#include "format.hpp"

namespace tconv::detail {
namespace {

const char* const kFix = "; build the Geometry with tconv::resolve_geometry and do not edit it";

[[noreturn]] void bad_geometry(const std::ostringstream& m) { throw ShapeError(m.str() + kFix); }

void check_length(const std::vector<std::int64_t>& v, int rank, const char* field) {
  if (v.size() != static_cast<std::size_t>(rank)) {
    std::ostringstream m;
    m << "inconsistent Geometry: " << field << " has " << v.size() << " values " << join(v)
      << " but rank is " << rank;
    bad_geometry(m);
  }
}

void check_geometry(const Geometry& g) {
  if (g.rank < 1) {
    std::ostringstream m;
    m << "inconsistent Geometry: rank must be at least 1, got " << g.rank;
    bad_geometry(m);
  }
  if (g.data_format != DataFormat::channels_first && g.data_format != DataFormat::channels_last) {
    std::ostringstream m;
    m << "inconsistent Geometry: data_format holds the value " << static_cast<int>(g.data_format)
      << ", which is neither channels_first nor channels_last";
    bad_geometry(m);
  }
  check_length(g.input, g.rank, "input");
  check_length(g.kernel, g.rank, "kernel");
  check_length(g.stride, g.rank, "stride");
  check_length(g.dilation, g.rank, "dilation");
  check_length(g.pad_lo, g.rank, "pad_lo");
  check_length(g.pad_hi, g.rank, "pad_hi");
  check_length(g.output_padding, g.rank, "output_padding");
  check_length(g.output, g.rank, "output");
  if (g.batch < 0 || g.in_channels < 0 || g.out_channels < 0) {
    std::ostringstream m;
    m << "inconsistent Geometry: batch, in_channels and out_channels must be >= 0, got " << g.batch
      << ", " << g.in_channels << " and " << g.out_channels;
    bad_geometry(m);
  }
  if (g.groups < 1 || g.in_channels % g.groups != 0 || g.out_channels % g.groups != 0) {
    std::ostringstream m;
    m << "inconsistent Geometry: groups (" << g.groups
      << ") must be positive and divide in_channels (" << g.in_channels << ") and out_channels ("
      << g.out_channels << ")";
    bad_geometry(m);
  }
  for (int d = 0; d < g.rank; ++d) {
    const std::int64_t k = g.kernel[d], s = g.stride[d], dil = g.dilation[d], in = g.input[d];
    const std::int64_t lo = g.pad_lo[d], hi = g.pad_hi[d], op = g.output_padding[d];
    if (k < 1 || s < 1 || dil < 1 || in < 1 || lo < 0 || hi < 0 || op < 0) {
      std::ostringstream m;
      m << "inconsistent Geometry in spatial dimension " << d << ": needs input, kernel, stride "
        << "and dilation >= 1 and pad_lo, pad_hi, output_padding >= 0, got input " << in
        << ", kernel " << k << ", stride " << s << ", dilation " << dil << ", pad_lo " << lo
        << ", pad_hi " << hi << ", output_padding " << op;
      bad_geometry(m);
    }
    const std::int64_t want = transposed_length(in, k, s, dil, lo, hi, op);
    if (g.output[d] != want || want < 1) {
      std::ostringstream m;
      m << "inconsistent Geometry in spatial dimension " << d << ": output is " << g.output[d]
        << " but input " << in << ", kernel " << k << ", stride " << s << ", dilation " << dil
        << ", padding (" << lo << ", " << hi << ") and output_padding " << op << " give " << want;
      bad_geometry(m);
    }
  }
}

// The bytes a strided tensor can reach: [lo, hi) relative to its base pointer.
struct Span {
  std::int64_t lo = 0, hi = 0;
};

// Element strides of a tensor: the caller's, or C-contiguous ones for an empty vector.
std::vector<std::int64_t> strides_for(const std::vector<std::int64_t>& strides,
                                      const std::vector<std::int64_t>& shape, const char* name) {
  if (strides.empty()) {
    std::vector<std::int64_t> s(shape.size());
    std::int64_t acc = 1;
    for (std::size_t i = shape.size(); i-- > 0;) {
      s[i] = acc;
      acc = checked_mul(acc, std::max<std::int64_t>(shape[i], 1), "a contiguous stride");
    }
    return s;
  }
  if (strides.size() != shape.size()) {
    std::ostringstream m;
    m << name << "_strides must have one entry per axis of " << name << ", whose shape is "
      << join(shape) << " (" << shape.size() << " entries), got " << strides.size() << " entries "
      << join(strides) << "; pass " << shape.size()
      << " element strides, or an empty vector for a C-contiguous " << name;
    throw std::invalid_argument(m.str());
  }
  return strides;
}

Span byte_span(const std::vector<std::int64_t>& shape, const std::vector<std::int64_t>& strides,
               std::size_t item_size, const char* name) {
  const std::string what = std::string("the memory span of ") + name;
  Span s;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const std::int64_t reach = checked_mul(shape[i] - 1, strides[i], what.c_str());
    if (reach < 0)
      s.lo = checked_add(s.lo, reach, what.c_str());
    else
      s.hi = checked_add(s.hi, reach, what.c_str());
  }
  const auto item = static_cast<std::int64_t>(item_size);
  s.lo = checked_mul(s.lo, item, what.c_str());
  s.hi = checked_mul(checked_add(s.hi, 1, what.c_str()), item, what.c_str());
  return s;
}

// Absolute byte addresses [lo, hi) of a tensor, refusing spans that wrap the address space.
struct Range {
  std::uintptr_t lo = 0, hi = 0;
};

Range address_range(const void* p, Span s, const char* name) {
  const auto base = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t below = 0 - static_cast<std::uintptr_t>(s.lo);  // s.lo <= 0
  const auto above = static_cast<std::uintptr_t>(s.hi);                // s.hi > 0
  if (below > base || above > std::numeric_limits<std::uintptr_t>::max() - base) {
    std::ostringstream m;
    m << name << "'s strides reach outside the address space from its data pointer; "
      << "check that they are element strides (not byte strides) and match its shape";
    throw std::invalid_argument(m.str());
  }
  return {base - below, base + above};
}

// Distinct output elements must not share memory, or threads would race on them. The test
// is the one that slicing and transposing always pass: sorted by magnitude, each stride
// steps over everything the smaller ones reach.
void check_no_self_overlap(const std::vector<std::int64_t>& shape,
                           const std::vector<std::int64_t>& strides) {
  std::vector<std::pair<std::uint64_t, std::int64_t>> axes;  // (|stride|, size)
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] > 1) {
      const std::uint64_t mag = strides[i] < 0 ? 0 - static_cast<std::uint64_t>(strides[i])
                                               : static_cast<std::uint64_t>(strides[i]);
      axes.emplace_back(mag, shape[i]);
    }
  }
  std::sort(axes.begin(), axes.end());
  std::uint64_t reach = 0;  // bounded by a checked span, so no overflow
  for (const auto& [mag, size] : axes) {
    if (mag <= reach) {
      std::ostringstream m;
      m << "y_strides " << join(strides) << " make different elements of the output (shape "
        << join(shape) << ") share memory; give y its own element for every output value "
        << "(an empty y_strides means C-contiguous)";
      throw std::invalid_argument(m.str());
    }
    reach += mag * static_cast<std::uint64_t>(size - 1);
  }
}

}  // namespace

void validate_call(const Geometry& g, const void* x, const std::vector<std::int64_t>& x_strides,
                   const void* weight, const std::vector<std::int64_t>& weight_strides,
                   const void* bias, const void* y, const std::vector<std::int64_t>& y_strides,
                   std::size_t item_size) {
  check_geometry(g);
  const auto item = static_cast<std::int64_t>(item_size);

  struct Tensor {
    const char* name;
    const void* data;
    std::vector<std::int64_t> shape, strides;
    std::int64_t count = 0;
    Range range;
  };
  Tensor t[3] = {{"x", x, g.input_shape(), {}, 0, {}},
                 {"weight", weight, g.weight_shape(), {}, 0, {}},
                 {"y", y, g.output_shape(), {}, 0, {}}};
  const std::vector<std::int64_t>* given[3] = {&x_strides, &weight_strides, &y_strides};
  for (int i = 0; i < 3; ++i) {
    Tensor& a = t[i];
    const std::string what = std::string("the byte size of ") + a.name;
    a.count = checked_product(a.shape, what.c_str());
    checked_mul(a.count, item, what.c_str());
    a.strides = strides_for(*given[i], a.shape, a.name);
    if (a.count == 0) continue;
    if (a.data == nullptr) {
      std::ostringstream m;
      m << a.name << " is a null pointer but has " << a.count << " elements (shape "
        << join(a.shape) << "); pass its data";
      throw std::invalid_argument(m.str());
    }
    a.range = address_range(a.data, byte_span(a.shape, a.strides, item_size, a.name), a.name);
  }
  const Tensor& out = t[2];
  if (out.count == 0) return;
  check_no_self_overlap(out.shape, out.strides);

  // The kernels read inputs while writing y: any shared byte could change a result.
  auto refuse_overlap = [&](const char* name, Range r) {
    if (r.lo < out.range.hi && out.range.lo < r.hi) {
      std::ostringstream m;
      m << "y overlaps " << name << " in memory; the output must be a separate buffer "
        << "(copy " << name << " first if it has to live in the same allocation)";
      throw std::invalid_argument(m.str());
    }
  };
  if (t[0].count) refuse_overlap("x", t[0].range);
  if (t[1].count) refuse_overlap("weight", t[1].range);
  if (bias != nullptr && g.out_channels > 0) {
    Span s{0, checked_mul(g.out_channels, item, "the byte size of bias")};
    refuse_overlap("bias", address_range(bias, s, "bias"));
  }
}

}  // namespace tconv::detail
