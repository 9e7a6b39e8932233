#include "kernels/direct.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "buffer.hpp"
#include "kernels/phase.hpp"
#include "kernels/weight_blocks.hpp"
#include "runtime.hpp"
#include "threadpool.hpp"

namespace tconv::kernels::direct {
namespace {

constexpr int kMaxRank = 9;

// The layer's operands as the driver reads them (strides in elements).
struct Layout {
  int rank = 0;
  std::int64_t cin_g = 0, cout_g = 0, taps = 1, cols = 0;  // cols: N = cout_g * taps
  std::int64_t cells = 1;                                  // input cells per image (M)
  std::int64_t x_n = 0, x_c = 0, x_m = 0;                  // x: image, channel, cell
  std::int64_t w_ci = 0, w_co = 0;                         // weights: input, output channel
  std::int64_t w_k[kMaxRank] = {0};                        // weights: each kernel dim
  std::int64_t y_n = 0, y_c = 0, y_sp[kMaxRank] = {0};     // y: image, channel, spatial
  bool dense_cols = true;  // the (output channel, tap) columns one run per input channel
};

template <class T>
bool layout(const Problem<T>& p, Layout* l) {
  const Geometry& g = *p.g;
  if (g.rank < 1 || g.rank > kMaxRank) return false;
  const int r = g.rank;
  const bool first = g.data_format == DataFormat::channels_first;
  const int x_c = first ? 1 : r + 1, sp = first ? 2 : 1;
  const int w_ci = first ? 0 : r + 1, w_co = first ? 1 : r, w_k = first ? 2 : 0;
  l->rank = r;
  l->cin_g = g.in_channels / g.groups;
  l->cout_g = g.out_channels / g.groups;
  // Whether the columns, (output channel, tap) row-major, are one run per input channel.
  for (int d = r - 1; d >= 0; --d) {
    if (g.kernel[d] > 1 && p.w_strides[w_k + d] != l->taps) l->dense_cols = false;
    l->w_k[d] = p.w_strides[w_k + d];
    l->taps *= g.kernel[d];
  }
  if (l->cout_g > 1 && p.w_strides[w_co] != l->taps) l->dense_cols = false;
  l->w_co = p.w_strides[w_co];
  l->cols = l->cout_g * l->taps;
  // The input cells: one stride across every spatial dim (size-1 dims aside).
  std::int64_t step = 0;
  for (int d = r - 1; d >= 0; --d) {
    if (g.input[d] == 1) continue;
    if (step == 0) step = p.x_strides[sp + d];
    if (p.x_strides[sp + d] != step * l->cells) return false;
    l->cells *= g.input[d];
  }
  for (int d = 0; d < r; ++d) l->y_sp[d] = p.y_strides[sp + d];
  l->x_n = p.x_strides[0];
  l->x_c = p.x_strides[x_c];
  l->x_m = step;
  l->w_ci = p.w_strides[w_ci];
  l->y_n = p.y_strides[0];
  l->y_c = p.y_strides[x_c];
  return true;
}

// y's cells of output channel `co` of image `n`, every one set to `value`.
template <class T>
void fill_channel(const Geometry& g, const Layout& l, T* y, T value) {
  const int last = l.rank - 1;
  std::int64_t outer = 1;
  for (int d = 0; d < last; ++d) outer *= g.output[d];
  for (std::int64_t o = 0; o < outer; ++o) {
    T* row = y;
    for (std::int64_t d = last - 1, rem = o; d >= 0; --d) {
      row += rem % g.output[d] * l.y_sp[d];
      rem /= g.output[d];
    }
    for (std::int64_t i = 0; i < g.output[last]; ++i) row[i * l.y_sp[last]] = value;
  }
}

// Output channels [co0, co1) of every image set to their bias (or zero).
template <class T>
void fill_channels(const Problem<T>& p, const Layout& l, std::int64_t co0, std::int64_t co1) {
  for (std::int64_t n = 0; n < p.g->batch; ++n)
    for (std::int64_t co = co0; co < co1; ++co)
      fill_channel(*p.g, l, p.y + n * l.y_n + co * l.y_c, p.bias ? p.bias[co] : T(0));
}

// A panel's columns in runs: the taps of the last dim of one (output channel, outer taps),
// consecutive columns whose outputs for one input cell are consecutive too (dilation apart).
// Per run: its y offset (output channel), per outer dim its shift tap * dilation - pad_lo, and
// its last-dim taps [k0, k1) (a run may be cut by the panel's edges) from panel column `col`
// (the column of tap 0, possibly outside the panel).
struct Runs {
  std::int64_t count = 0;
  std::int64_t y_off[64], k0[64], k1[64], col[64];
  std::int64_t shift[64][kMaxRank];
};

Runs panel_runs(const Geometry& g, const Layout& l, std::int64_t gi, std::int64_t j0,
                std::int64_t n_cols) {
  Runs r;
  const std::int64_t kl = g.kernel[l.rank - 1];
  for (std::int64_t j = j0; j < j0 + n_cols; j = (j / kl + 1) * kl) {
    const std::int64_t e = r.count++, co = j / l.taps, start = j / kl * kl;
    r.y_off[e] = (gi * l.cout_g + co) * l.y_c;
    r.k0[e] = j - start;
    r.k1[e] = std::min(j0 + n_cols, start + kl) - start;
    r.col[e] = start - j0;
    for (std::int64_t d = l.rank - 2, t = j % l.taps / kl; d >= 0; --d) {
      r.shift[e][d] = t % g.kernel[d] * g.dilation[d] - g.pad_lo[d];
      t /= g.kernel[d];
    }
  }
  return r;
}

template <class T, int N>
void add_fixed(T* __restrict y, const T* __restrict c) {
  for (int k = 0; k < N; ++k) y[k] += c[k];
}

// y[k * step] += c[k] for k < count; unit steps of the usual kernel widths as whole vectors.
template <class T>
void add_run(T* __restrict y, const T* __restrict c, std::int64_t count, std::int64_t step) {
  if (step != 1) {
    for (std::int64_t k = 0; k < count; ++k) y[k * step] += c[k];
    return;
  }
  switch (count) {
    case 2:
      return add_fixed<T, 2>(y, c);
    case 3:
      return add_fixed<T, 3>(y, c);
    case 4:
      return add_fixed<T, 4>(y, c);
    case 8:
      return add_fixed<T, 8>(y, c);
    case 16:
      return add_fixed<T, 16>(y, c);
    default:
      for (std::int64_t k = 0; k < count; ++k) y[k] += c[k];
  }
}

// Adds C (cells [m0, m1) of one image, a panel's columns) into y: per stretch of cells along
// the last dim, per run of the panel, per cell, the run's taps that land inside y.
template <class T>
void scatter(const Geometry& g, const Layout& l, const Runs& runs, const T* c, std::int64_t c_ms,
             T* y, std::int64_t m0, std::int64_t m1) {
  const int last = l.rank - 1;
  const std::int64_t len_in = g.input[last], out = g.output[last], s = g.stride[last];
  const std::int64_t dil = g.dilation[last], pad = g.pad_lo[last], kl = g.kernel[last];
  const std::int64_t ys = l.y_sp[last], step = dil * ys;
  const std::int64_t apart = ((kl - 1) * dil + s) / s;  // ceil(dilated kernel / stride)
  for (std::int64_t m = m0; m < m1;) {
    const std::int64_t i0 = m % len_in, len = std::min(len_in - i0, m1 - m);
    std::int64_t idx[kMaxRank] = {0};
    for (std::int64_t d = last - 1, rem = m / len_in; d >= 0; --d) {
      idx[d] = rem % g.input[d];
      rem /= g.input[d];
    }
    for (std::int64_t e = 0; e < runs.count; ++e) {
      std::int64_t off = runs.y_off[e];
      bool inside = true;
      for (int d = 0; d < last && inside; ++d) {
        const std::int64_t o = idx[d] * g.stride[d] + runs.shift[e][d];
        inside = o >= 0 && o < g.output[d];
        off += o * l.y_sp[d];
      }
      if (!inside) continue;
      // Cells `apart` apart add into disjoint outputs: visited in that order, no add waits
      // for the store of the one before (overlapping vectors defeat store forwarding).
      const T* crow = c + (m - m0) * c_ms + runs.col[e];  // cell i0, tap 0
      for (std::int64_t r = i0; r < std::min(i0 + apart, i0 + len); ++r) {
        for (std::int64_t i = r; i < i0 + len; i += apart) {
          // Output of tap 0 at o0; taps k with 0 <= o0 + k * dil < out land inside y.
          const std::int64_t o0 = i * s - pad;
          std::int64_t k0 = runs.k0[e], k1 = runs.k1[e];
          if (o0 < 0 || o0 + (kl - 1) * dil >= out) {
            while (k0 < k1 && o0 + k0 * dil < 0) ++k0;
            while (k1 > k0 && o0 + (k1 - 1) * dil >= out) --k1;
          }
          if (k1 > k0)
            add_run(y + off + (o0 + k0 * dil) * ys, crow + (i - i0) * c_ms + k0, k1 - k0, step);
        }
      }
    }
    m += len;
  }
}

struct Shape {
  std::int64_t nr, chunks;
  std::int64_t block;  // panels per block of weights copied at once (see copy_block)
};

// One panel: columns [j0, j0 + n_cols) of group gi, every image, in chunks of cells. `c` holds
// a chunk's C, `panel` the panel's weights (see copy_block).
template <class T>
void run_panel(const Problem<T>& p, const KernelSet<T>& ks, const Layout& l, const Shape& sh,
               std::int64_t gi, std::int64_t j0, std::int64_t n_cols, const T* panel, T* c) {
  const Geometry& g = *p.g;
  const std::int64_t K = l.cin_g;
  const Runs runs = panel_runs(g, l, gi, j0, n_cols);
  const std::int64_t zero = 0;
  GemmCall<T> call{};
  call.a_off = &zero;
  call.b = panel;
  call.b_off = &zero;
  call.pairs = 1;
  call.k = K;
  call.a_ks = l.x_c;
  call.a_ms = l.x_m;
  call.b_ld = sh.nr;
  call.c = c;
  call.c_ms = sh.nr;
  call.c_ns = 1;
  call.n = n_cols;
  call.bias = nullptr;
  for (std::int64_t n = 0; n < g.batch; ++n) {
    const T* x = p.x + n * l.x_n + gi * K * l.x_c;
    T* y = p.y + n * l.y_n;
    for (std::int64_t q = 0; q < sh.chunks; ++q) {
      const std::int64_t m0 = l.cells * q / sh.chunks, m1 = l.cells * (q + 1) / sh.chunks;
      call.a = x + m0 * l.x_m;
      call.m = m1 - m0;
      ks.channel_gemm(call);
      scatter(g, l, runs, c, sh.nr, y, m0, m1);
    }
  }
}

// ---- the cells path: the weights read in place by the cell kernel ------------------------------

// Adds C (one image; columns [j0, j0 + cols) of group gi, column j at c + (j - j0) * c_ns, its
// cells contiguous) into y: per column, per line of cells along the last dim, the cells whose
// output lands inside y.
template <class T>
void scatter_columns(const Geometry& g, const Layout& l, std::int64_t gi, std::int64_t j0,
                     std::int64_t cols, const T* c, std::int64_t c_ns, T* y) {
  const int last = l.rank - 1;
  const std::int64_t len = g.input[last], s = g.stride[last], out = g.output[last];
  const std::int64_t ys = l.y_sp[last], lines = l.cells / len;
  for (std::int64_t j = j0; j < j0 + cols; ++j) {
    std::int64_t shift[kMaxRank];
    for (std::int64_t d = last, t = j % l.taps; d >= 0; --d) {
      shift[d] = t % g.kernel[d] * g.dilation[d] - g.pad_lo[d];
      t /= g.kernel[d];
    }
    // The cells i of a line with 0 <= i * s + shift < out.
    const std::int64_t sh = shift[last];
    const std::int64_t lo = sh >= 0 ? 0 : (-sh + s - 1) / s;
    const std::int64_t hi = out - 1 - sh < 0 ? 0 : std::min(len, (out - 1 - sh) / s + 1);
    if (lo >= hi) continue;
    T* y_co = y + (gi * l.cout_g + j / l.taps) * l.y_c;
    const T* cj = c + (j - j0) * c_ns;
    std::int64_t idx[kMaxRank] = {0};  // the line's index over the outer dims
    for (std::int64_t line = 0; line < lines; ++line) {
      std::int64_t off = 0;
      bool inside = true;
      for (int d = 0; d < last && inside; ++d) {
        const std::int64_t o = idx[d] * g.stride[d] + shift[d];
        inside = o >= 0 && o < g.output[d];
        off += o * l.y_sp[d];
      }
      if (inside) {
        T* row = y_co + off + sh * ys;
        const T* cl = cj + line * len;
        for (std::int64_t i = lo; i < hi; ++i) row[i * s * ys] += cl[i];
      }
      for (int d = last - 1; d >= 0 && ++idx[d] == g.input[d]; --d) idx[d] = 0;
    }
  }
}

// The cell kernel's call over one image's cells, every input channel of a group, into C at c
// (column-major, a column per `cells` values).
template <class T>
GemmCall<T> cell_call(const Layout& l, T* c) {
  GemmCall<T> call{};
  call.k = l.cin_g;
  call.a_ks = l.x_c;
  call.a_ms = 1;
  call.b_ld = l.w_ci;
  call.c = c;
  call.c_ms = 1;
  call.c_ns = l.cells;
  call.m = l.cells;
  return call;
}

// The layer with the cell kernel: per item (whole output channels), per chunk of columns whose
// C stays in L1, per image, one cell_gemm over every cell and a scatter_columns. Nothing is
// copied. Returns the scratch bytes, or phase::kDeclined.
template <class T>
std::size_t run_cells(const Problem<T>& p, const KernelSet<T>& ks, const Layout& l, int threads) {
  const Geometry& g = *p.g;
  // 12 KiB of C per thread: in L1, and on two threads under a tenth of DCGAN 512 -> 256's
  // 256 KiB output at 8x8 (16 KiB ran no faster).
  const std::int64_t chunk =
      std::max<std::int64_t>(1, (12 << 10) / std::int64_t(sizeof(T)) / l.cells);
  const std::int64_t unit = std::max<std::int64_t>(1, 128 / l.taps);  // output channels per item
  const std::int64_t per_group = (l.cout_g + unit - 1) / unit, items = g.groups * per_group;
  threads = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, items)));
  const std::size_t per_slot = static_cast<std::size_t>(chunk * l.cells);
  if (static_cast<double>(per_slot * threads * sizeof(T)) >
      detail::scratch_budget(detail::output_bytes(g, sizeof(T))))
    return phase::kDeclined;
  std::vector<T> scratch;
  detail::resize_or_throw(scratch, per_slot * static_cast<std::size_t>(threads),
                          "the direct driver's columns");
  const std::int64_t zero = 0;
  auto body = [&](std::int64_t item, int slot) {
    const std::int64_t gi = item / per_group, c0 = item % per_group * unit;
    const std::int64_t c1 = std::min(l.cout_g, c0 + unit);
    fill_channels(p, l, gi * l.cout_g + c0, gi * l.cout_g + c1);
    T* c = scratch.data() + static_cast<std::size_t>(slot) * per_slot;
    GemmCall<T> call = cell_call(l, c);
    call.a_off = &zero;
    call.b_off = &zero;
    call.pairs = 1;
    for (std::int64_t j = c0 * l.taps; j < c1 * l.taps; j += chunk) {
      call.n = std::min(chunk, c1 * l.taps - j);
      call.b = p.w + gi * l.cin_g * l.w_ci + j;
      for (std::int64_t n = 0; n < g.batch; ++n) {
        call.a = p.x + n * l.x_n + gi * l.cin_g * l.x_c;
        ks.cell_gemm(call);
        scatter_columns(g, l, gi, j, call.n, c, l.cells, p.y + n * l.y_n);
      }
    }
  };
  detail::parallel_for(items, threads, body, detail::Schedule::runs);
  return scratch.capacity() * sizeof(T);
}

