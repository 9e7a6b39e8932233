#include "kernels/depthwise.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

#include "runtime.hpp"
#include "threadpool.hpp"

namespace tconv::kernels::depthwise {
namespace {

std::int64_t floor_mod(std::int64_t a, std::int64_t b) { return ((a % b) + b) % b; }
std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return a / b + (a % b != 0); }

// taps[first[o] .. first[o+1]) are the (kernel index, input index) pairs of output o along
// one dim: i*stride + k*dilation - pad_lo == o.
struct DimTaps {
  std::vector<std::int64_t> first, k, i;
  std::int64_t most = 0;  // the largest tap count of an output
};

DimTaps dim_taps(std::int64_t in, std::int64_t kernel, std::int64_t stride, std::int64_t dilation,
                 std::int64_t pad_lo, std::int64_t out) {
  DimTaps d;
  d.first.assign(static_cast<std::size_t>(out) + 1, 0);
  for (std::int64_t o = 0; o < out; ++o) {
    d.first[static_cast<std::size_t>(o)] = static_cast<std::int64_t>(d.k.size());
    // i < in means k*dilation > o + pad_lo - stride*in: start there.
    const std::int64_t top = o + pad_lo;
    const std::int64_t low = top - stride * in;
    std::int64_t k = low < 0 ? 0 : low / dilation + 1;
    for (; k < kernel; ++k) {
      const std::int64_t num = top - k * dilation;
      if (num < 0) break;  // grows more negative with k
      if (num % stride != 0) continue;
      const std::int64_t i = num / stride;
      if (i < in) {
        d.k.push_back(k);
        d.i.push_back(i);
      }
    }
    d.most = std::max(d.most,
                      static_cast<std::int64_t>(d.k.size()) - d.first[static_cast<std::size_t>(o)]);
  }
  d.first[static_cast<std::size_t>(out)] = static_cast<std::int64_t>(d.k.size());
  return d;
}

std::size_t table_bytes(const DimTaps& d) {
  return (d.first.size() + d.k.size() + d.i.size()) * sizeof(std::int64_t);
}

// Work items: `per` consecutive rows of `rows` per block, enough blocks that `threads` stay
// busy when there are few planes.
struct Blocks {
  std::int64_t count = 1, per = 1;
};

Blocks split(std::int64_t rows, std::int64_t planes, int threads) {
  Blocks b;
  const std::int64_t want =
      threads > 1 ? ceil_div(4 * threads, std::max<std::int64_t>(planes, 1)) : 1;
  b.count = std::max<std::int64_t>(1, std::min(rows, want));
  b.per = ceil_div(rows, b.count);
  b.count = ceil_div(rows, b.per);
  return b;
}

// ---- scalar kernels ----------------------------------------------------------------------------

// Blocks of positions accumulated in a local buffer: the inner loops are plain axpys the
// compiler vectorises at the baseline ISA.
constexpr std::int64_t kBlock = 256;

template <class T>
void rows_scalar(const DwRowsCall<T>& c) {
  for (std::int64_t i = 0; i < c.fill_rows; ++i) {
    const T* src = c.src + c.src_off[c.x_first + i];
    T* dst = c.fill + i * c.x_pitch;
    for (std::int64_t j = 0; j < c.src_len; ++j) dst[j] = src[j * c.src_step];
  }
  T acc[kBlock];
  const std::int64_t s = c.phases, full = c.y_len / s;
  for (std::int64_t row = c.row0; row < c.row1; ++row) {
    const std::int64_t e0 = c.pair_first[row], e1 = c.pair_first[row + 1];
    T* y = c.y + c.y_off[row];
    for (std::int64_t q = 0; q < full; q += kBlock) {
      const std::int64_t n = std::min(kBlock, full - q);
      for (std::int64_t r = 0; r < s; ++r) {
        for (std::int64_t j = 0; j < n; ++j) acc[j] = c.bias;
        for (std::int64_t e = e0; e < e1; ++e) {
          const T* xe = c.x + (c.pair_x[e] - c.x_first) * c.x_pitch + q;
          const T* we = c.w + c.pair_w[e];
          for (std::int64_t t = c.tap_first[r]; t < c.tap_first[r + 1]; ++t) {
            const T wv = we[c.tap_k[t]];
            const T* x = xe + c.tap_c[t];
            for (std::int64_t j = 0; j < n; ++j) acc[j] += wv * x[j];
          }
        }
        T* out = y + (s * q + r) * c.y_step;
        const std::int64_t step = s * c.y_step;
        for (std::int64_t j = 0; j < n; ++j) out[j * step] = acc[j];
      }
    }
    // The last, partial group of phases.
    for (std::int64_t r = 0; s * full + r < c.y_len; ++r) {
      T v = c.bias;
      for (std::int64_t e = e0; e < e1; ++e) {
        const T* xe = c.x + (c.pair_x[e] - c.x_first) * c.x_pitch + full;
        const T* we = c.w + c.pair_w[e];
        for (std::int64_t t = c.tap_first[r]; t < c.tap_first[r + 1]; ++t)
          v += we[c.tap_k[t]] * xe[c.tap_c[t]];
      }
      y[(s * full + r) * c.y_step] = v;
    }
  }
}

template <class T>
void pixels_scalar(const DwPixelsCall<T>& c) {
  T acc[kBlock];
  for (std::int64_t o = c.o0; o < c.o1; ++o)
    for (std::int64_t c0 = 0; c0 < c.channels; c0 += kBlock) {
      const std::int64_t n = std::min(kBlock, c.channels - c0);
      for (std::int64_t j = 0; j < n; ++j) acc[j] = c.bias ? c.bias[c0 + j] : T(0);
      for (std::int64_t p = 0; p < c.pairs; ++p)
        for (std::int64_t t = c.col_first[o]; t < c.col_first[o + 1]; ++t) {
          const T* x = c.x + c.row_x[p] + c.col_x[t] + c0;
          const T* w = c.w + c.row_w[p] + c.col_w[t] + c0;
          for (std::int64_t j = 0; j < n; ++j) acc[j] += x[j] * w[j];
        }
      T* y = c.y + o * c.y_step + c0;
      for (std::int64_t j = 0; j < n; ++j) y[j] = acc[j];
    }
}

// Row-major pitches of the kernel dims (tap index = sum k[d] * pitch[d]).
std::vector<std::int64_t> kernel_pitch(const Geometry& g) {
  std::vector<std::int64_t> pitch(static_cast<std::size_t>(g.rank), 1);
  for (int d = g.rank - 2; d >= 0; --d) pitch[d] = pitch[d + 1] * g.kernel[d + 1];
  return pitch;
}

// Per outer dim, its tap lists as offsets: into the input (i * the input's step) and into a
// channel's packed kernel (k * the kernel pitch).
struct OuterDim {
  DimTaps taps;
  std::vector<std::int64_t> x_off, w_off;
};

OuterDim outer_dim(DimTaps taps, std::int64_t x_step, std::int64_t pitch) {
  OuterDim d;
  d.x_off.resize(taps.i.size());
  d.w_off.resize(taps.k.size());
  for (std::size_t t = 0; t < taps.i.size(); ++t) {
    d.x_off[t] = taps.i[t] * x_step;
    d.w_off[t] = taps.k[t] * pitch;
  }
  d.taps = std::move(taps);
  return d;
}

// The (input offset, tap offset) pairs of one output row: the product of the outer dims' tap
// lists at the row's position `opos`. Returns the pair count.
std::int64_t row_pairs(const std::vector<OuterDim>& outer, const std::int64_t* opos,
                       std::int64_t* x_off, std::int64_t* w_off) {
  const std::size_t nd = outer.size();
  if (nd == 0) {
    x_off[0] = 0;
    w_off[0] = 0;
    return 1;
  }
  const OuterDim& a = outer[0];
  const std::int64_t a0 = a.taps.first[opos[0]], a1 = a.taps.first[opos[0] + 1];
  if (nd == 1) {
    for (std::int64_t t = a0; t < a1; ++t) {
      x_off[t - a0] = a.x_off[t];
      w_off[t - a0] = a.w_off[t];
    }
    return a1 - a0;
  }
  const OuterDim& b = outer[1];
  const std::int64_t b0 = b.taps.first[opos[1]], b1 = b.taps.first[opos[1] + 1];
  std::int64_t e = 0;
  for (std::int64_t t = a0; t < a1; ++t)
    for (std::int64_t u = b0; u < b1; ++u, ++e) {
      x_off[e] = a.x_off[t] + b.x_off[u];
      w_off[e] = a.w_off[t] + b.w_off[u];
    }
  return e;
}

// Position of the first row of a block (outer dims, row-major), then stepped row by row.
void row_position(std::int64_t row, const Geometry& g, int nd, std::int64_t* opos) {
  for (int d = nd - 1; d >= 0; --d) {
    opos[d] = row % g.output[d];
    row /= g.output[d];
  }
}

void next_row(const Geometry& g, int nd, std::int64_t* opos) {
  for (int d = nd - 1; d >= 0; --d) {
    if (++opos[d] < g.output[d]) return;
    opos[d] = 0;
  }
}

// ---- channels_first ----------------------------------------------------------------------------

// Rows: all spatial dims but the last, row-major. Input rows are numbered the same way, and
// each output row lists its (input row, kernel row) pairs.
struct RowPairLists {
  std::int64_t rows = 1, in_rows = 1;
  std::vector<std::int64_t> pair_first, pair_x, pair_w;  // per row: its pairs
  std::vector<std::int64_t> y_off;                       // per row: its offset in a channel of y
  std::vector<std::int64_t> in_off;  // per input row: its offset in a channel of x
  std::size_t bytes() const {
    return (pair_first.size() + pair_x.size() + pair_w.size() + y_off.size() + in_off.size()) *
           sizeof(std::int64_t);
  }
};

template <class T>
RowPairLists row_pair_lists(const Problem<T>& p, const std::vector<std::int64_t>& pitch) {
  const Geometry& g = *p.g;
  const int L = g.rank - 1;
  RowPairLists r;
  std::vector<OuterDim> outer;
  std::vector<std::int64_t> in_pitch(static_cast<std::size_t>(std::max(L, 1)), 1);
  for (int d = L - 2; d >= 0; --d) in_pitch[d] = in_pitch[d + 1] * g.input[d + 1];
  for (int d = 0; d < L; ++d) {
    outer.push_back(outer_dim(
        dim_taps(g.input[d], g.kernel[d], g.stride[d], g.dilation[d], g.pad_lo[d], g.output[d]),
        in_pitch[d], pitch[d]));
    r.rows *= g.output[d];
    r.in_rows *= g.input[d];
  }
  std::int64_t max_pairs = 1;
  for (const OuterDim& d : outer) max_pairs *= d.taps.most;
  r.pair_first.assign(static_cast<std::size_t>(r.rows) + 1, 0);
  r.y_off.resize(static_cast<std::size_t>(r.rows));
  std::vector<std::int64_t> xo(static_cast<std::size_t>(std::max<std::int64_t>(max_pairs, 1))),
      wo(xo.size());
  std::int64_t opos[2] = {0, 0};
  for (std::int64_t row = 0; row < r.rows; ++row, next_row(g, L, opos)) {
    const std::int64_t n = row_pairs(outer, opos, xo.data(), wo.data());
    r.pair_x.insert(r.pair_x.end(), xo.begin(), xo.begin() + n);
    r.pair_w.insert(r.pair_w.end(), wo.begin(), wo.begin() + n);
    r.pair_first[static_cast<std::size_t>(row) + 1] = static_cast<std::int64_t>(r.pair_x.size());
    std::int64_t yo = 0;
    for (int d = 0; d < L; ++d) yo += opos[d] * p.y_strides[static_cast<std::size_t>(d + 2)];
    r.y_off[static_cast<std::size_t>(row)] = yo;
  }
  r.in_off.resize(static_cast<std::size_t>(r.in_rows));
  for (std::int64_t i = 0; i < r.in_rows; ++i) {
    std::int64_t rem = i, off = 0;
    for (int d = L - 1; d >= 0; --d) {
      off += (rem % g.input[d]) * p.x_strides[static_cast<std::size_t>(d + 2)];
      rem /= g.input[d];
    }
    r.in_off[static_cast<std::size_t>(i)] = off;
  }
  return r;
}

// Phases along the row: taps whose input shift can reach the input for some q, and the zero
// halo they need around an input row.
struct RowPhases {
  std::vector<std::int64_t> first, k, c;  // per phase its taps: kernel index, input shift
  std::int64_t halo_lo = 0, halo_hi = 0;
  std::size_t bytes() const { return (first.size() + k.size() + c.size()) * sizeof(std::int64_t); }
};

RowPhases row_phases(const Geometry& g) {
  const int L = g.rank - 1;
  const std::int64_t s = g.stride[L], dil = g.dilation[L], pl = g.pad_lo[L];
  const std::int64_t win = g.input[L], wout = g.output[L];
  const std::int64_t phases = std::min(s, wout);
  RowPhases ph;
  ph.first.assign(static_cast<std::size_t>(phases) + 1, 0);
  // The halo for q in [0, q_end).
  const std::int64_t q_end = ceil_div(wout, s);
  for (std::int64_t r = 0; r < phases; ++r) {
    ph.first[static_cast<std::size_t>(r)] = static_cast<std::int64_t>(ph.k.size());
    const std::int64_t qr = ceil_div(wout - r, s);
    for (std::int64_t k = 0; k < g.kernel[L]; ++k) {
      const std::int64_t num = r + pl - k * dil;
      if (floor_mod(num, s) != 0) continue;
      const std::int64_t c = num / s;
      if (c >= win || c + qr <= 0) continue;
      ph.k.push_back(k);
      ph.c.push_back(c);
      ph.halo_lo = std::max(ph.halo_lo, -c);
      ph.halo_hi = std::max(ph.halo_hi, q_end - 1 + c - (win - 1));
    }
  }
  ph.first[static_cast<std::size_t>(phases)] = static_cast<std::int64_t>(ph.k.size());
  return ph;
}

// The pair kernels' tap shapes along the row (DwRowsCall::pair_kind); sets lo.
int pair_kind(const RowPhases& ph, std::int64_t phases, std::int64_t& lo) {
  if (phases != 2) return 0;
  const std::int64_t* c = ph.c.data();
  const std::int64_t n0 = ph.first[1], n1 = ph.first[2] - ph.first[1];
  if (n0 == 2 && n1 == 2 && c[1] == c[0] - 1 && c[2] == c[0] + 1 && c[3] == c[0]) {
    lo = c[1];
    return 1;
  }
  if (n0 == 1 && n1 == 1 && c[1] == c[0]) {
    lo = c[0];
    return 2;
  }
  return 0;
}

// Whether rows g and g + 1 read the same input rows (1, 2 or 4 of them), in the same order.
bool pair_group(const RowPairLists& r, std::int64_t g) {
  if (g + 1 >= r.rows) return false;
  const std::int64_t e0 = r.pair_first[g], e1 = r.pair_first[g + 1];
  const std::int64_t n = e1 - e0;
  if ((n != 1 && n != 2 && n != 4) || r.pair_first[g + 2] - e1 != n) return false;
  for (std::int64_t i = 0; i < n; ++i)
    if (r.pair_x[e0 + i] != r.pair_x[e1 + i]) return false;
  return true;
}

// Whether group g + 2 has the kernel rows of group g and all its input rows one step `dx`
// further (returned through dx).
bool pair_next(const RowPairLists& r, std::int64_t g, std::int64_t& dx) {
  const std::int64_t a = r.pair_first[g], b = r.pair_first[g + 2];
  const std::int64_t n = r.pair_first[g + 2] - a;
  if (r.pair_first[g + 4] - b != n) return false;
  dx = r.pair_x[b] - r.pair_x[a];
  for (std::int64_t i = 0; i < n; ++i)
    if (r.pair_w[a + i] != r.pair_w[b + i] || r.pair_x[b + i] - r.pair_x[a + i] != dx) return false;
  return true;
}

// DwRowsCall::pair_run, from the last row back: a run extends the one two rows on while the
// groups link with the same advances.
std::vector<std::int64_t> pair_runs(const RowPairLists& r) {
  std::vector<std::int64_t> run(static_cast<std::size_t>(r.rows), 0), dx(run.size(), 0);
  for (std::int64_t g = r.rows - 2; g >= 0; --g) {
    if (!pair_group(r, g)) continue;
    run[g] = 1;
    if (g + 3 >= r.rows || !pair_group(r, g + 2) || !pair_next(r, g, dx[g])) continue;
    const std::int64_t dy = r.y_off[g + 2] - r.y_off[g];
    const bool same =
        run[g + 2] < 2 || (dx[g] == dx[g + 2] && dy == r.y_off[g + 4] - r.y_off[g + 2]);
    if (same) run[g] = 1 + run[g + 2];
  }
  return run;
}

// Blocks of output rows whose input rows fit the buffer: halved until each block's span of
// input rows (returned, at least 1) is within `budget` rows or blocks are single rows.
std::int64_t fit_blocks(const RowPairLists& r, std::int64_t budget, Blocks& blocks,
                        std::vector<std::int64_t>& block_lo, std::vector<std::int64_t>& block_hi) {
  std::int64_t span = 0;
  for (;;) {
    block_lo.assign(static_cast<std::size_t>(blocks.count), r.in_rows);
    block_hi.assign(static_cast<std::size_t>(blocks.count), -1);
    span = 0;
    for (std::int64_t b = 0; b < blocks.count; ++b) {
      const std::int64_t r0 = b * blocks.per, r1 = std::min(r.rows, r0 + blocks.per);
      for (std::int64_t e = r.pair_first[r0]; e < r.pair_first[r1]; ++e) {
        block_lo[b] = std::min(block_lo[b], r.pair_x[e]);
        block_hi[b] = std::max(block_hi[b], r.pair_x[e]);
      }
      span = std::max(span, block_hi[b] - block_lo[b] + 1);
    }
    if (span <= budget || blocks.per == 1) break;
    blocks.per = ceil_div(blocks.per, 2);
    blocks.count = ceil_div(r.rows, blocks.per);
  }
  return std::max<std::int64_t>(span, 1);
}

template <class T>
std::size_t run_cf(const Problem<T>& p, const Packed<T>& pk, DwRowsFn<T> rows_fn, int threads) {
  const Geometry& g = *p.g;
  const int R = g.rank, L = R - 1;
  const std::int64_t C = g.out_channels, mult = g.out_channels / g.groups;
  std::int64_t taps_total = 1;
  for (auto k : g.kernel) taps_total *= k;
  const RowPairLists r = row_pair_lists(p, kernel_pitch(g));
  const RowPhases ph = row_phases(g);
  std::size_t scratch = r.bytes() + ph.bytes();
  const std::int64_t win = g.input[L], wout = g.output[L];
  const std::int64_t row_len = ph.halo_lo + win + ph.halo_hi;

  // Items: (image, channel, block of output rows). A block's input rows are copied into a
  // zero-haloed buffer (halos zeroed once per thread), so the kernel needs no bounds checks and
  // any x strides are accepted. Blocks are cut small enough that the buffer stays in cache.
  Blocks blocks = split(r.rows, g.batch * C, threads);
  std::vector<std::int64_t> block_lo, block_hi;
  const std::int64_t budget = std::max<std::int64_t>(
      1, static_cast<std::int64_t>((std::size_t{256} << 10) / sizeof(T)) / row_len);
  const std::int64_t span = fit_blocks(r, budget, blocks, block_lo, block_hi);
  scratch += 2 * block_lo.size() * sizeof(std::int64_t);
  const std::int64_t items = g.batch * C * blocks.count;
  threads = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, items)));

  std::vector<std::vector<T>> bufs(static_cast<std::size_t>(threads));
  scratch += static_cast<std::size_t>(threads * span * row_len) * sizeof(T);

  const std::int64_t x_last = p.x_strides[static_cast<std::size_t>(R + 1)];
  const std::int64_t y_last = p.y_strides[static_cast<std::size_t>(R + 1)];
  std::int64_t pair_lo = 0;
  const int kind = y_last == 1 && wout / 2 >= 8 ? pair_kind(ph, g.stride[L], pair_lo) : 0;
  const std::vector<std::int64_t> runs =
      kind != 0 ? pair_runs(r) : std::vector<std::int64_t>(static_cast<std::size_t>(r.rows), 0);
  scratch += runs.size() * sizeof(std::int64_t);
  // The scalar kernels run rows one at a time; the others run any row of 1, 2 or 4 pairs on the
  // pair kernels, two at a time in the runs.
  bool any_pairs = false;
  for (std::int64_t row = 0; row < r.rows && kind != 0 && !any_pairs; ++row) {
    const std::int64_t n = r.pair_first[row + 1] - r.pair_first[row];
    any_pairs = n == 1 || n == 2 || n == 4;
  }
  if (any_pairs && rows_fn != rows_scalar<T>) runtime::note_kernel("depthwise_pairs");
  auto body = [&](std::int64_t item, int slot) {
    std::vector<T>& buf = bufs[static_cast<std::size_t>(slot)];
    if (buf.empty()) buf.assign(static_cast<std::size_t>(span * row_len), T(0));
    const std::int64_t blk = item % blocks.count;
    const std::int64_t co = (item / blocks.count) % C;
    const std::int64_t n = item / blocks.count / C;
    const std::int64_t lo = block_lo[blk], hi = block_hi[blk];
    const DwRowsCall<T> call{p.x + n * p.x_strides[0] + (co / mult) * p.x_strides[1],
                             r.in_off.data(),
                             x_last,
                             win,
                             buf.data() + ph.halo_lo,
                             hi - lo + 1,
                             buf.data() + ph.halo_lo,
                             lo,
                             row_len,
                             pk.data.get() + co * taps_total,
                             r.pair_first.data(),
                             r.pair_x.data(),
                             r.pair_w.data(),
                             r.y_off.data(),
                             runs.data(),
                             kind,
                             pair_lo,
                             blk * blocks.per,
                             std::min(r.rows, (blk + 1) * blocks.per),
                             ph.first.data(),
                             ph.k.data(),
                             ph.c.data(),
                             g.stride[L],
                             wout,
                             p.y + n * p.y_strides[0] + co * p.y_strides[1],
                             y_last,
                             p.bias ? p.bias[co] : T(0)};
    rows_fn(call);
  };
  detail::parallel_for(items, threads, body);
  return scratch;
}

