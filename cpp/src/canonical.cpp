#include "canonical.hpp"

#include <algorithm>

namespace tconv::detail {
namespace {

bool trivial(const Geometry& g, int d) {
  return g.input[d] == 1 && g.kernel[d] == 1 && g.output[d] == 1 && g.pad_lo[d] == 0;
}

// A last dim this narrow beside one this long is moved away from the vector axis.
constexpr std::int64_t kNarrow = 16, kLong = 64;

// The kept dims in their new order (old indices).
std::vector<int> dim_order(const Geometry& g) {
  std::vector<int> keep;
  for (int d = 0; d < g.rank; ++d)
    if (!trivial(g, d)) keep.push_back(d);
  if (keep.empty()) keep.push_back(g.rank - 1);
  const int last = keep.back();
  int longest = last;
  for (int d : keep)
    if (g.output[d] > g.output[longest]) longest = d;
  if (g.output[last] < kNarrow && g.output[longest] >= kLong) {
    keep.erase(std::find(keep.begin(), keep.end(), longest));
    keep.push_back(longest);
  }
  return keep;
}

std::vector<std::int64_t> pick(const std::vector<std::int64_t>& v, const std::vector<int>& order) {
  std::vector<std::int64_t> r;
  for (int d : order) r.push_back(v[static_cast<std::size_t>(d)]);
  return r;
}

// Strides of a full shape whose spatial axes start at `first`: the others kept in place.
std::vector<std::int64_t> permute(const std::vector<std::int64_t>& s, int rank, int first,
                                  const std::vector<int>& order) {
  std::vector<std::int64_t> r(s.begin(), s.begin() + first);
  for (int d : order) r.push_back(s[static_cast<std::size_t>(first + d)]);
  r.insert(r.end(), s.begin() + first + rank, s.end());
  return r;
}

}  // namespace

bool canonical_layer(const Geometry& g, const std::vector<std::int64_t>& x_strides,
                     const std::vector<std::int64_t>& w_strides,
                     const std::vector<std::int64_t>& y_strides, CanonicalLayer* out) {
  const std::vector<int> order = dim_order(g);
  bool same = static_cast<int>(order.size()) == g.rank;
  for (std::size_t i = 0; same && i < order.size(); ++i) same = order[i] == static_cast<int>(i);
  if (same) return false;
  const bool cf = g.data_format == DataFormat::channels_first;
  Geometry c = g;
  c.rank = static_cast<int>(order.size());
  c.input = pick(g.input, order);
  c.kernel = pick(g.kernel, order);
  c.stride = pick(g.stride, order);
  c.dilation = pick(g.dilation, order);
  c.pad_lo = pick(g.pad_lo, order);
  c.pad_hi = pick(g.pad_hi, order);
  c.output_padding = pick(g.output_padding, order);
  c.output = pick(g.output, order);
  out->g = c;
  out->x_strides = permute(x_strides, g.rank, cf ? 2 : 1, order);
  out->y_strides = permute(y_strides, g.rank, cf ? 2 : 1, order);
  out->w_strides = permute(w_strides, g.rank, cf ? 2 : 0, order);
  return true;
}

}  // namespace tconv::detail