// ---- the phases path: each output's taps summed in the cell kernel ------------------------------
//
// Where every output dim is stride x input, output o = s * q + r of residue r (a phase) lies on
// a grid of the input's shape: q runs over the input cells. A phase's taps read the input in
// place at their shift c (cell q + c), the lanes that fall outside it masked. So a phase is one
// cell GEMM whose pairs are its taps, C [output channel][cell]: each output is written once with
// its bias, and no col2im adds C into y.

// Per phase (row-major over the residues) its pairs [first[ph], first[ph + 1]); per pair the
// input shift in cells, the tap's offset in a weight row, and per vector of cells the lanes
// inside the input; per phase the y offset of its output q = 0.
struct PhasePairs {
  std::vector<std::int64_t> first, a_off, b_off, y_off;
  std::vector<std::uint16_t> lanes;
};

// Output channels per group for which the phases path runs any number of cells (see
// narrow_cols): fewer go to the grid kernel.
constexpr std::int64_t kNarrowColsMin = 5, kNarrowColsMax = 12;

// Input channels per group below which weights that are not dense per input channel (Keras's
// layout: the kernel reads each (tap, column) along the input channels) go to the pack instead:
// grouped layers of 64 and 8 per group ran 1.18x and 1.61x the pack's time, of 128 and 512
// 0.91x and 0.80x (their cells in channels_last data, copied).
constexpr std::int64_t kAlongChannelsMin = 128;