// ---- channels_last -----------------------------------------------------------------------------

template <class T>
std::size_t run_cl(const Problem<T>& p, const Packed<T>& pk, DwPixelsFn<T> pixels_fn, int threads) {
  const Geometry& g = *p.g;
  const int R = g.rank, L = R - 1;
  const std::int64_t C = g.out_channels;
  const std::vector<std::int64_t> pitch = kernel_pitch(g);

  // Tap offsets into the packed weights count whole taps of C channels.
  std::vector<OuterDim> outer;
  std::int64_t rows = 1, max_pairs = 1;
  std::size_t scratch = 0;
  for (int d = 0; d < L; ++d) {
    outer.push_back(outer_dim(
        dim_taps(g.input[d], g.kernel[d], g.stride[d], g.dilation[d], g.pad_lo[d], g.output[d]),
        p.x_strides[static_cast<std::size_t>(d + 1)], pitch[d] * C));
    rows *= g.output[d];
    max_pairs *= outer.back().taps.most;
    scratch += 2 * table_bytes(outer.back().taps);
  }
  max_pairs = std::max<std::int64_t>(max_pairs, 1);
  const DimTaps cols =
      dim_taps(g.input[L], g.kernel[L], g.stride[L], g.dilation[L], g.pad_lo[L], g.output[L]);
  std::vector<std::int64_t> col_x(cols.i.size()), col_w(cols.k.size());
  const std::int64_t x_col = p.x_strides[static_cast<std::size_t>(R)];
  for (std::size_t t = 0; t < cols.i.size(); ++t) {
    col_x[t] = cols.i[t] * x_col;
    col_w[t] = cols.k[t] * C;
  }
  scratch += table_bytes(cols) + 2 * col_x.size() * sizeof(std::int64_t);

  // Blocks of pixels along the row as the third item axis (rank 1 has a single row).
  const std::int64_t wout = g.output[L];
  const Blocks pix = split(wout, g.batch * rows, threads);
  const std::int64_t items = g.batch * rows * pix.count;
  threads = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, items)));

  struct Scratch {
    std::vector<std::int64_t> x_off, tap;
  };
  std::vector<Scratch> per(static_cast<std::size_t>(threads));
  scratch += static_cast<std::size_t>(threads * max_pairs) * 2 * sizeof(std::int64_t);

  auto body = [&](std::int64_t item, int slot) {
    Scratch& sc = per[static_cast<std::size_t>(slot)];
    if (sc.x_off.empty()) {
      sc.x_off.resize(static_cast<std::size_t>(max_pairs));
      sc.tap.resize(static_cast<std::size_t>(max_pairs));
    }
    const std::int64_t blk = item % pix.count;
    const std::int64_t row = (item / pix.count) % rows;
    const std::int64_t n = item / pix.count / rows;
    std::int64_t opos[2] = {0, 0};
    row_position(row, g, L, opos);
    std::int64_t y_off = n * p.y_strides[0];
    for (int d = 0; d < L; ++d) y_off += opos[d] * p.y_strides[static_cast<std::size_t>(d + 1)];
    const std::int64_t pairs = row_pairs(outer, opos, sc.x_off.data(), sc.tap.data());
    DwPixelsCall<T> call{p.x + n * p.x_strides[0],
                         sc.x_off.data(),
                         sc.tap.data(),
                         pairs,
                         cols.first.data(),
                         col_x.data(),
                         col_w.data(),
                         pk.data.get(),
                         p.bias,
                         C,
                         blk * pix.per,
                         std::min(wout, (blk + 1) * pix.per),
                         p.y + y_off,
                         p.y_strides[static_cast<std::size_t>(R)]};
    pixels_fn(call);
  };
  detail::parallel_for(items, threads, body);
  return scratch;
}

