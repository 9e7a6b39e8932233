#include "canonical.hpp"

#include <algorithm>

namespace tconv::detail {
namespace {

bool trivial(const Geometry& g, int d) {
  return g.input[d] == 1 && g.kernel[d] == 1 && g.output[d] == 1 && g.pad_lo[d] == 0;
}

// A last dim narrower than kNarrow beside one at least four times as long and kLongOutput
// (outputs) or kLongInput (inputs) long is moved away from the vector axis.
constexpr std::int64_t kNarrow = 16, kLongOutput = 64, kLongInput = 32;

// The dim of `keep` whose `extent` is largest, or -1 when the last one is not narrow beside it.
int long_beside_narrow(const std::vector<int>& keep, const std::vector<std::int64_t>& extent,
                       std::int64_t long_enough) {
  const auto at = [&](int d) { return extent[static_cast<std::size_t>(d)]; };
  int longest = keep.back();
  for (int d : keep)
    if (at(d) > at(longest)) longest = d;
  const std::int64_t last = at(keep.back());
  return last < kNarrow && at(longest) >= std::max(long_enough, 4 * last) ? longest : -1;
}

// The kept dims in their new order (old indices). The vector axis is the last dim's output
// (rows of output cells) and its input (the positions a kernel call loads): a last dim narrow
// in either beside a long one gives calls of a few useful lanes each, one per tap of the
// other dims (an input of one column under a 424-wide kernel: 8 s where torch takes 0.2 s).
std::vector<int> dim_order(const Geometry& g) {
  std::vector<int> keep;
  for (int d = 0; d < g.rank; ++d)
    if (!trivial(g, d)) keep.push_back(d);
  if (keep.empty()) keep.push_back(g.rank - 1);
  int longest = long_beside_narrow(keep, g.output, kLongOutput);
  if (longest < 0) longest = long_beside_narrow(keep, g.input, kLongInput);
  if (longest >= 0) {
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

// One channel in and out: channels_last is channels_first with the channel axes moved (the
// same memory), and the channels_first kernels vectorise along the positions.
void to_channels_first(const Geometry& g, std::vector<std::int64_t>& xs,
                       std::vector<std::int64_t>& ws, std::vector<std::int64_t>& ys) {
  const auto r = static_cast<std::ptrdiff_t>(g.rank);
  std::rotate(xs.begin() + 1, xs.begin() + 1 + r, xs.end());  // (N, s..., C) -> (N, C, s...)
  std::rotate(ys.begin() + 1, ys.begin() + 1 + r, ys.end());
  std::rotate(ws.begin(), ws.begin() + r, ws.end());  // (k..., Co, Ci) -> (Co, Ci, k...)
  std::swap(ws[0], ws[1]);                            // -> (Ci, Co, k...)
}

}  // namespace

bool canonical_layer(const Geometry& g, const std::vector<std::int64_t>& x_strides,
                     const std::vector<std::int64_t>& w_strides,
                     const std::vector<std::int64_t>& y_strides, CanonicalLayer* out) {
  const std::vector<int> order = dim_order(g);
  bool same = static_cast<int>(order.size()) == g.rank;
  for (std::size_t i = 0; same && i < order.size(); ++i) same = order[i] == static_cast<int>(i);
  const bool flip =
      g.data_format == DataFormat::channels_last && g.in_channels == 1 && g.out_channels == 1;
  if (same && !flip) return false;
  std::vector<std::int64_t> xs = x_strides, ws = w_strides, ys = y_strides;
  if (flip) to_channels_first(g, xs, ws, ys);
  const bool cf = flip || g.data_format == DataFormat::channels_first;
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
  c.data_format = cf ? DataFormat::channels_first : DataFormat::channels_last;
  out->g = c;
  out->x_strides = permute(xs, g.rank, cf ? 2 : 1, order);
  out->y_strides = permute(ys, g.rank, cf ? 2 : 1, order);
  out->w_strides = permute(ws, g.rank, cf ? 2 : 0, order);
  return true;
}

}  // namespace tconv::detail