// Whether the phases path takes the layer's shape: every output dim stride x input, weights
// dense per input channel or long enough runs along it (cells that are not one element apart
// are copied so, see run_phases_copied).
template <class T>
bool phases_shape(const Geometry& g, const Layout& l, const KernelSet<T>& ks) {
  if (ks.cell_gemm == nullptr || (!l.dense_cols && l.cin_g < kAlongChannelsMin)) return false;
  for (int d = 0; d < g.rank; ++d)
    if (g.output[d] != g.stride[d] * g.input[d]) return false;
  return true;
}

// A few output channels per group (the layer's or its groups'): a packed panel would run most of
// its lanes on zero columns, where the cells fill the phases path's lanes; any number of cells.
bool narrow_cols(const Layout& l) {
  return l.cout_g >= kNarrowColsMin && l.cout_g <= kNarrowColsMax;
}

// Whether the phases path takes the layer (see by_phases).
template <class T>
bool phases_take(const Geometry& g, const Layout& l, const KernelSet<T>& ks) {
  return phases_shape(g, l, ks) && (l.cells <= ks.cell_mr || narrow_cols(l));
}

// Appends one pair's lane table: per vector of `lanes` cells the bits of the cells whose cell +
// shift lies inside the input. Per line along the last dim whose other dims fall inside, the
// cells inside are one run.
void inside_lanes(const Geometry& g, std::int64_t cells, std::int64_t lanes,
                  const std::int64_t* shift, std::vector<std::uint16_t>* out) {
  const int last = g.rank - 1;
  const std::int64_t len = g.input[last], vecs = (cells + lanes - 1) / lanes;
  const std::size_t base = out->size();
  out->resize(base + static_cast<std::size_t>(vecs), 0);
  std::uint16_t* bits = out->data() + base;
  const std::int64_t lo = std::clamp<std::int64_t>(-shift[last], 0, len);
  const std::int64_t hi = std::clamp<std::int64_t>(len - shift[last], lo, len);
  for (std::int64_t line = 0; line < cells / len; ++line) {
    bool inside = true;
    for (std::int64_t d = last - 1, rem = line; d >= 0 && inside; --d) {
      const std::int64_t at = rem % g.input[d] + shift[d];
      rem /= g.input[d];
      inside = at >= 0 && at < g.input[d];
    }
    for (std::int64_t m = line * len + lo, end = line * len + hi; inside && m < end;) {
      const std::int64_t v = m / lanes, e = std::min(end, (v + 1) * lanes);
      const unsigned upto = (1u << (e - v * lanes)) - 1u, below = (1u << (m - v * lanes)) - 1u;
      bits[v] = static_cast<std::uint16_t>(bits[v] | (upto & ~below));
      m = e;
    }
  }
}