// An upper bound on the scratch run() takes on `threads` threads, from the geometry alone: the
// tap tables list every (output, tap) pair of a dim, which is at most in * kernel and at most
// out * ceil(kernel / stride) pairs, and grows with the kernel (a 1024-tap kernel along a
// 30000-row outer dim: half a gigabyte of tables).
double scratch_bound(const Geometry& g, std::size_t elem, int threads) {
  constexpr double kWord = sizeof(std::int64_t);
  const int L = g.rank - 1;
  double tables = 0, rows = 1, pairs = 1, in_rows = 1;
  auto dim_pairs = [&](int d) {
    const double k = static_cast<double>(g.kernel[d]);
    const double per_out = std::ceil(k / static_cast<double>(g.stride[d]));
    return std::min(static_cast<double>(g.input[d]) * k,
                    static_cast<double>(g.output[d]) * per_out);
  };
  for (int d = 0; d < L; ++d) {
    const double t = dim_pairs(d);
    tables += (static_cast<double>(g.output[d]) + 1 + 4 * t) * kWord;
    rows *= static_cast<double>(g.output[d]);
    in_rows *= static_cast<double>(g.input[d]);
    pairs *=
        std::min(t, std::ceil(static_cast<double>(g.kernel[d]) / static_cast<double>(g.stride[d])) *
                        static_cast<double>(g.output[d]));
  }
  const double k = static_cast<double>(g.kernel[L]);
  const double reach = k * static_cast<double>(g.dilation[L]) / static_cast<double>(g.stride[L]);
  if (g.data_format == DataFormat::channels_first) {
    // Pair, offset and run tables per output row, tap lists along the row, and per thread a
    // zero-haloed copy of input rows (at least one whole row).
    const double row_len =
        static_cast<double>(std::max(g.input[L], g.output[L] / g.stride[L] + 1)) + 2 * reach + 2;
    tables += (3 * rows + 2 * pairs + in_rows + 2 * k + 8) * kWord;
    // A block is at least one output row, whose input rows span, in row-major order, up to
    // (reach - 1) * pitch + 1 rows (a tall kernel over a few input rows: all of them).
    double span = 1, pitch = 1;
    for (int d = L - 1; d >= 0; --d) {
      const double reach_d =
          std::floor(static_cast<double>(g.kernel[d] - 1) * static_cast<double>(g.dilation[d]) /
                     static_cast<double>(g.stride[d])) +
          1;
      span += (std::min(static_cast<double>(g.input[d]), reach_d) - 1) * pitch;
      pitch *= static_cast<double>(g.input[d]);
    }
    tables += threads * std::max(256.0 * 1024, span * row_len * static_cast<double>(elem));
  } else {
    tables += (static_cast<double>(g.output[L]) + 1 + 4 * dim_pairs(L)) * kWord;
    double most = 1;
    for (int d = 0; d < L; ++d)
      most *= std::ceil(static_cast<double>(g.kernel[d]) / static_cast<double>(g.stride[d]));
    tables += threads * 2 * most * kWord;
  }
  return tables;
}

}  // namespace

