// Portable kernel: output-stationary gather over packed weights.
//
// For each output position the contributing (kernel tap, input position) pairs are the
// Cartesian product of small per-dimension lists, precomputed once per call. Each output
// element is accumulated in a local buffer that starts from the bias and is stored once, so
// the result depends only on the geometry, never on how positions are split between threads.
// The innermost loop is an axpy over the output channels of one group (`acc += x * w_row`), the
// part a vectorised micro-kernel replaces.
#include "kernels/portable.hpp"

#include <algorithm>
#include <cassert>
#include <vector>

#include "runtime.hpp"
#include "threadpool.hpp"

namespace tconv::kernels::portable {
namespace {

struct Tap {
  std::int64_t k;  // kernel index along this dimension
  std::int64_t i;  // input index along this dimension
};

// taps[first[o] .. first[o+1]) are the pairs with i*stride + k*dilation - pad_lo == o.
struct DimTaps {
  std::vector<std::int64_t> first;
  std::vector<Tap> taps;
};

DimTaps build_dim_taps(std::int64_t in, std::int64_t kernel, std::int64_t stride,
                       std::int64_t dilation, std::int64_t pad_lo, std::int64_t out) {
  DimTaps d;
  d.first.assign(static_cast<std::size_t>(out) + 1, 0);
  for (std::int64_t o = 0; o < out; ++o) {
    d.first[o] = static_cast<std::int64_t>(d.taps.size());
    for (std::int64_t k = 0; k < kernel; ++k) {
      const std::int64_t num = o + pad_lo - k * dilation;
      if (num < 0) break;  // grows more negative with k
      if (num % stride != 0) continue;
      const std::int64_t i = num / stride;
      if (i < in) d.taps.push_back({k, i});
    }
  }
  d.first[out] = static_cast<std::int64_t>(d.taps.size());
  return d;
}

// Multiply-adds between interrupt checks: well under a millisecond of this loop.
constexpr std::int64_t kCheckWork = 1 << 16;

template <class T>
void axpy(T* acc, const T* w_row, T xv, std::int64_t n) {
  for (std::int64_t c = 0; c < n; ++c) acc[c] += xv * w_row[c];
}

template <class T>
void run(const Problem<T>& p) {
  const Geometry& g = *p.g;
  const int rank = g.rank;
  const bool cf = g.data_format == DataFormat::channels_first;
  const std::int64_t groups = g.groups;
  const std::int64_t cin_g = g.in_channels / groups;
  const std::int64_t cout_g = g.out_channels / groups;
  const std::int64_t cout = g.out_channels;

  // Axis positions in the full shapes.
  const int x_c_axis = cf ? 1 : rank + 1;
  const int x_sp_axis = cf ? 2 : 1;
  const int w_cin_axis = cf ? 0 : rank + 1;
  const int w_cout_axis = cf ? 1 : rank;
  const int w_k_axis = cf ? 2 : 0;

  std::int64_t taps_total = 1;
  for (auto k : g.kernel) taps_total *= k;

  // Packed weights: [group][tap][ci][co], co contiguous (the axpy row).
  std::vector<T> packed(static_cast<std::size_t>(groups * taps_total * cin_g * cout_g));
  {
    std::vector<std::int64_t> kidx(rank, 0);
    for (std::int64_t t = 0; t < taps_total; ++t) {
      std::int64_t w_tap_off = 0;
      for (int d = 0; d < rank; ++d) w_tap_off += kidx[d] * p.w_strides[w_k_axis + d];
      for (std::int64_t gi = 0; gi < groups; ++gi)
        for (std::int64_t ci = 0; ci < cin_g; ++ci)
          for (std::int64_t co = 0; co < cout_g; ++co) {
            const T* src = p.w + w_tap_off + (gi * cin_g + ci) * p.w_strides[w_cin_axis] +
                           co * p.w_strides[w_cout_axis];
            packed[static_cast<std::size_t>(((gi * taps_total + t) * cin_g + ci) * cout_g + co)] =
                *src;
          }
      for (int d = rank - 1; d >= 0; --d) {
        if (++kidx[d] < g.kernel[d]) break;
        kidx[d] = 0;
      }
    }
  }

  std::vector<DimTaps> dims;
  for (int d = 0; d < rank; ++d)
    dims.push_back(build_dim_taps(g.input[d], g.kernel[d], g.stride[d], g.dilation[d], g.pad_lo[d],
                                  g.output[d]));

  std::vector<std::int64_t> k_pitch(rank, 1);  // linear tap index = sum k[d] * k_pitch[d]
  for (int d = rank - 2; d >= 0; --d) k_pitch[d] = k_pitch[d + 1] * g.kernel[d + 1];

  std::vector<T> acc(static_cast<std::size_t>(cout));
  std::vector<std::int64_t> opos(rank, 0), cursor(rank, 0);
  std::int64_t out_positions = 1;
  for (auto o : g.output) out_positions *= o;
  std::int64_t work = 0;  // multiply-adds and stores since the last interrupt check
  auto did = [&work](std::int64_t n) {
    work += n;
    if (work >= kCheckWork) {
      work = 0;
      detail::check_interrupt();
    }
  };

  for (std::int64_t n = 0; n < g.batch; ++n) {
    const T* x_n = p.x + n * p.x_strides[0];
    T* y_n = p.y + n * p.y_strides[0];
    std::fill(opos.begin(), opos.end(), 0);
    for (std::int64_t pos = 0; pos < out_positions; ++pos) {
      for (std::int64_t c = 0; c < cout; ++c) acc[c] = p.bias ? p.bias[c] : T(0);
      did(cout);

      // Walk the Cartesian product of the per-dimension tap lists.
      bool any = true;
      for (int d = 0; d < rank; ++d) {
        cursor[d] = dims[d].first[opos[d]];
        if (cursor[d] == dims[d].first[opos[d] + 1]) any = false;
      }
      while (any) {
        std::int64_t tap = 0, x_off = 0;
        for (int d = 0; d < rank; ++d) {
          const Tap& t = dims[d].taps[cursor[d]];
          tap += t.k * k_pitch[d];
          x_off += t.i * p.x_strides[x_sp_axis + d];
        }
        for (std::int64_t gi = 0; gi < groups; ++gi) {
          const T* w_rows = packed.data() + (gi * taps_total + tap) * cin_g * cout_g;
          const T* x_g = x_n + x_off + gi * cin_g * p.x_strides[x_c_axis];
          T* acc_g = acc.data() + gi * cout_g;
          for (std::int64_t ci = 0; ci < cin_g; ++ci)
            axpy(acc_g, w_rows + ci * cout_g, x_g[ci * p.x_strides[x_c_axis]], cout_g);
        }
        did(cin_g * cout);
        int d = rank - 1;
        for (; d >= 0; --d) {
          if (++cursor[d] < dims[d].first[opos[d] + 1]) break;
          cursor[d] = dims[d].first[opos[d]];
        }
        if (d < 0) break;
      }

      std::int64_t y_off = 0;
      for (int d = 0; d < rank; ++d) y_off += opos[d] * p.y_strides[x_sp_axis + d];
      const std::int64_t y_c_stride = p.y_strides[cf ? 1 : rank + 1];
      for (std::int64_t c = 0; c < cout; ++c) y_n[y_off + c * y_c_stride] = acc[c];

      for (int d = rank - 1; d >= 0; --d) {
        if (++opos[d] < g.output[d]) break;
        opos[d] = 0;
      }
    }
  }
}

}  // namespace

void conv_transpose(const Problem<float>& p) {
  runtime::note_kernel("portable");
  run(p);
}
void conv_transpose(const Problem<double>& p) {
  runtime::note_kernel("portable");
  run(p);
}

}  // namespace tconv::kernels::portable