PhasePairs phase_pairs(const Geometry& g, const Layout& l, std::int64_t lanes) {
  const int r = g.rank;
  std::vector<phase::DimPhases> dims;
  std::int64_t phases = 1;
  for (int d = 0; d < r; ++d) {
    dims.push_back(phase::dim_phases(g.kernel[d], g.stride[d], g.dilation[d], g.pad_lo[d]));
    phases *= g.stride[d];
  }
  PhasePairs pp;
  for (std::int64_t ph = 0; ph < phases; ++ph) {
    std::int64_t res[kMaxRank], y_off = 0;
    for (std::int64_t d = r - 1, rem = ph; d >= 0; --d) {
      res[d] = rem % g.stride[d];
      rem /= g.stride[d];
      y_off += res[d] * l.y_sp[d];
    }
    pp.first.push_back(static_cast<std::int64_t>(pp.a_off.size()));
    pp.y_off.push_back(y_off);
    // The phase's taps: every combination of each dim's taps for its residue.
    std::int64_t count = 1, pick[kMaxRank] = {0};
    for (int d = 0; d < r; ++d) count *= static_cast<std::int64_t>(dims[d].k[res[d]].size());
    for (std::int64_t t = 0; t < count; ++t) {
      std::int64_t shift[kMaxRank], a_off = 0, b_off = 0;
      for (std::int64_t d = r - 1, rem = t; d >= 0; --d) {
        const auto n = static_cast<std::int64_t>(dims[d].k[res[d]].size());
        pick[d] = rem % n;
        rem /= n;
      }
      std::int64_t cells_per = 1;
      for (int d = r - 1; d >= 0; --d) {
        shift[d] = dims[d].c[res[d]][pick[d]];
        a_off += shift[d] * cells_per;
        b_off += dims[d].k[res[d]][pick[d]] * l.w_k[d];
        cells_per *= g.input[d];
      }
      pp.a_off.push_back(a_off);
      pp.b_off.push_back(b_off);
      inside_lanes(g, l.cells, lanes, shift, &pp.lanes);
    }
  }
  pp.first.push_back(static_cast<std::int64_t>(pp.a_off.size()));
  return pp;
}