template <class T>
bool Packed<T>::matches(const Geometry& g) const {
  return g.data_format == data_format && g.kernel == kernel && g.out_channels == channels;
}

template <class T>
bool applies(const Problem<T>& p, int threads) {
  const Geometry& g = *p.g;
  if (g.rank < 1 || g.rank > 3 || g.groups < 1 || g.in_channels != g.groups) return false;
  // Tap lists are built per phase and kernel tap: keep their cost in proportion to the layer
  // (absurd kernels, strides or dilations found by fuzzing go elsewhere). The per-output tables
  // are bounded by their size below.
  for (int d = 0; d < g.rank; ++d) {
    const double k = static_cast<double>(g.kernel[d]);
    const double out = static_cast<double>(g.output[d]);
    if (k * std::min<double>(static_cast<double>(g.stride[d]), out) > 16777216.0) return false;
    if (g.stride[d] > (std::int64_t{1} << 40) || g.dilation[d] > (std::int64_t{1} << 40))
      return false;
  }
  // Tables in proportion to the output: long kernels go to the phase driver, whose memory
  // does not grow with the output length times the kernel.
  const double budget = detail::scratch_budget(detail::output_bytes(g, sizeof(T)));
  if (scratch_bound(g, sizeof(T), threads) > budget) return false;
  if (g.data_format == DataFormat::channels_first) return true;
  const std::size_t c_axis = static_cast<std::size_t>(g.rank + 1);
  return g.out_channels == g.groups && p.x_strides[c_axis] == 1 && p.y_strides[c_axis] == 1;
}

