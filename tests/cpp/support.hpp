// What the C++ test programs share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tconv/tconv.hpp"

namespace tconv_test {

// splitmix64: the same stream on every platform and compiler (the cross-compiled AArch64 run
// draws the layers the x86-64 run draws).
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::int64_t range(std::int64_t lo, std::int64_t hi) {  // inclusive
    return lo + static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53 * 2.0 - 1.0; }
  template <class V>
  const typename V::value_type& pick(const V& v) {
    return v[static_cast<std::size_t>(range(0, static_cast<std::int64_t>(v.size()) - 1))];
  }
};

using Index = std::vector<std::int64_t>;

// Odometer over a multi-index in C order: false (and all zeros) after the last one.
inline bool next_index(Index& idx, const Index& shape) {
  for (std::size_t a = idx.size(); a-- > 0;) {
    if (++idx[a] < shape[a]) return true;
    idx[a] = 0;
  }
  return false;
}

// Position of idx in a C-contiguous array of `shape`.
inline std::size_t c_offset(const Index& shape, const Index& idx) {
  std::int64_t o = 0;
  for (std::size_t a = 0; a < idx.size(); ++a) o = o * shape[a] + idx[a];
  return static_cast<std::size_t>(o);
}

// Full index of x or y element (n, channel, position) in the data format's axis order.
inline Index act_index(bool channels_last, std::int64_t n, std::int64_t c, const Index& pos) {
  Index idx{n};
  if (!channels_last) idx.push_back(c);
  idx.insert(idx.end(), pos.begin(), pos.end());
  if (channels_last) idx.push_back(c);
  return idx;
}

// Full index of weight element (input channel, output channel in its group, tap):
// (C_in, C_out/g, *k) or (*k, C_out/g, C_in).
inline Index w_index(bool channels_last, std::int64_t ci, std::int64_t co, const Index& tap) {
  Index idx;
  if (!channels_last) idx = {ci, co};
  idx.insert(idx.end(), tap.begin(), tap.end());
  if (channels_last) idx.insert(idx.end(), {co, ci});
  return idx;
}

// The definition, sharing nothing with the library but the geometry: every input element times
// every tap, added where it lands, y[i * stride + k * dilation - pad_lo] += x[i] * w[k], then the
// bias. x_at(index) and w_at(index) read by full index (act_index, w_index); add(y_index, a, b)
// receives each product's factors (the bias as (bias, 1)) in a fixed order, so the caller picks
// the precision and any bookkeeping. bias_at is null without a bias.
template <class XAt, class WAt, class BiasAt, class Add>
void scatter(const tconv::Geometry& g, XAt x_at, WAt w_at, const BiasAt* bias_at, Add add) {
  const bool cl = g.data_format == tconv::DataFormat::channels_last;
  const std::int64_t cin_g = g.in_channels / g.groups, cout_g = g.out_channels / g.groups;
  const auto r = static_cast<std::size_t>(g.rank);
  bool empty = false;
  for (std::size_t d = 0; d < r; ++d) empty = empty || g.input[d] < 1 || g.kernel[d] < 1;
  for (std::int64_t n = 0; n < g.batch && !empty; ++n)
    for (std::int64_t ci = 0; ci < g.in_channels; ++ci) {
      const std::int64_t group = ci / cin_g;
      Index i(r, 0);
      do {
        const double xv = x_at(act_index(cl, n, ci, i));
        Index k(r, 0);
        do {
          Index o(r);
          bool inside = true;
          for (std::size_t d = 0; d < r; ++d) {
            o[d] = i[d] * g.stride[d] + k[d] * g.dilation[d] - g.pad_lo[d];
            inside = inside && o[d] >= 0 && o[d] < g.output[d];
          }
          if (!inside) continue;
          for (std::int64_t co = 0; co < cout_g; ++co)
            add(act_index(cl, n, group * cout_g + co, o), xv, w_at(w_index(cl, ci, co, k)));
        } while (next_index(k, g.kernel));
      } while (next_index(i, g.input));
    }
  const Index ys = g.output_shape();
  Index idx(ys.size(), 0);
  bool any = bias_at != nullptr;
  for (auto e : ys) any = any && e > 0;
  if (any) do
      add(idx, (*bias_at)(cl ? idx.back() : idx[1]), 1.0);
    while (next_index(idx, ys));
}

}  // namespace tconv_test