// One line of outputs from the C lines of the last dim's s phases (phase r at c[r * c_ss]):
// y[(i * s + r) * step] = c_r[i]. Two phases into a contiguous row interleave (vectorised).
template <class T>
void store_line(const T* __restrict c, std::int64_t c_ss, std::int64_t s, std::int64_t len,
                T* __restrict y, std::int64_t step) {
  if (s == 2 && step == 1) {
    const T* c1 = c + c_ss;
    for (std::int64_t i = 0; i < len; ++i) {
      y[2 * i] = c[i];
      y[2 * i + 1] = c1[i];
    }
    return;
  }
  for (std::int64_t r = 0; r < s; ++r)
    for (std::int64_t i = 0; i < len; ++i) y[(i * s + r) * step] = c[r * c_ss + i];
}

// The lines of cells [m0, m0 + m) along the last dim: per line its first cell (from m0), its
// cells, and the y offset of the output of its first cell in phase 0. Found once per call of
// store_phases: a division per dim for every line of every column took 13 % of the grouped
// 512 g8 up-block's call (lines of 8 cells).
struct Lines {
  std::vector<std::int64_t> first, count, y_off;
};

void chunk_lines(const Geometry& g, const Layout& l, std::int64_t m0, std::int64_t m, Lines& out) {
  const int last = l.rank - 1;
  const std::int64_t s = g.stride[last], len = g.input[last], step = l.y_sp[last];
  out.first.clear();
  out.count.clear();
  out.y_off.clear();
  for (std::int64_t cell = m0, run = 0; cell < m0 + m; cell += run) {
    const std::int64_t i = cell % len;
    run = std::min(len - i, m0 + m - cell);
    std::int64_t off = i * s * step;
    for (std::int64_t d = last - 1, rem = cell / len; d >= 0; --d) {
      off += rem % g.input[d] * g.stride[d] * l.y_sp[d];
      rem /= g.input[d];
    }
    out.first.push_back(cell - m0);
    out.count.push_back(run);
    out.y_off.push_back(off);
  }
}