template <class T>
Packed<T> pack(const Geometry& g, const T* w, const std::vector<std::int64_t>& ws) {
  Packed<T> pk;
  pk.data_format = g.data_format;
  pk.kernel = g.kernel;
  pk.channels = g.out_channels;
  const int R = g.rank;
  std::int64_t taps = 1;
  for (auto k : g.kernel) taps *= k;
  pk.size = static_cast<std::size_t>(taps * g.out_channels);
  pk.data = detail::make_buffer<T>(std::max<std::size_t>(pk.size, 1),
                                   "the depthwise weights packed for the kernels",
                                   detail::kWeightsAdvice);
  const bool cf = g.data_format == DataFormat::channels_first;
  const std::int64_t mult = g.out_channels / g.groups;
  // Each tap's offset along the kernel axes, row-major: the loops below then divide once per
  // channel rather than once per weight (a functional call packs on every call).
  std::vector<std::int64_t> tap_off(static_cast<std::size_t>(taps), 0);
  std::vector<std::int64_t> kidx(static_cast<std::size_t>(R), 0);
  for (std::int64_t t = 0; t < taps; ++t) {
    for (int d = 0; d < R; ++d)
      tap_off[t] += kidx[d] * ws[static_cast<std::size_t>(cf ? d + 2 : d)];
    for (int d = R - 1; d >= 0; --d) {
      if (++kidx[d] < g.kernel[d]) break;
      kidx[d] = 0;
    }
  }
  T* dst = pk.data.get();
  if (cf) {
    for (std::int64_t co = 0; co < g.out_channels; ++co) {
      const T* src = w + (co / mult) * ws[0] + (co % mult) * ws[1];
      for (std::int64_t t = 0; t < taps; ++t) dst[co * taps + t] = src[tap_off[t]];
    }
  } else {
    const std::int64_t s_co = ws[static_cast<std::size_t>(R + 1)];
    for (std::int64_t t = 0; t < taps; ++t) {
      const T* src = w + tap_off[t];
      for (std::int64_t co = 0; co < g.out_channels; ++co)
        dst[t * g.out_channels + co] = src[co * s_co];
    }
  }
  return pk;
}