// C (cells [m0, m0 + m) of one image; per phase ph at c + ph * c_ss, column j at + j * c_ns:
// output channels from y_co on) into y, the last dim's phases of a line together. `lines`:
// the calling thread's, reused.
template <class T>
void store_phases(const Geometry& g, const Layout& l, const PhasePairs& pp, const T* c,
                  std::int64_t c_ss, std::int64_t c_ns, std::int64_t cols, std::int64_t m0,
                  std::int64_t m, T* y_co, Lines& lines) {
  const int last = l.rank - 1;
  const std::int64_t s = g.stride[last], step = l.y_sp[last];
  const auto outer = static_cast<std::int64_t>(pp.y_off.size()) / s;
  chunk_lines(g, l, m0, m, lines);
  const auto n_lines = static_cast<std::int64_t>(lines.first.size());
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t j = 0; j < cols; ++j) {
      const T* cj = c + o * s * c_ss + j * c_ns;
      T* y = y_co + pp.y_off[o * s] + j * l.y_c;
      for (std::int64_t k = 0; k < n_lines; ++k)
        store_line(cj + lines.first[k], c_ss, s, lines.count[k], y + lines.y_off[k], step);
    }
}

// Cells per cell_gemm call: every cell of an image, or, past one tile, chunks that start on a
// lane vector (where the lane table's rows do) and keep every phase of `fit` cells' C (at least
// a tile's).
std::int64_t phases_chunk(const Layout& l, std::int64_t tile, std::int64_t lanes,
                          std::int64_t fit) {
  if (l.cells <= tile || fit >= l.cells) return l.cells;
  return std::min(l.cells, std::max(fit / lanes, (tile + lanes - 1) / lanes) * lanes);
}

// The layer by phases: per item (output channels of a group, a chunk of cells, an image), one
// cell_gemm over every phase and a store_phases. `held`: scratch bytes the caller holds for
// it (a copy of the input), counted against the bound and in the result. Returns the scratch
// bytes, or phase::kDeclined.
template <class T>
std::size_t run_phases(const Problem<T>& p, const KernelSet<T>& ks, const Layout& l, int threads,
                       std::size_t held = 0) {
  const Geometry& g = *p.g;
  const std::int64_t lanes = ks.cell_lanes, vecs = (l.cells + lanes - 1) / lanes;
  // Every phase's C within about 64 KiB per thread (wider items ran faster), all threads' within
  // about a twelfth of the output: a whole group's columns over chunks of cells, or columns of
  // every cell.
  std::int64_t phases = 1;
  for (int d = 0; d < g.rank; ++d) phases *= g.stride[d];
  const double c_bytes =
      std::min(64.0 * 1024, detail::output_bytes(g, sizeof(T)) / (12.0 * threads));
  const std::int64_t c_values = static_cast<std::int64_t>(c_bytes) / std::int64_t(sizeof(T));
  const bool chunked = l.cells > ks.cell_mr;
  const std::int64_t chunk = phases_chunk(l, ks.cell_mr, lanes, c_values / (l.cout_g * phases));
  const std::int64_t most =
      chunked ? l.cout_g : std::max<std::int64_t>(1, c_values / (chunk * phases));
  const std::int64_t unit = item_columns(l.cout_g, most, ks.cell_nr);
  const std::int64_t per_group = (l.cout_g + unit - 1) / unit,
                     chunks = (l.cells + chunk - 1) / chunk;
  const std::int64_t items = g.groups * per_group * chunks * g.batch;
  threads = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, items)));
  const std::size_t per_slot = static_cast<std::size_t>(unit * chunk * phases);
  // Every tap is a pair of exactly one phase; a chunk's lines (store_phases) per thread.
  const double tables = static_cast<double>(l.taps) * (16.0 + 2.0 * static_cast<double>(vecs)) +
                        24.0 * threads * static_cast<double>(chunk / g.input[g.rank - 1] + 2);
  if (static_cast<double>(per_slot * threads * sizeof(T) + held) + tables >
      detail::scratch_budget(detail::output_bytes(g, sizeof(T))))
    return phase::kDeclined;
  const PhasePairs pp = phase_pairs(g, l, lanes);
  std::vector<T> scratch;
  detail::resize_or_throw(scratch, per_slot * static_cast<std::size_t>(threads),
                          "the direct driver's columns");
  std::vector<Lines> lines(static_cast<std::size_t>(threads));
  // An item: output channels of a group over one chunk of cells of one image (the images of a
  // chunk in a row: a thread's run of items reads the same weights).
  auto body = [&](std::int64_t item, int slot) {
    const std::int64_t n = item % g.batch, part = item / g.batch;
    const std::int64_t gi = part / chunks / per_group, c0 = part / chunks % per_group * unit;
    const std::int64_t cols = std::min(l.cout_g, c0 + unit) - c0;
    const std::int64_t m0 = part % chunks * chunk;
    if (cols <= 0) return;
    T* c = scratch.data() + static_cast<std::size_t>(slot) * per_slot;
    GemmCall<T> call = cell_call(l, c);
    call.b = p.w + gi * l.cin_g * l.w_ci + c0 * l.w_co;
    call.b_ns = l.w_co;
    call.n = cols;
    call.bias = p.bias ? p.bias + gi * l.cout_g + c0 : nullptr;
    call.pairs = static_cast<std::int64_t>(pp.a_off.size());
    call.a_off = pp.a_off.data();
    call.b_off = pp.b_off.data();
    call.lanes_ld = vecs;
    call.sets = static_cast<std::int64_t>(pp.y_off.size());
    call.set_first = pp.first.data();
    T* y_co = p.y + (gi * l.cout_g + c0) * l.y_c;
    call.m = std::min(chunk, l.cells - m0);
    call.a_lanes = pp.lanes.data() + m0 / lanes;
    call.c_ns = call.m;
    call.c_ss = cols * call.m;
    call.a = p.x + n * l.x_n + gi * l.cin_g * l.x_c + m0;
    ks.cell_gemm(call);
    store_phases(g, l, pp, c, call.c_ss, call.c_ns, cols, m0, call.m, y_co + n * l.y_n,
                 lines[static_cast<std::size_t>(slot)]);
  };
  detail::parallel_for(items, threads, body, detail::Schedule::runs);
  return scratch.capacity() * sizeof(T) + static_cast<std::size_t>(tables) + held;
}

// The phases path where an image's cells are not one element apart (channels_last data): the
// cell kernel loads a vector of cells at once, so it runs on a copy of the input with every
// image's channels first (a tenth of DCGAN 512 -> 256's time at batch 1 to pack its weights).
template <class T>
std::size_t run_phases_copied(const Problem<T>& p, const KernelSet<T>& ks, Layout l, int threads) {
  const Geometry& g = *p.g;
  const std::int64_t chans = g.in_channels, image = chans * l.cells;
  const std::size_t bytes = static_cast<std::size_t>(g.batch * image) * sizeof(T);
  if (static_cast<double>(bytes) > detail::scratch_budget(detail::output_bytes(g, sizeof(T))))
    return phase::kDeclined;
  std::vector<T> xs;
  detail::resize_or_throw(xs, static_cast<std::size_t>(g.batch * image), "the input's copy");
  detail::parallel_for(g.batch, threads, [&](std::int64_t n, int) {
    const T* x = p.x + n * l.x_n;
    T* dst = xs.data() + n * image;
    if (l.x_c == 1 && ks.transpose != nullptr) {
      ks.transpose(x, l.x_m, dst, l.cells, l.cells, chans, true);
      return;
    }
    for (std::int64_t c = 0; c < chans; ++c)
      for (std::int64_t m = 0; m < l.cells; ++m) dst[c * l.cells + m] = x[c * l.x_c + m * l.x_m];
  });
  Problem<T> q = p;
  q.x = xs.data();
  l.x_n = image;
  l.x_c = l.cells;
  l.x_m = 1;
  return run_phases(q, ks, l, threads, bytes);
}

}  // namespace

std::int64_t item_columns(std::int64_t cout_g, std::int64_t most, std::int64_t tile) {
  const std::int64_t items = (cout_g + most - 1) / most;
  const std::int64_t even = (cout_g + items - 1) / items;
  if (tile <= 0 || even <= tile) return even;
  const std::int64_t whole = std::min(cout_g, (even + tile - 1) / tile * tile);
  return whole <= most + most / 5 ? whole : even;
}

template <class T>
bool applies(const Problem<T>& p, const KernelSet<T>& ks) {
  Layout l;
  return layout(p, &l) && (l.dense_cols || phases_take(*p.g, l, ks));
}

template <class T>
bool by_phases(const Problem<T>& p, const KernelSet<T>& ks) {
  Layout l;
  return layout(p, &l) && phases_take(*p.g, l, ks);
}

template <class T>
bool narrow_phases(const Problem<T>& p, const KernelSet<T>& ks) {
  Layout l;
  return layout(p, &l) && narrow_cols(l) && phases_shape(*p.g, l, ks);
}