template <class T>
DwRowsFn<T> portable_rows() {
  return rows_scalar<T>;
}
template <class T>
DwPixelsFn<T> portable_pixels() {
  return pixels_scalar<T>;
}

template <class T>
std::size_t run(const Problem<T>& p, const Packed<T>& packed, DwRowsFn<T> rows,
                DwPixelsFn<T> pixels, int threads) {
  runtime::note_kernel("depthwise");
  return p.g->data_format == DataFormat::channels_first ? run_cf(p, packed, rows, threads)
                                                        : run_cl(p, packed, pixels, threads);
}

template struct Packed<float>;
template struct Packed<double>;
template bool applies(const Problem<float>&, int);
template bool applies(const Problem<double>&, int);
template Packed<float> pack(const Geometry&, const float*, const std::vector<std::int64_t>&);
template Packed<double> pack(const Geometry&, const double*, const std::vector<std::int64_t>&);
template DwRowsFn<float> portable_rows();
template DwRowsFn<double> portable_rows();
template DwPixelsFn<float> portable_pixels();
template DwPixelsFn<double> portable_pixels();
template std::size_t run(const Problem<float>&, const Packed<float>&, DwRowsFn<float>,
                         DwPixelsFn<float>, int);
template std::size_t run(const Problem<double>&, const Packed<double>&, DwRowsFn<double>,
                         DwPixelsFn<double>, int);

}  // namespace tconv::kernels::depthwise