template <class T>
std::size_t run(const Problem<T>& p, const KernelSet<T>& ks, int threads,
                std::size_t* block_bytes) {
  const Geometry& g = *p.g;
  Layout l;
  layout(p, &l);
  // The cell kernel where one tile holds every cell of the call: the weights are then read once
  // (float32, one thread: HiFi-GAN up1's 100 cells in two tiles ran no faster than the copied
  // panels, in float64 (four tiles) 1.34x slower).
  if (phases_take(g, l, ks)) {
    runtime::note_kernel("direct_phases");
    *block_bytes = 0;
    if (l.x_m != 1 && l.cells > 1) return run_phases_copied(p, ks, l, threads);
    return run_phases(p, ks, l, threads);
  }
  if (!l.dense_cols) return phase::kDeclined;  // (applies() says so)
  if (ks.cell_gemm != nullptr && (l.x_m == 1 || l.cells == 1) && g.batch == 1 &&
      l.cells <= ks.cell_mr) {
    runtime::note_kernel("direct_cells");
    *block_bytes = 0;
    return run_cells(p, ks, l, threads);
  }
  runtime::note_kernel("direct");
  Shape sh;
  sh.nr = ks.nr;
  // Every cell in one chunk where its C takes at most 16 KiB, a third of L1: the kernel then
  // spreads its tiles over all the cells (HiFi-GAN up1's 100 as 13 tiles of 7-8, not 7 chunks
  // of two 7-tiles mostly). Past that, chunks of about two tiles: C stays in L1.
  const bool one_chunk = l.cells * sh.nr * static_cast<std::int64_t>(sizeof(T)) <= (16 << 10);
  const std::int64_t chunk = one_chunk ? l.cells : 2 * ks.mr;
  sh.chunks = std::max<std::int64_t>(1, (l.cells + chunk - 1) / chunk);
  const std::int64_t most = (l.cells + sh.chunks - 1) / sh.chunks;
  sh.block = block_panels(l.cin_g, sh.nr, sizeof(T));
  // A thread's item: the output channels of whole panels, a block's worth where that divides
  // evenly (the channels of a panel never go to two threads).
  const std::int64_t whole = sh.nr / std::gcd(l.taps, sh.nr);
  const std::int64_t unit = whole * std::max<std::int64_t>(1, sh.block * sh.nr / (whole * l.taps));
  const std::int64_t per_group = (l.cout_g + unit - 1) / unit, items = g.groups * per_group;
  threads = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, items)));
  const std::size_t per_slot = static_cast<std::size_t>((most + sh.block * l.cin_g) * sh.nr);
  if (static_cast<double>(per_slot * threads * sizeof(T)) >
      detail::scratch_budget(detail::output_bytes(g, sizeof(T))))
    return phase::kDeclined;
  std::vector<T> scratch;
  detail::resize_or_throw(scratch, per_slot * static_cast<std::size_t>(threads),
                          "the direct driver's blocks of weights");
  auto body = [&](std::int64_t item, int slot) {
    const std::int64_t gi = item / per_group, c0 = item % per_group * unit;
    const std::int64_t c1 = std::min(l.cout_g, c0 + unit);
    fill_channels(p, l, gi * l.cout_g + c0, gi * l.cout_g + c1);
    T* c = scratch.data() + static_cast<std::size_t>(slot) * per_slot;
    T* buf = c + most * sh.nr;
    const std::int64_t end = c1 * l.taps, width = sh.block * sh.nr;
    for (std::int64_t jb = c0 * l.taps; jb < end; jb += width) {
      const std::int64_t cols = std::min(width, end - jb);
      copy_block(p.w + gi * l.cin_g * l.w_ci + jb, l.w_ci, l.cin_g, cols, sh.nr, buf);
      for (std::int64_t j0 = jb; j0 < jb + cols; j0 += sh.nr)
        run_panel(p, ks, l, sh, gi, j0, std::min(sh.nr, jb + cols - j0),
                  buf + (j0 - jb) / sh.nr * l.cin_g * sh.nr, c);
    }
  };
  // Runs of consecutive items per thread: a thread walks the weights' columns in order.
  detail::parallel_for(items, threads, body, detail::Schedule::runs);
  *block_bytes = static_cast<std::size_t>(threads * sh.block * l.cin_g * sh.nr) * sizeof(T);
  return scratch.capacity() * sizeof(T) - *block_bytes;
}

template bool applies(const Problem<float>&, const KernelSet<float>&);
template bool applies(const Problem<double>&, const KernelSet<double>&);
template bool by_phases(const Problem<float>&, const KernelSet<float>&);
template bool by_phases(const Problem<double>&, const KernelSet<double>&);
template bool narrow_phases(const Problem<float>&, const KernelSet<float>&);
template bool narrow_phases(const Problem<double>&, const KernelSet<double>&);
template std::size_t run(const Problem<float>&, const KernelSet<float>&, int, std::size_t*);
template std::size_t run(const Problem<double>&, const KernelSet<double>&, int, std::size_t*);

}  // namespace tconv::kernels::direct
