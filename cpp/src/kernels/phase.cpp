#include "kernels/phase.hpp"

#include <algorithm>
#include <cstring>
#include <cassert>
#include <cstdlib>

#include "buffer.hpp"
#include "runtime.hpp"
#include "threadpool.hpp"

namespace tconv::kernels::phase {
namespace {

std::int64_t floor_mod(std::int64_t a, std::int64_t b) { return ((a % b) + b) % b; }
std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

double output_bytes(const Geometry& g, std::size_t elem) {
  double bytes = static_cast<double>(g.batch * g.out_channels) * static_cast<double>(elem);
  for (int d = 0; d < g.rank; ++d) bytes *= static_cast<double>(g.output[d]);
  return bytes;
}

// Output position `oo` of the first `dims` dims (row-major): per dim its coordinate o, phase r
// and phase row q (o = q * stride + r).
void outer_position(const Geometry& g, std::int64_t oo, int dims, std::int64_t* o,
                    std::int64_t* r, std::int64_t* q) {
  for (int d = dims - 1; d >= 0; --d) {
    o[d] = oo % g.output[d];
    oo /= g.output[d];
    r[d] = o[d] % g.stride[d];
    q[d] = o[d] / g.stride[d];
  }
}

// The taps of the first `dims` dims for output phase r at phase row q (per dim) whose input
// positions fall inside the input: visit(i, tap) for each, i the input index per dim and tap
// the index row-major over the phase's tap lists, in that order.
template <class T, class Visit>
void for_each_outer_tap(const Geometry& g, const Packed<T>& pk, int dims, const std::int64_t* r,
                        const std::int64_t* q, Visit visit) {
  std::int64_t j[8] = {0}, len[8] = {0};
  for (int d = 0; d < dims; ++d) {
    len[d] = static_cast<std::int64_t>(pk.dims[d].k[r[d]].size());
    if (len[d] == 0) return;
  }
  while (true) {
    std::int64_t i[8] = {0}, tap = 0;
    bool ok = true;
    for (int d = 0; d < dims; ++d) {
      i[d] = q[d] + pk.dims[d].c[r[d]][j[d]];
      if (i[d] < 0 || i[d] >= g.input[d]) ok = false;
      tap = tap * len[d] + j[d];
    }
    if (ok) visit(static_cast<const std::int64_t*>(i), tap);
    int d = dims - 1;
    for (; d >= 0; --d) {
      if (++j[d] < len[d]) break;
      j[d] = 0;
    }
    if (d < 0) return;
  }
}

DimPhases dim_phases(std::int64_t kernel, std::int64_t stride, std::int64_t dilation,
                     std::int64_t pad_lo) {
  DimPhases d;
  d.stride = stride;
  d.k.resize(static_cast<std::size_t>(stride));
  d.c.resize(static_cast<std::size_t>(stride));
  for (std::int64_t r = 0; r < stride; ++r)
    for (std::int64_t k = 0; k < kernel; ++k) {
      const std::int64_t num = r + pad_lo - k * dilation;
      if (floor_mod(num, stride) != 0) continue;
      d.k[r].push_back(k);
      d.c[r].push_back(num / stride);
    }
  return d;
}

// Residues of phase index `ph` (row-major over dims).
std::vector<std::int64_t> phase_residues(std::int64_t ph, const std::vector<DimPhases>& dims) {
  std::vector<std::int64_t> r(dims.size());
  for (std::size_t d = dims.size(); d-- > 0;) {
    r[d] = ph % dims[d].stride;
    ph /= dims[d].stride;
  }
  return r;
}

bool packed_matches(const Geometry& g, const std::vector<std::int64_t>& kernel,
                   const std::vector<std::int64_t>& stride,
                   const std::vector<std::int64_t>& dilation,
                   const std::vector<std::int64_t>& pad_lo) {
  return g.kernel == kernel && g.stride == stride && g.dilation == dilation && g.pad_lo == pad_lo;
}

}  // namespace

template <class T>
bool Packed<T>::matches(const Geometry& g) const {
  return packed_matches(g, kernel, stride, dilation, pad_lo) && g.groups == groups &&
         g.in_channels / g.groups == cin_g && g.out_channels / g.groups == cout_g &&
         choose_algo(g) == algo;
}

Algo choose_algo(const Geometry& g) {
  // Output channels as the vector axis wastes most lanes below 5 channels per group: vectorise
  // over output positions instead.
  return g.out_channels / g.groups <= 4 ? Algo::spatial : Algo::channel;
}

bool rows_layout_fits(const Geometry& g) {
  if (choose_algo(g) != Algo::spatial || g.rank < 2) return false;
  const std::int64_t sy = g.stride[g.rank - 2], sx = g.stride[g.rank - 1];
  const std::int64_t n = g.out_channels / g.groups;
  return sy >= 2 && sy <= 4 && sx >= 2 && sx <= 4 && n >= 1 && n * sy * sx <= 24;
}

namespace {

// The RowsCall layout of pk's weights (see Packed::rows_data), from its per-phase blocks.
template <class T>
void pack_rows(Packed<T>& pk) {
  const int rank = static_cast<int>(pk.dims.size());
  const int yd = rank - 2, xd = rank - 1;
  const DimPhases &dy = pk.dims[yd], &dx = pk.dims[xd];
  const std::int64_t RY = dy.stride, PH = dx.stride, CO = pk.cout_g;
  auto span = [](const DimPhases& d, std::int64_t* lo) {
    std::int64_t l = 0, h = -1;
    bool seen = false;
    for (const auto& cs : d.c)
      for (auto c : cs) {
        l = seen ? std::min(l, c) : c;
        h = seen ? std::max(h, c) : c;
        seen = true;
      }
    *lo = l;
    return seen ? h - l + 1 : 0;
  };
  pk.row_shifts = span(dy, &pk.row_shift_lo);
  pk.col_shifts = span(dx, &pk.col_shift_lo);
  std::int64_t outer_phases = 1;
  for (int d = 0; d < yd; ++d) outer_phases *= pk.dims[d].stride;
  const std::int64_t block = pk.cin_g * RY * PH * CO;
  const std::int64_t per_tap = pk.row_shifts * pk.col_shifts * block;
  pk.rows_offset.resize(static_cast<std::size_t>(pk.groups * outer_phases));
  std::int64_t at = 0;
  std::vector<std::int64_t> outer_taps(static_cast<std::size_t>(outer_phases));
  for (std::int64_t po = 0; po < outer_phases; ++po) {
    std::int64_t t = 1, rem = po;
    for (int d = yd - 1; d >= 0; --d) {
      t *= static_cast<std::int64_t>(pk.dims[d].k[rem % pk.dims[d].stride].size());
      rem /= pk.dims[d].stride;
    }
    outer_taps[po] = t;
  }
  for (std::int64_t gi = 0; gi < pk.groups; ++gi)
    for (std::int64_t po = 0; po < outer_phases; ++po) {
      pk.rows_offset[gi * outer_phases + po] = at;
      at += outer_taps[po] * per_tap;
    }
  pk.rows_size = static_cast<std::size_t>(at);
  pk.rows_data = detail::make_buffer<T>(pk.rows_size, "the weights packed for the row kernel",
                                        detail::kWeightsAdvice);
  T* const out = pk.rows_data.get();
  std::fill(out, out + at, T(0));
  for (std::int64_t gi = 0; gi < pk.groups; ++gi)
    for (std::int64_t po = 0; po < outer_phases; ++po)
      for (std::int64_t t = 0; t < outer_taps[po]; ++t)
        for (std::int64_t ry = 0; ry < RY; ++ry)
          for (std::int64_t jy = 0; jy < static_cast<std::int64_t>(dy.c[ry].size()); ++jy)
            for (std::int64_t rx = 0; rx < PH; ++rx)
              for (std::int64_t jx = 0; jx < static_cast<std::int64_t>(dx.c[rx].size()); ++jx) {
                // The phase's block and this tap's row in it: taps are row-major over the
                // dims, the outer ones first.
                const std::int64_t ph = (po * RY + ry) * PH + rx;
                const std::int64_t tap =
                    (t * static_cast<std::int64_t>(dy.c[ry].size()) + jy) *
                        static_cast<std::int64_t>(dx.c[rx].size()) +
                    jx;
                const T* src = pk.data.get() + pk.offset[(gi * pk.phases + ph) * pk.panels] +
                               tap * pk.cin_g * pk.width;
                T* dst = out + pk.rows_offset[gi * outer_phases + po] + t * per_tap +
                         ((dy.c[ry][jy] - pk.row_shift_lo) * pk.col_shifts +
                          (dx.c[rx][jx] - pk.col_shift_lo)) *
                             block +
                         (ry * PH + rx) * CO;
                for (std::int64_t ci = 0; ci < pk.cin_g; ++ci)
                  for (std::int64_t co = 0; co < CO; ++co)
                    dst[ci * RY * PH * CO + co] = src[ci * pk.width + co];
              }
}

}  // namespace

template <class T>
Packed<T> pack(const Geometry& g, const T* w, const std::vector<std::int64_t>& ws, Algo algo,
               std::int64_t nr, int threads, TransposeFn<T> transpose, bool rows_layout) {
  Packed<T> pk;
  const int rank = g.rank;
  const bool cf = g.data_format == DataFormat::channels_first;
  pk.algo = algo;
  pk.groups = g.groups;
  pk.cin_g = g.in_channels / g.groups;
  pk.cout_g = g.out_channels / g.groups;
  pk.kernel = g.kernel;
  pk.stride = g.stride;
  pk.dilation = g.dilation;
  pk.pad_lo = g.pad_lo;
  pk.width = algo == Algo::channel ? nr : pk.cout_g;
  pk.panels = algo == Algo::channel ? ceil_div(pk.cout_g, nr) : 1;
  for (int d = 0; d < rank; ++d)
    pk.dims.push_back(dim_phases(g.kernel[d], g.stride[d], g.dilation[d], g.pad_lo[d]));
  pk.phases = 1;
  for (int d = 0; d < rank; ++d) pk.phases *= g.stride[d];

  const int w_cin_axis = cf ? 0 : rank + 1;
  const int w_cout_axis = cf ? 1 : rank;
  const int w_k_axis = cf ? 2 : 0;

  std::int64_t total = 0;
  std::vector<std::int64_t> taps_of(static_cast<std::size_t>(pk.phases));
  for (std::int64_t ph = 0; ph < pk.phases; ++ph) {
    const auto r = phase_residues(ph, pk.dims);
    std::int64_t t = 1;
    for (int d = 0; d < rank; ++d) t *= static_cast<std::int64_t>(pk.dims[d].k[r[d]].size());
    taps_of[ph] = t;
    total += t;
  }
  pk.offset.resize(static_cast<std::size_t>(pk.groups * pk.phases * pk.panels));
  pk.size = static_cast<std::size_t>(pk.groups * total * pk.cin_g * pk.width * pk.panels);
  pk.data = detail::make_buffer<T>(pk.size, "the weights packed for the kernels", detail::kWeightsAdvice);
  // Every (phase, tap of the phase) with its weight offset and packed row.
  struct TapRef {
    std::int64_t ph, t, w_off;
  };
  std::vector<TapRef> taps;
  for (std::int64_t ph = 0; ph < pk.phases; ++ph) {
    const auto r = phase_residues(ph, pk.dims);
    for (std::int64_t t = 0; t < taps_of[ph]; ++t) {
      std::int64_t rem = t, w_off = 0;
      for (int d = rank - 1; d >= 0; --d) {
        const auto& ks = pk.dims[d].k[r[d]];
        const std::int64_t n = static_cast<std::int64_t>(ks.size());
        w_off += ks[rem % n] * ws[w_k_axis + d];
        rem /= n;
      }
      taps.push_back({ph, t, w_off});
    }
  }
  std::int64_t at = 0;
  for (std::int64_t gi = 0; gi < pk.groups; ++gi)
    for (std::int64_t ph = 0; ph < pk.phases; ++ph)
      for (std::int64_t panel = 0; panel < pk.panels; ++panel) {
        pk.offset[(gi * pk.phases + ph) * pk.panels + panel] = at;
        at += taps_of[ph] * pk.cin_g * pk.width;
      }
  // Each (group, phase, panel, tap of the phase) block is a [C_in/g][width] matrix: row ci holds
  // `width` consecutive output channels of input channel ci, zero-padded past C_out/g. Weight
  // element (group gi, input channel ci, output channel co of the group, tap i) lives at
  // w + (gi * cin_g + ci) * s_ci + co * s_co + taps[i].w_off. How to fill the blocks at memory
  // speed depends on which weight axis is the contiguous one.
  const std::int64_t s_ci = ws[w_cin_axis], s_co = ws[w_cout_axis];
  const std::int64_t ntaps = static_cast<std::int64_t>(taps.size());
  const std::int64_t cols = pk.panels * pk.width;  // C_out/g rounded up to whole panels
  auto block = [&](std::int64_t gi, std::int64_t i, std::int64_t panel) {
    return pk.data.get() + pk.offset[(gi * pk.phases + taps[i].ph) * pk.panels + panel] +
           taps[i].t * pk.cin_g * pk.width;
  };
  threads = std::max(1, threads);
  if (std::abs(s_ci) > 1 && std::abs(s_co) > 1) {
    // PyTorch's (C_in, C_out/g, *kernel): one input channel's weights, every output channel and
    // tap, are one contiguous run. Read it in order into a [tap][C_out/g] buffer (small: it stays
    // in L1/L2), then write whole rows. When the kernel axes are dense and innermost, the run is
    // a [C_out/g][kernel elements] matrix and the ISA's transpose turns it around in registers
    // (a scalar gather moves about one element per nanosecond: 4 ms for DCGAN's 8 MiB).
    std::int64_t kernel_elems = 1;
    bool dense_kernel = transpose != nullptr;
    for (int d = rank - 1; d >= 0; --d) {
      if (ws[w_k_axis + d] != kernel_elems) dense_kernel = false;
      kernel_elems *= g.kernel[d];
    }
    dense_kernel = dense_kernel && s_co >= kernel_elems;
    const std::int64_t tmp_rows = dense_kernel ? kernel_elems : ntaps;
    // Input channels in runs of kRun per item: each packed block then gets kRun consecutive rows
    // (2-4 KiB) at a time rather than one 64-128 B row, so the stores into a buffer far larger
    // than the caches stream through a few lines instead of one per (tap, panel) block.
    // (At most 256 KiB of staging per thread.)
    const std::int64_t kRun = std::clamp<std::int64_t>(
        (std::int64_t(256) << 10) / (tmp_rows * cols * static_cast<std::int64_t>(sizeof(T))), 1,
        16);
    const std::int64_t runs = ceil_div(pk.cin_g, kRun);
    std::vector<std::vector<T>> tmp(static_cast<std::size_t>(threads));
    for (auto& t : tmp) t.assign(static_cast<std::size_t>(kRun * tmp_rows * cols), T(0));
    detail::parallel_for(pk.groups * runs, threads, [&](std::int64_t item, int slot) {
      const std::int64_t gi = item / runs, c0 = item % runs * kRun;
      const std::int64_t c1 = std::min(c0 + kRun, pk.cin_g);
      T* const t0 = tmp[static_cast<std::size_t>(slot)].data();
      for (std::int64_t ci = c0; ci < c1; ++ci) {
        T* t = t0 + (ci - c0) * tmp_rows * cols;
        const T* src = w + (gi * pk.cin_g + ci) * s_ci;
        if (dense_kernel) {
          // t[k * cols + co] = src[co * s_co + k]; tap i's row is its kernel element, w_off.
          transpose(src, s_co, t, cols, pk.cout_g, kernel_elems, false);
        } else {
          for (std::int64_t co = 0; co < pk.cout_g; ++co)
            for (std::int64_t i = 0; i < ntaps; ++i)
              t[i * cols + co] = src[co * s_co + taps[i].w_off];
        }
      }
      for (std::int64_t i = 0; i < ntaps; ++i) {
        const std::int64_t row = dense_kernel ? taps[i].w_off : i;
        for (std::int64_t panel = 0; panel < pk.panels; ++panel) {
          T* to = block(gi, i, panel) + c0 * pk.width;
          for (std::int64_t ci = c0; ci < c1; ++ci, to += pk.width) {
            // A loop rather than memmove: rows are 8-32 elements, shorter than the call.
            const T* from = t0 + ((ci - c0) * tmp_rows + row) * cols + panel * pk.width;
            for (std::int64_t j = 0; j < pk.width; ++j) to[j] = from[j];
          }
        }
      }
    });
  } else {
    // Keras's (*kernel, C_out/g, C_in) and other layouts: per (group, tap, panel), in tiles of
    // 16 input channels so that both the reads (along the smaller stride) and the row writes
    // stay within a few cache lines.
    constexpr std::int64_t kTile = 16;
    detail::parallel_for(pk.groups * ntaps * pk.panels, threads, [&](std::int64_t item, int) {
      const std::int64_t panel = item % pk.panels, i = (item / pk.panels) % ntaps,
                         gi = item / (pk.panels * ntaps);
      const std::int64_t jn = std::min(pk.width, pk.cout_g - panel * pk.width);
      const T* src = w + gi * pk.cin_g * s_ci + panel * pk.width * s_co + taps[i].w_off;
      T* dst = block(gi, i, panel);
      const bool ci_inner = std::abs(s_ci) < std::abs(s_co);
      for (std::int64_t c0 = 0; c0 < pk.cin_g; c0 += kTile) {
        const std::int64_t c1 = std::min(c0 + kTile, pk.cin_g);
        if (ci_inner) {
          for (std::int64_t j = 0; j < jn; ++j)
            for (std::int64_t ci = c0; ci < c1; ++ci)
              dst[ci * pk.width + j] = src[ci * s_ci + j * s_co];
        } else {
          for (std::int64_t ci = c0; ci < c1; ++ci)
            for (std::int64_t j = 0; j < jn; ++j)
              dst[ci * pk.width + j] = src[ci * s_ci + j * s_co];
        }
        // Columns past C_out/g (last panel) are zeros the kernel multiplies but never stores.
        for (std::int64_t ci = c0; ci < c1; ++ci)
          std::fill(dst + ci * pk.width + jn, dst + (ci + 1) * pk.width, T(0));
      }
    });
  }
  if (rows_layout && algo == Algo::spatial && rows_layout_fits(g)) pack_rows(pk);
  return pk;
}

namespace {

// Column shifts that some phase of the last dim has a tap at: the pairs of one input row.
template <class T>
std::int64_t used_col_shifts(const Packed<T>& pk) {
  std::vector<bool> used(static_cast<std::size_t>(pk.col_shifts), false);
  for (const auto& cs : pk.dims.back().c)
    for (auto c : cs) used[static_cast<std::size_t>(c - pk.col_shift_lo)] = true;
  return std::count(used.begin(), used.end(), true);
}

// Every phase of the last two dims at once (RowsCall), the input read in place: an item is
// one input row position qy of the dim before the last (its sy output rows), for one image,
// one position of each outer dim and one block of the last dim. Returns the scratch bytes.
template <class T>
std::size_t run_rows(const Problem<T>& p, const Packed<T>& pk, const KernelSet<T>& ks,
                     int threads) {
  const Geometry& g = *p.g;
  const int rank = g.rank;
  const int yd = rank - 2, xd = rank - 1;
  const bool cf = g.data_format == DataFormat::channels_first;
  const int c_axis = cf ? 1 : rank + 1;
  const int sp_axis = cf ? 2 : 1;
  const std::int64_t cin_g = pk.cin_g, cout_g = pk.cout_g;
  const std::int64_t sy = g.stride[yd], sx = g.stride[xd];
  const std::int64_t in_y = g.input[yd], in_x = g.input[xd];
  const std::int64_t out_y = g.output[yd], out_x = g.output[xd];
  const std::int64_t qy_max = ceil_div(out_y, sy), qmax = ceil_div(out_x, sx);
  const DimPhases &dy = pk.dims[yd], &dx = pk.dims[xd];
  std::int64_t n_outer = 1, outer_phases = 1;
  for (int d = 0; d < yd; ++d) {
    n_outer *= g.output[d];
    outer_phases *= g.stride[d];
  }
  // Per row and column shift, the phases with a tap there.
  std::vector<std::int64_t> row_mask(static_cast<std::size_t>(pk.row_shifts), 0),
      col_mask(static_cast<std::size_t>(pk.col_shifts), 0);
  for (std::int64_t r = 0; r < sy; ++r)
    for (auto c : dy.c[r]) row_mask[c - pk.row_shift_lo] |= std::int64_t(1) << r;
  for (std::int64_t r = 0; r < sx; ++r)
    for (auto c : dx.c[r]) col_mask[c - pk.col_shift_lo] |= std::int64_t(1) << r;
  const std::int64_t group = used_col_shifts(pk);

  const std::int64_t rows = g.batch * n_outer * qy_max;
  // Enough items for the threads to balance, blocks of whole vectors of 32 positions or more.
  std::int64_t nxb = 1;
  if (threads > 1 && rows < 8 * threads)
    nxb = std::max<std::int64_t>(1, std::min(ceil_div(8 * threads, rows), qmax / 32));
  const std::int64_t qblock = ceil_div(ceil_div(qmax, nxb), 16) * 16;
  nxb = ceil_div(qmax, qblock);
  const std::int64_t items = rows * nxb;
  threads = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, items)));

  struct Scratch {
    std::vector<std::int64_t> a_off, m_lo, m_hi, b_off, rm, cm, outer_off, outer_tap;
  };
  std::int64_t max_outer = 1;
  for (int d = 0; d < yd; ++d) {
    std::size_t m = 0;
    for (const auto& k : pk.dims[d].k) m = std::max(m, k.size());
    max_outer *= std::min(static_cast<std::int64_t>(m), g.input[d]);  // as max_slots in run()
  }
  const std::int64_t max_pairs = max_outer * pk.row_shifts * group;
  const double per_thread = static_cast<double>(6 * max_pairs + 2 * max_outer) *
                            static_cast<double>(sizeof(std::int64_t));
  if (per_thread * threads > detail::scratch_budget(output_bytes(g, sizeof(T)))) return kDeclined;
  runtime::note_kernel("phase_rows");
  std::vector<Scratch> scratch(static_cast<std::size_t>(threads));
  std::size_t scratch_bytes = 0;
  for (auto& s : scratch) {
    for (auto* v : {&s.a_off, &s.m_lo, &s.m_hi, &s.b_off, &s.rm, &s.cm})
      v->reserve(static_cast<std::size_t>(max_pairs));
    s.outer_off.reserve(static_cast<std::size_t>(max_outer));
    s.outer_tap.reserve(static_cast<std::size_t>(max_outer));
    scratch_bytes += static_cast<std::size_t>(per_thread);
  }
  const std::int64_t xs_y = p.x_strides[sp_axis + yd], xs_c = p.x_strides[c_axis];
  const std::int64_t block = cin_g * sy * sx * cout_g;
  // Inputs well beyond L2 come from L3 or memory, their channel rows a plane apart where no
  // hardware prefetcher follows: the kernel fetches the next item's new row ahead (RGB head
  // at batch 32, float32: 70 -> 84 GFLOP/s). Inputs that stay in cache would only pay for the
  // extra instructions (1-2 %).
  double in_bytes = static_cast<double>(g.batch * g.in_channels * sizeof(T));
  for (int d = 0; d < rank; ++d) in_bytes *= static_cast<double>(g.input[d]);
  const bool prefetch_rows = in_bytes >= 2.0 * 1024 * 1024;

  auto body = [&](std::int64_t item, int slot_id) {
    Scratch& s = scratch[static_cast<std::size_t>(slot_id)];
    const std::int64_t xb = item / rows;
    std::int64_t rest = item % rows;
    const std::int64_t qy = rest % qy_max;
    rest /= qy_max;
    const std::int64_t oo = rest % n_outer, n = rest / n_outer;
    const std::int64_t qa = xb * qblock, qb = std::min(qa + qblock, qmax);
    // The outer dims' position, phase, and valid taps (odometer), as input offsets.
    std::int64_t o[8] = {0}, r[8] = {0}, q[8] = {0};
    outer_position(g, oo, yd, o, r, q);
    std::int64_t po = 0;
    for (int d = 0; d < yd; ++d) po = po * g.stride[d] + r[d];
    s.outer_off.clear();
    s.outer_tap.clear();
    for_each_outer_tap(g, pk, yd, r, q, [&](const std::int64_t* i, std::int64_t tap) {
      std::int64_t off = 0;
      for (int d = 0; d < yd; ++d) off += i[d] * p.x_strides[sp_axis + d];
      s.outer_off.push_back(off);
      s.outer_tap.push_back(tap);
    });
    s.a_off.clear();
    s.m_lo.clear();
    s.m_hi.clear();
    s.b_off.clear();
    s.rm.clear();
    s.cm.clear();
    const std::int64_t gi_stride = cin_g * xs_c;
    for (std::size_t t = 0; t < s.outer_off.size(); ++t)
      for (std::int64_t ry = 0; ry < pk.row_shifts; ++ry) {
        const std::int64_t iy = qy + pk.row_shift_lo + ry;
        if (iy < 0 || iy >= in_y || row_mask[ry] == 0) continue;
        for (std::int64_t cx = 0; cx < pk.col_shifts; ++cx) {
          if (col_mask[cx] == 0) continue;
          const std::int64_t shift = qa + pk.col_shift_lo + cx;
          s.a_off.push_back(s.outer_off[t] + iy * xs_y + shift);
          s.m_lo.push_back(-shift);
          s.m_hi.push_back(in_x - shift);
          s.b_off.push_back((s.outer_tap[t] * pk.row_shifts + ry) * pk.col_shifts * block +
                            cx * block);
          s.rm.push_back(row_mask[ry]);
          s.cm.push_back(col_mask[cx]);
        }
      }
    const T* x_n = p.x + n * p.x_strides[0];
    // The row the next item (qy + 1) reads first, when that is the row after this item's.
    const T* next_row = nullptr;
    if (prefetch_rows && s.outer_off.size() == 1 && qy + 1 < qy_max) {
      const std::int64_t iy = qy + pk.row_shift_lo + pk.row_shifts;
      if (iy < in_y) next_row = x_n + s.outer_off[0] + iy * xs_y + qa;
    }
    T* y_n = p.y + n * p.y_strides[0];
    for (int d = 0; d < yd; ++d) y_n += o[d] * p.y_strides[sp_axis + d];
    y_n += qy * sy * p.y_strides[sp_axis + yd] + qa * sx * p.y_strides[sp_axis + xd];
    for (std::int64_t gi = 0; gi < pk.groups; ++gi) {
      RowsCall<T> call;
      call.a = x_n + gi * gi_stride;
      call.a_off = s.a_off.data();
      call.m_lo = s.m_lo.data();
      call.m_hi = s.m_hi.data();
      call.b = pk.rows_data.get() + pk.rows_offset[gi * outer_phases + po];
      call.b_off = s.b_off.data();
      call.row_mask = s.rm.data();
      call.col_mask = s.cm.data();
      call.pairs = static_cast<std::int64_t>(s.a_off.size());
      call.group = group;
      call.k = cin_g;
      call.a_ks = xs_c;
      call.b_ld = sy * sx * cout_g;
      call.row_phases = sy;
      call.phases = sx;
      call.c = y_n + gi * cout_g * p.y_strides[c_axis];
      call.c_rs = p.y_strides[sp_axis + yd];
      call.c_ms = sx * p.y_strides[sp_axis + xd];
      call.c_ps = p.y_strides[sp_axis + xd];
      call.c_ns = p.y_strides[c_axis];
      call.m = qb - qa;
      call.n = cout_g;
      call.rows_valid = std::min(sy, out_y - qy * sy);
      call.outputs = std::min(qb * sx, out_x) - qa * sx;
      call.bias = p.bias ? p.bias + gi * cout_g : nullptr;
      call.prefetch = next_row ? next_row + gi * gi_stride : nullptr;
      const bool ran = ks.rows_gemm(call);
      assert(ran);
      (void)ran;
    }
  };
  detail::parallel_for(items, threads, body, detail::Schedule::runs);
  return scratch_bytes;
}

// Whether run_rows takes this layer: its weights in the RowsCall layout, the ISA's kernel, the
// input's last dim contiguous (in place, whole vectors of positions), and few enough shifts.
template <class T>
bool rows_applies(const Problem<T>& p, const Packed<T>& pk, const KernelSet<T>& ks) {
  const Geometry& g = *p.g;
  if (!ks.rows_gemm || pk.rows_size == 0 || !rows_layout_fits(g)) return false;
  const bool cf = g.data_format == DataFormat::channels_first;
  const int sp_axis = cf ? 2 : 1;
  if (p.x_strides[sp_axis + g.rank - 1] != 1) return false;
  const std::int64_t group = used_col_shifts(pk);
  return group >= 1 && group <= 8;
}

}  // namespace

template <class T>
std::size_t run(const Problem<T>& p, const Packed<T>& pk, const KernelSet<T>& ks, int threads) {
  if (rows_applies(p, pk, ks)) return run_rows(p, pk, ks, threads);
  const Geometry& g = *p.g;
  const int rank = g.rank;
  const int xd = rank - 1;  // the blocked, vectorised-over dimension
  const bool cf = g.data_format == DataFormat::channels_first;
  const int c_axis = cf ? 1 : rank + 1;
  const int sp_axis = cf ? 2 : 1;
  const bool spatial = pk.algo == Algo::spatial;
  const std::int64_t cin_g = pk.cin_g, cout_g = pk.cout_g;
  const DimPhases& dx = pk.dims[xd];
  const std::int64_t sx = g.stride[xd], in_x = g.input[xd], out_x = g.output[xd];

  std::int64_t cmin = 0, cmax = 0;
  bool any = false;
  for (const auto& cs : dx.c)
    for (auto c : cs) {
      cmin = any ? std::min(cmin, c) : c;
      cmax = any ? std::max(cmax, c) : c;
      any = true;
    }
  const std::int64_t qmax = ceil_div(out_x, sx);
  std::int64_t n_outer = 1;
  for (int d = 0; d < xd; ++d) n_outer *= g.output[d];
  // Distinct taps of a phase read distinct input rows: a row has at most input[d] of them.
  std::int64_t max_slots = 1;
  for (int d = 0; d < xd; ++d) {
    std::size_t m = 0;
    for (const auto& k : pk.dims[d].k) m = std::max(m, k.size());
    max_slots *= std::min(static_cast<std::int64_t>(m), g.input[d]);
  }
  std::int64_t max_xtaps = 0;
  for (const auto& k : dx.k) max_xtaps = std::max<std::int64_t>(max_xtaps, k.size());

  // Enough items for the threads to balance; blocks along the last dim stay >= 24 wide.
  const std::int64_t rows = g.batch * n_outer;
  std::int64_t nxb = 1;
  if (threads > 1 && rows < 8 * threads)
    nxb = std::max<std::int64_t>(1, std::min(ceil_div(8 * threads, rows), ceil_div(qmax, 24)));
  // Consecutive output rows share most of their input rows (k / s of them): each thread keeps
  // the rows it copied, tagged by (image, input row, group, block), and copies only new ones.
  // Capacity: the input rows between the lowest and highest tap shift of every outer dim, the
  // window that slides by at most one row from one output row to the next.
  std::int64_t cached = 1;
  std::int64_t window[8] = {0};  // per outer dim: input rows between the extreme tap shifts
  for (int d = 0; d < xd; ++d) {
    std::int64_t lo = 0, hi = 0;
    bool seen = false;
    for (const auto& cs : pk.dims[d].c)
      for (auto c : cs) {
        lo = seen ? std::min(lo, c) : c;
        hi = seen ? std::max(hi, c) : c;
        seen = true;
      }
    // No more rows than the input has (the cache's index is the row modulo its extent).
    window[d] = std::min(seen ? hi - lo + 1 : 1, g.input[d]);
    cached *= window[d];
  }

  // Long rows are blocked so a thread's input rows and staging row (see via_row below) stay
  // near 64 KiB: within L2, and a small fraction of any sizeable output.
  const bool via_row = !spatial && std::abs(p.y_strides[c_axis]) != 1;
  const bool multi = spatial && ks.phase_gemm && sx >= 2 && sx <= 4;
  const std::int64_t per_q =
      ((via_row ? sx * cout_g : 0) + cached * cin_g) * static_cast<std::int64_t>(sizeof(T));
  const double out_bytes = output_bytes(g, sizeof(T));
  {
    // 64 KiB of row buffers per thread, up to 128 KiB where that stays within 5 % of the
    // output: longer blocks mean fewer halos and calls (CycleGAN 256->128 NHWC 105 -> 108,
    // U-Net 512->256 NCHW 98 -> 104 GFLOP/s on one thread).
    const double budget = std::clamp(0.05 * out_bytes / threads, 64.0 * 1024, 128.0 * 1024);
    const std::int64_t fit = static_cast<std::int64_t>(budget) / per_q;
    nxb = std::max(nxb, ceil_div(qmax, std::max<std::int64_t>(12, fit)));
  }
  // Blocks of whole 6-row channel tiles: a split row must not leave 3-row tiles behind. Where
  // the ISA's tiles are longer, blocks of whole tiles of its length where their larger buffers
  // stay a small share of the output (CycleGAN 256->128 NCHW with 12-row tiles: 18-position
  // blocks ran 9-row tiles at 101 GFLOP/s, 24-position blocks 12-row tiles at 103-105).
  std::int64_t qblock = ceil_div(qmax, nxb);
  if (nxb > 1 && !spatial) {
    const std::int64_t mr = std::max<std::int64_t>(6, ks.mr);
    const std::int64_t wide = ceil_div(qblock, mr) * mr;
    const bool wide_fits = static_cast<double>(threads * wide * per_q) <= 0.04 * out_bytes;
    qblock = std::min(qmax, wide_fits ? wide : ceil_div(qblock, 6) * 6);
  }
  nxb = ceil_div(qmax, qblock);
  const std::int64_t xlen_max = qblock + cmax - cmin;
  const std::int64_t xlen_alloc = spatial ? xlen_max + ks.spatial_tile : xlen_max;
  // The channel kernels broadcast from up to 12 positions of a buffer row at once, a position
  // pitch apart. A pitch that is a multiple of 1 KiB (512 float64 channels: 4 KiB) puts those
  // lines in one or a few L1 sets, where they evict each other and the weights; one extra
  // cache line per position spreads them over the sets.
  const std::int64_t cin_pitch =
      !spatial && (cin_g * static_cast<std::int64_t>(sizeof(T))) % 1024 == 0
          ? cin_g + 64 / static_cast<std::int64_t>(sizeof(T))
          : cin_g;
  const std::int64_t slot_stride = xlen_alloc * (spatial ? cin_g : cin_pitch);

  // Each micro-kernel call streams a panel's packed weights for the taps of one phase and uses
  // them for the call's qblock positions. Short rows (DCGAN's 8 or 16 positions) with weights
  // beyond L2 would stream them from L3 or memory for every row: there an item takes a block of
  // consecutive output rows of one line (same image and outer position but the last outer dim)
  // and runs them panel by panel, so a panel's weights stay in cache across the block's rows.
  // The block's input rows all stay in the row cache, which grows to hold them.
  const std::int64_t line_len = xd >= 1 ? g.output[xd - 1] : 1;
  const std::int64_t lines = rows / line_len;
  std::int64_t block_rows = 1;
  {
    const double weight_bytes = static_cast<double>(pk.size) / static_cast<double>(pk.groups) *
                                static_cast<double>(sizeof(T));
    // The block's input rows may take 4 % of the larger of the output and the weights (the
    // weights are kept packed anyway), shared by the threads, from 64 KiB to 1 MiB per thread.
    const double all_weights = static_cast<double>(pk.size) * static_cast<double>(sizeof(T));
    const std::int64_t budget = static_cast<std::int64_t>(std::clamp(
        0.04 * std::max(out_bytes, all_weights) / threads, 64.0 * 1024.0, 1024.0 * 1024.0));
    if (xd >= 1 && !spatial && qblock < 32 && weight_bytes > 256.0 * 1024.0) {
      block_rows = std::min(line_len, ceil_div(64, qblock));
      const std::int64_t others = cached / window[xd - 1];
      while (block_rows > 1 && others * (window[xd - 1] + block_rows - 1) * slot_stride *
                                       static_cast<std::int64_t>(sizeof(T)) >
                                   budget)
        --block_rows;
      cached = others * (window[xd - 1] + block_rows - 1);
    }
  }
  // The row cache's extent per outer dim (see its lookup in row_pass).
  std::int64_t modulus[8] = {0};
  for (int d = 0; d < xd; ++d) modulus[d] = window[d] + (d == xd - 1 ? block_rows - 1 : 0);
  assert(cached >= max_slots);
  const std::int64_t blocks_per_line = ceil_div(line_len, block_rows);
  // Too few row blocks for the threads: split the output channels (panels) too.
  std::int64_t panel_parts = 1;
  {
    const std::int64_t row_items = lines * blocks_per_line * nxb;
    if (threads > 1 && row_items < 4 * threads)
      panel_parts = std::min(pk.panels, ceil_div(4 * threads, row_items));
  }
  const std::int64_t panels_per_item = ceil_div(pk.panels, panel_parts);
  panel_parts = ceil_div(pk.panels, panels_per_item);
  const std::int64_t items = lines * blocks_per_line * nxb * panel_parts;
  threads = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, items)));

  // With channels_first output the channel-vector tiles would store one scalar per output
  // channel, each to its own cache line. Instead a block's outputs go to a small channels-last
  // row (vector stores), which is then written out position-contiguous, channel by channel.
  // One panel's columns at a time: row_pass runs per panel.
  const std::int64_t row_len = via_row ? std::min(qblock * sx, out_x) * pk.width : 0;

  // Small inputs are read in place, as they are: the kernels skip the taps that fall past the
  // borders (row windows), so no zero-haloed copy is needed. Copies pay off where they keep
  // strided rows in L1 (an NCHW input's channels are a plane apart, a 4 KiB multiple for
  // 32x32 float32 and up), and there they are a small share of the output; where they are
  // not (small outputs: one input row of DCGAN 512->256 at 8x8 is 6 % of its output), the
  // input stays where it is.
  const std::int64_t xs_x = p.x_strides[sp_axis + xd], xs_c = p.x_strides[c_axis];
  bool in_place = false;
  if (!spatial) {
    const double copy_bytes = static_cast<double>(threads) *
                              static_cast<double>(cached * slot_stride) *
                              static_cast<double>(sizeof(T));
    in_place = ks.channel_windows && copy_bytes > 0.05 * out_bytes;
  } else if (ks.spatial_windows && ks.spatial_in_place && xs_x == 1) {
    // The position-vector kernels load whole vectors of consecutive positions. In place they
    // run each input row's shifts in one pass (PhaseCall::group), which sums in another order
    // than the copies' kernel: the choice must not depend on the thread count (results are the
    // same for every count), so it rests on one thread's copies of whole rows. It pays only
    // where those dwarf the output (DCGAN's RGB head at batch 1: 1.3x its output, and 77 -> 85
    // GFLOP/s in place); FSRCNN (copies of 19-46 % of its output) and the RGB head at batch 16
    // ran 7-25 % slower in place than from copies.
    const double whole_rows = static_cast<double>(cached) *
                              static_cast<double>(qmax + cmax - cmin + ks.spatial_tile) *
                              static_cast<double>(cin_g) * static_cast<double>(sizeof(T));
    in_place = whole_rows > 0.5 * out_bytes;
  }
  // A's strides: along positions of the last dim (a_ms) and along input channels (a_ks).
  const std::int64_t a_ms = in_place ? xs_x : spatial ? 1 : cin_pitch;
  const std::int64_t a_ks = in_place ? xs_c : spatial ? xlen_alloc : 1;

  std::int64_t n_in_outer = 1;
  for (int d = 0; d < xd; ++d) n_in_outer *= g.input[d];

  struct Scratch {
    std::vector<T> row;
    std::vector<T> buf;
    std::vector<std::int64_t> a_off, b_off, partner, m_lo, m_hi, slot_in, slot_tap, slot_off, tag,
        halo;
  };
  // Per thread: the staging row and row buffers (T); tags, halos, slots and pair lists.
  const std::int64_t lines_cached = in_place ? 0 : cached;
  const std::int64_t max_pairs = max_slots * std::max<std::int64_t>(max_xtaps, cmax - cmin + 1);
  const double per_thread =
      static_cast<double>(row_len + lines_cached * slot_stride) * sizeof(T) +
      static_cast<double>(2 * lines_cached + max_slots * (std::max(xd, 1) + 2) +
                          max_pairs * (2 + sx + (in_place ? 2 : 0))) *
          sizeof(std::int64_t);
  if (per_thread * threads > detail::scratch_budget(out_bytes)) return kDeclined;
  runtime::note_kernel(!spatial ? (block_rows > 1 ? "phase_channel_blocks" : "phase_channel")
                                : (in_place ? "phase_spatial_in_place" : "phase_spatial"));
  std::vector<Scratch> scratch(static_cast<std::size_t>(threads));
  std::size_t scratch_bytes = 0;
  for (auto& s : scratch) {
    s.row.resize(static_cast<std::size_t>(row_len));
    detail::assign_or_throw(s.buf, static_cast<std::size_t>(lines_cached * slot_stride), T(0),
                            "the input row buffers");
    s.tag.assign(static_cast<std::size_t>(lines_cached), -1);
    s.halo.assign(static_cast<std::size_t>(lines_cached), -1);
    s.slot_off.resize(static_cast<std::size_t>(max_slots));
    // Pair lists: the multi-phase call's hold a pair per (slot, shift) with sx weight offsets.
    s.a_off.reserve(static_cast<std::size_t>(max_pairs));
    s.b_off.reserve(static_cast<std::size_t>(max_pairs * sx));
    s.partner.reserve(static_cast<std::size_t>(max_pairs));
    s.m_lo.reserve(static_cast<std::size_t>(in_place ? max_pairs : 0));
    s.m_hi.reserve(static_cast<std::size_t>(in_place ? max_pairs : 0));
    s.slot_in.reserve(static_cast<std::size_t>(max_slots * std::max(xd, 1)));
    s.slot_tap.reserve(static_cast<std::size_t>(max_slots));
    scratch_bytes += (s.row.capacity() + s.buf.capacity()) * sizeof(T) +
                     (s.a_off.capacity() + s.b_off.capacity() + s.partner.capacity() +
                      s.m_lo.capacity() + s.m_hi.capacity() + s.slot_in.capacity() +
                      s.slot_tap.capacity() + s.slot_off.capacity() + s.tag.capacity() +
                      s.halo.capacity()) *
                         sizeof(std::int64_t);
  }

  // The multi-phase call's pairs of one input row: each shift of the last dim that some phase
  // has a tap at (each phase's taps in its order), with that tap per phase, and its partner:
  // a later shift feeding exactly the phases it lacks (see PhaseCall::partner).
  struct ShiftUse {
    std::int64_t c, jx[4], partner;
  };
  std::vector<ShiftUse> shift_uses;
  std::vector<std::int64_t> dx_taps;
  if (multi) {
    for (std::int64_t rx = 0; rx < sx; ++rx)
      dx_taps.push_back(static_cast<std::int64_t>(dx.c[rx].size()));
    std::vector<int> masks;
    for (std::int64_t c = cmax; c >= cmin; --c) {
      ShiftUse u{c, {-1, -1, -1, -1}, -1};
      int mask = 0;
      for (std::int64_t rx = 0; rx < sx; ++rx)
        for (std::int64_t jx = 0; jx < dx_taps[rx]; ++jx)
          if (dx.c[rx][jx] == c) {
            u.jx[rx] = jx;
            mask |= 1 << rx;
          }
      if (mask == 0) continue;
      shift_uses.push_back(u);
      masks.push_back(mask);
    }
    const int full = (1 << sx) - 1;
    for (std::size_t a = 0; a < shift_uses.size(); ++a) {
      if (shift_uses[a].partner != -1 || masks[a] == full) continue;
      for (std::size_t b = a + 1; b < shift_uses.size(); ++b)
        if (shift_uses[b].partner == -1 && masks[b] == (full ^ masks[a])) {
          shift_uses[a].partner = static_cast<std::int64_t>(b);
          shift_uses[b].partner = -2;
          break;
        }
    }
  }

  // One output row (image n, outer position oo) of group gi, output channels of one panel.
  auto row_pass = [&](Scratch& s, std::int64_t row, std::int64_t xb, std::int64_t gi,
                      std::int64_t panel) {
    const std::int64_t oo = row % n_outer;
    const std::int64_t n = row / n_outer;
    const std::int64_t qa = xb * qblock, qb = std::min(qa + qblock, qmax);
    const std::int64_t xlen = qb - qa + cmax - cmin;

    // Outer output position, its phase, and the (tap, input position) combinations in range.
    std::int64_t o[8] = {0}, r[8] = {0}, q[8] = {0};
    outer_position(g, oo, xd, o, r, q);
    std::int64_t ph_outer = 0;
    for (int d = 0; d < xd; ++d) ph_outer = ph_outer * g.stride[d] + r[d];
    s.slot_in.clear();   // xd input indices per slot
    s.slot_tap.clear();  // outer tap index (row-major over the phase's outer tap lists)
    for_each_outer_tap(g, pk, xd, r, q, [&](const std::int64_t* i, std::int64_t tap) {
      for (int d = 0; d < xd; ++d) s.slot_in.push_back(i[d]);
      s.slot_tap.push_back(tap);
    });
    const std::int64_t nslots = static_cast<std::int64_t>(s.slot_tap.size());

    const T* x_n = p.x + n * p.x_strides[0];
    T* y_row = p.y + n * p.y_strides[0];
    for (int d = 0; d < xd; ++d) y_row += o[d] * p.y_strides[sp_axis + d];
    const std::int64_t x0 = qa * sx, x1 = std::min(qb * sx, out_x);
    // Where the micro-kernels store: the output itself, or the block's channels-last row of
    // this panel's channels.
    T* const y_dst = via_row ? s.row.data() - x0 * pk.width : y_row;
    const std::int64_t ys_x = via_row ? pk.width : p.y_strides[sp_axis + xd];
    const std::int64_t ys_c = via_row ? 1 : p.y_strides[c_axis];
    const std::int64_t i0 = qa + cmin;  // input position of buffer column 0

    const std::int64_t co_lo = panel * pk.width, co_hi = std::min(cout_g, co_lo + pk.width);
    // A of slot sl at input position i of the last dim: a_base[slot_off[sl] + i * a_ms].
    const T* const x_g = x_n + gi * cin_g * xs_c;
    const T* const a_base = in_place ? x_g : s.buf.data();
    if (in_place) {
      for (std::int64_t sl = 0; sl < nslots; ++sl) {
        std::int64_t off = 0;
        for (int d = 0; d < xd; ++d) off += s.slot_in[sl * xd + d] * p.x_strides[sp_axis + d];
        s.slot_off[sl] = off;
      }
    }
    {
      for (std::int64_t sl = 0; sl < (in_place ? 0 : nslots); ++sl) {
        std::int64_t in_row = 0;
        for (int d = 0; d < xd; ++d) in_row = in_row * g.input[d] + s.slot_in[sl * xd + d];
        const std::int64_t key = ((n * n_in_outer + in_row) * pk.groups + gi) * nxb + xb;
        // Direct-mapped by the row's position modulo the window per dim: the rows of one output
        // row never collide, and a row entering the window replaces the one that left it (a
        // search over the slots cost kernel^2 per output row for tall kernels).
        std::int64_t slot = 0;
        for (int d = 0; d < xd; ++d) slot = slot * modulus[d] + s.slot_in[sl * xd + d] % modulus[d];
        s.slot_off[sl] = slot * slot_stride - i0 * a_ms;
        if (s.tag[slot] == key) continue;
        s.tag[slot] = key;
        const T* src = x_g;
        for (int d = 0; d < xd; ++d) src += s.slot_in[sl * xd + d] * p.x_strides[sp_axis + d];
        T* dst = s.buf.data() + slot * slot_stride;
        // Columns of the buffer outside the input are the zero halo. Its extent depends only
        // on the block, and copies write only inside it: a slot last filled for the same
        // block still has its zeros.
        const std::int64_t lo = std::clamp<std::int64_t>(-i0, 0, xlen);
        const std::int64_t hi = std::clamp<std::int64_t>(in_x - i0, lo, xlen);
        const std::int64_t ds_x = spatial ? 1 : cin_pitch, ds_c = spatial ? xlen_alloc : 1;
        if (s.halo[slot] != xb) {
          s.halo[slot] = xb;
          for (std::int64_t ci = 0; ci < cin_g; ++ci) {
            T* d = dst + ci * ds_c;
            for (std::int64_t xi = 0; xi < lo; ++xi) d[xi * ds_x] = T(0);
            for (std::int64_t xi = hi; xi < xlen; ++xi) d[xi * ds_x] = T(0);
          }
        }
        // Walk the source along its unit-stride axis (x in channels_first, C in channels_last).
        const T* base = src + i0 * xs_x;
        if (!spatial && xs_x == 1 && ks.transpose) {
          ks.transpose(base + lo, xs_c, dst + lo * cin_pitch, cin_pitch, cin_g, hi - lo, false);
        } else if (spatial && xs_x == 1) {
          // Contiguous rows (channels_first): whole-row copies, and the same row one step
          // further along the outer dim requested now, since the next output rows read it
          // and its lines are a channel stride apart (no hardware prefetcher follows them).
          const std::int64_t nxt = xd > 0 ? p.x_strides[sp_axis + xd - 1] : 0;
          const bool more = xd > 0 && s.slot_in[sl * xd + xd - 1] + 1 < g.input[xd - 1];
          for (std::int64_t ci = 0; ci < cin_g; ++ci) {
            const T* __restrict sp = base + ci * xs_c;
            T* __restrict dp = dst + ci * ds_c;
            std::memcpy(dp + lo, sp + lo, static_cast<std::size_t>(hi - lo) * sizeof(T));
            if (more)
              for (std::int64_t xi = lo; xi < hi; xi += 64 / static_cast<std::int64_t>(sizeof(T)))
                __builtin_prefetch(sp + nxt + xi);
          }
        } else if (!spatial && xs_c == 1) {
          // Channels contiguous (channels_last): each position's channels are one run.
          for (std::int64_t xi = lo; xi < hi; ++xi)
            std::copy_n(base + xi * xs_x, cin_g, dst + xi * cin_pitch);
        } else if (std::abs(xs_x) <= std::abs(xs_c)) {
          // A transposition when the buffer is channels-last: in 16 x 16 tiles, so both sides
          // move whole cache lines.
          constexpr std::int64_t kTile = 16;
          for (std::int64_t c0 = 0; c0 < cin_g; c0 += kTile)
            for (std::int64_t xa = lo; xa < hi; xa += kTile) {
              const std::int64_t c1 = std::min(c0 + kTile, cin_g), xe = std::min(xa + kTile, hi);
              for (std::int64_t ci = c0; ci < c1; ++ci) {
                const T* sp = base + ci * xs_c;
                T* d = dst + ci * ds_c;
                for (std::int64_t xi = xa; xi < xe; ++xi) d[xi * ds_x] = sp[xi * xs_x];
              }
            }
        } else {
          for (std::int64_t xi = lo; xi < hi; ++xi) {
            const T* sp = base + xi * xs_x;
            T* d = dst + xi * ds_x;
            for (std::int64_t ci = 0; ci < cin_g; ++ci) d[ci * ds_c] = sp[ci * xs_c];
          }
        }
      }
      const T* bias_g = p.bias ? p.bias + gi * cout_g : nullptr;
      // Tiny C_out: all phases of the last dim in one call, positions up to the last one that
      // every phase has; the per-phase calls below take the rest.
      std::int64_t q_done = qa;
      if (multi && nslots > 0) {
        const std::int64_t q_all = std::min(qb, ceil_div(out_x - (sx - 1), sx));
        if (q_all > qa) {
          // Written by index into lists sized once (this runs for every output row).
          const std::int64_t nuses = static_cast<std::int64_t>(shift_uses.size());
          const std::int64_t npairs = nslots * nuses;
          s.a_off.resize(static_cast<std::size_t>(npairs));
          s.b_off.resize(static_cast<std::size_t>(npairs * sx));
          s.partner.resize(static_cast<std::size_t>(npairs));
          if (in_place) {
            s.m_lo.resize(static_cast<std::size_t>(npairs));
            s.m_hi.resize(static_cast<std::size_t>(npairs));
          }
          std::int64_t* a_off = s.a_off.data();
          std::int64_t* b_off = s.b_off.data();
          std::int64_t* partner = s.partner.data();
          std::int64_t phase_off[4];
          for (std::int64_t rx = 0; rx < sx; ++rx)
            phase_off[rx] = pk.offset[(gi * pk.phases + ph_outer * sx + rx) * pk.panels];
          for (std::int64_t sl = 0; sl < nslots; ++sl) {
            const std::int64_t first = sl * nuses;
            const std::int64_t tap = s.slot_tap[sl];
            for (std::int64_t ui = 0; ui < nuses; ++ui) {
              const ShiftUse& u = shift_uses[static_cast<std::size_t>(ui)];
              const std::int64_t pr = first + ui;
              a_off[pr] = s.slot_off[sl] + (qa + u.c) * a_ms;
              if (in_place) {
                s.m_lo[static_cast<std::size_t>(pr)] = -(qa + u.c);
                s.m_hi[static_cast<std::size_t>(pr)] = in_x - (qa + u.c);
              }
              for (std::int64_t rx = 0; rx < sx; ++rx)
                b_off[pr * sx + rx] =
                    u.jx[rx] < 0 ? -1
                                 : phase_off[rx] + (tap * dx_taps[rx] + u.jx[rx]) * cin_g * pk.width;
              partner[pr] = u.partner >= 0 ? first + u.partner : u.partner;
            }
          }
          PhaseCall<T> call;
          call.a = a_base;
          call.a_off = s.a_off.data();
          call.m_lo = in_place ? s.m_lo.data() : nullptr;
          call.m_hi = in_place ? s.m_hi.data() : nullptr;
          call.group = in_place ? nuses : 1;
          call.b = pk.data.get();
          call.b_off = s.b_off.data();
          call.partner = s.partner.data();
          call.pairs = npairs;
          call.k = cin_g;
          call.a_ks = a_ks;
          call.b_ld = pk.width;
          call.phases = sx;
          call.c = y_dst + qa * sx * ys_x + gi * cout_g * ys_c;
          call.c_ms = sx * ys_x;
          call.c_ps = ys_x;
          call.c_ns = ys_c;
          call.m = q_all - qa;
          call.n = cout_g;
          call.bias = bias_g;
          if (ks.phase_gemm(call)) q_done = q_all;
        }
      }
      for (std::int64_t rx = 0; rx < sx; ++rx) {
        const std::int64_t nq = rx < out_x ? ceil_div(out_x - rx, sx) : 0;
        const std::int64_t q1 = std::min(qb, nq);
        const std::int64_t qa = q_done;  // the first position no multi-phase call wrote
        if (qa >= q1) continue;
        T* y0 = y_dst + (qa * sx + rx) * ys_x + (via_row ? -co_lo : gi * cout_g) * ys_c;
        const auto& xk = dx.c[rx];
        const std::int64_t xt = static_cast<std::int64_t>(xk.size());
        if (nslots == 0 || xt == 0) {
          for (std::int64_t qq = 0; qq < q1 - qa; ++qq)
            for (std::int64_t co = co_lo; co < co_hi; ++co)
              y0[qq * sx * ys_x + co * ys_c] = bias_g ? bias_g[co] : T(0);
          continue;
        }
        s.a_off.clear();
        s.b_off.clear();
        s.m_lo.clear();
        s.m_hi.clear();
        for (std::int64_t sl = 0; sl < nslots; ++sl)
          for (std::int64_t jx = 0; jx < xt; ++jx) {
            s.a_off.push_back(s.slot_off[sl] + (qa + xk[jx]) * a_ms);
            s.b_off.push_back((s.slot_tap[sl] * xt + jx) * cin_g * pk.width);
            if (in_place) {
              s.m_lo.push_back(-(qa + xk[jx]));
              s.m_hi.push_back(in_x - (qa + xk[jx]));
            }
          }
        GemmCall<T> call;
        call.a = a_base;
        call.a_off = s.a_off.data();
        call.m_lo = in_place ? s.m_lo.data() : nullptr;
        call.m_hi = in_place ? s.m_hi.data() : nullptr;
        call.b_off = s.b_off.data();
        call.pairs = static_cast<std::int64_t>(s.a_off.size());
        call.k = cin_g;
        call.a_ks = a_ks;
        call.a_ms = a_ms;
        call.b_ld = pk.width;
        call.c_ms = sx * ys_x;
        call.c_ns = ys_c;
        call.m = q1 - qa;
        const std::int64_t ph = ph_outer * sx + rx;
        call.b = pk.data.get() + pk.offset[(gi * pk.phases + ph) * pk.panels + panel];
        call.c = y0 + co_lo * ys_c;
        call.n = co_hi - co_lo;
        call.bias = bias_g ? bias_g + co_lo : nullptr;
        (spatial ? ks.spatial_gemm : ks.channel_gemm)(call);
      }
      if (via_row) {
        const std::int64_t yx = p.y_strides[sp_axis + xd], yc = p.y_strides[c_axis];
        if (yx == 1 && ks.transpose) {
          ks.transpose(s.row.data(), pk.width, y_row + (gi * cout_g + co_lo) * yc + x0, yc,
                       x1 - x0, co_hi - co_lo, true);
        } else {
          // In 16 x 16 tiles: whole cache lines on both sides.
          constexpr std::int64_t kTile = 16;
          for (std::int64_t ca = co_lo; ca < co_hi; ca += kTile)
            for (std::int64_t xa = x0; xa < x1; xa += kTile) {
              const std::int64_t ce = std::min(ca + kTile, co_hi), xe = std::min(xa + kTile, x1);
              for (std::int64_t co = ca; co < ce; ++co) {
                T* yp = y_row + (gi * cout_g + co) * yc;
                const T* rp = s.row.data() + (co - co_lo);
                for (std::int64_t x = xa; x < xe; ++x) yp[x * yx] = rp[(x - x0) * pk.width];
              }
            }
        }
      }
    }
  };

  auto body = [&](std::int64_t item, int slot_id) {
    Scratch& s = scratch[static_cast<std::size_t>(slot_id)];
    if (spatial) {
      // Blocks outermost, so a run of consecutive items walks down the rows of one block and
      // each new row finds most of its input rows in the thread's cache.
      for (std::int64_t gi = 0; gi < pk.groups; ++gi) row_pass(s, item % rows, item / rows, gi, 0);
      return;
    }
    const std::int64_t part = item % panel_parts;
    std::int64_t rest = item / panel_parts;
    const std::int64_t xb = rest % nxb;
    rest /= nxb;
    const std::int64_t line = rest / blocks_per_line, blk = rest % blocks_per_line;
    const std::int64_t row0 = line * line_len + blk * block_rows;
    const std::int64_t row1 = std::min(row0 + block_rows, (line + 1) * line_len);
    const std::int64_t pa = part * panels_per_item, pb = std::min(pk.panels, pa + panels_per_item);
    // A block's rows by phase of the last outer dim: rows of one phase use that phase's part
    // of the panel's weights only, so the part that must stay in cache while the block's rows
    // go by is 1 / stride of the panel (DCGAN float64: 512 KiB of a 1 MiB panel, beside the
    // block's input rows in a 1 MiB L2).
    const std::int64_t sy = xd >= 1 ? g.stride[xd - 1] : 1;
    for (std::int64_t gi = 0; gi < pk.groups; ++gi)
      for (std::int64_t panel = pa; panel < pb; ++panel)
        for (std::int64_t ry = 0; ry < sy; ++ry)
          for (std::int64_t row = row0; row < row1; ++row)
            if ((row % line_len) % sy == ry) row_pass(s, row, xb, gi, panel);
  };
  // Runs of consecutive items per thread: consecutive rows share input rows (see above).
  detail::parallel_for(items, threads, body, detail::Schedule::runs);
  return scratch_bytes;
}

template <class T>
bool shuffle_applies(const Problem<T>& p, const Packed<T>& pk) {
  const Geometry& g = *p.g;
  if (pk.algo != Algo::channel) return false;
  bool single = true;
  for (int d = 0; d < g.rank; ++d) {
    if (g.dilation[d] != 1 || g.pad_lo[d] != 0 || g.pad_hi[d] != 0 || g.output_padding[d] != 0)
      return false;
    if (g.kernel[d] != g.stride[d] && g.input[d] != 1) return false;
    single = single && g.input[d] == 1;
  }
  const int c_axis = g.data_format == DataFormat::channels_first ? 1 : g.rank + 1;
  return p.x_strides[c_axis] == 1 && (single || g.data_format == DataFormat::channels_last);
}

template <class T>
std::size_t run_shuffle(const Problem<T>& p, const Packed<T>& pk, const KernelSet<T>& ks,
                        int threads) {
  runtime::note_kernel("phase_shuffle");
  const Geometry& g = *p.g;
  const int rank = g.rank;
  const int xd = rank - 1;
  const bool cf = g.data_format == DataFormat::channels_first;
  const int c_axis = cf ? 1 : rank + 1;
  const int sp_axis = cf ? 2 : 1;
  // The GEMM's M runs along the last input dim, or along the batch when that dim is 1 wide
  // (DCGAN's 1x1 -> 4x4 layer: M = images, one call per output position).
  const bool m_batch = g.input[xd] == 1;
  const std::int64_t m_len = m_batch ? g.batch : g.input[xd];
  const std::int64_t a_ms = m_batch ? p.x_strides[0] : p.x_strides[sp_axis + xd];
  const std::int64_t c_ms =
      m_batch ? p.y_strides[0] : g.stride[xd] * p.y_strides[sp_axis + xd];
  // Items: (image unless M is the batch) x (input position over the other dims) x tap, taps
  // innermost so one input row serves all its taps from cache.
  const int outer_dims = m_batch ? rank : xd;
  std::int64_t n_pos = 1, n_taps = 1;
  for (int d = 0; d < outer_dims; ++d) n_pos *= g.input[d];
  for (int d = 0; d < rank; ++d) n_taps *= g.kernel[d];
  const std::int64_t n_img = m_batch ? 1 : g.batch;
  const std::int64_t items = n_img * n_pos * n_taps;
  const std::int64_t cin_g = pk.cin_g, cout_g = pk.cout_g;
  std::int64_t zero_off = 0;
  // The first tap of an input row reads it from memory when the input is beyond L2; the
  // other taps find it in cache.
  double x_bytes = static_cast<double>(g.batch * g.in_channels * sizeof(T));
  for (int d = 0; d < rank; ++d) x_bytes *= static_cast<double>(g.input[d]);
  const bool x_in_memory = x_bytes > 2.0 * 1024 * 1024;
  auto body = [&](std::int64_t item, int) {
    std::int64_t tap = item % n_taps, rest = item / n_taps;
    const bool first_tap = tap == 0;
    const std::int64_t pos = rest % n_pos, n = rest / n_pos;
    const T* xa = p.x + n * p.x_strides[0];
    T* ya = p.y + n * p.y_strides[0];
    std::int64_t ph = 0, t = 0;
    {
      std::int64_t kk[9] = {0}, rem = tap, prem = pos;
      for (int d = rank - 1; d >= 0; --d) {
        kk[d] = rem % g.kernel[d];
        rem /= g.kernel[d];
      }
      for (int d = outer_dims - 1; d >= 0; --d) {
        const std::int64_t i = prem % g.input[d];
        prem /= g.input[d];
        xa += i * p.x_strides[sp_axis + d];
        ya += i * g.stride[d] * p.y_strides[sp_axis + d];
      }
      for (int d = 0; d < rank; ++d) {
        const std::int64_t r = kk[d] % g.stride[d];
        ph = ph * g.stride[d] + r;
        t = t * static_cast<std::int64_t>(pk.dims[d].k[r].size()) + kk[d] / g.stride[d];
        ya += kk[d] * p.y_strides[sp_axis + d];
      }
    }
    GemmCall<T> call;
    call.a_off = &zero_off;
    call.b_off = &zero_off;
    call.pairs = 1;
    call.k = cin_g;
    call.a_ks = p.x_strides[c_axis];
    call.a_ms = a_ms;
    call.b_ld = pk.width;
    call.c_ms = c_ms;
    call.c_ns = p.y_strides[c_axis];
    call.m = m_len;
    for (std::int64_t gi = 0; gi < pk.groups; ++gi) {
      call.a = xa + gi * cin_g * p.x_strides[c_axis];
      for (std::int64_t panel = 0; panel < pk.panels; ++panel) {
        call.b = pk.data.get() + pk.offset[(gi * pk.phases + ph) * pk.panels + panel] +
                 t * cin_g * pk.width;
        const std::int64_t co0 = gi * cout_g + panel * pk.width;
        call.c = ya + co0 * p.y_strides[c_axis];
        call.n = std::min(pk.width, cout_g - panel * pk.width);
        call.bias = p.bias ? p.bias + co0 : nullptr;
        call.prefetch_a = x_in_memory && first_tap && panel == 0;
        ks.channel_gemm(call);
      }
    }
  };
  threads = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, items)));
  // Runs of consecutive items per thread: a row's taps on one thread find it in that core's
  // cache (U-Net 128->64 at 128x128 NHWC, two threads: about 175 -> 185 GFLOP/s). With M along
  // the batch an item is a tap of the whole input, and single items measured faster.
  detail::parallel_for(items, threads, body,
                       m_batch ? detail::Schedule::items : detail::Schedule::runs);
  return 0;
}

template struct Packed<float>;
template struct Packed<double>;
template Packed<float> pack(const Geometry&, const float*, const std::vector<std::int64_t>&, Algo,
                            std::int64_t, int, TransposeFn<float>, bool);
template Packed<double> pack(const Geometry&, const double*, const std::vector<std::int64_t>&,
                             Algo, std::int64_t, int, TransposeFn<double>, bool);
template std::size_t run(const Problem<float>&, const Packed<float>&, const KernelSet<float>&,
                         int);
template bool shuffle_applies(const Problem<float>&, const Packed<float>&);
template bool shuffle_applies(const Problem<double>&, const Packed<double>&);
template std::size_t run_shuffle(const Problem<float>&, const Packed<float>&,
                                 const KernelSet<float>&, int);
template std::size_t run_shuffle(const Problem<double>&, const Packed<double>&,
                                 const KernelSet<double>&, int);
template std::size_t run(const Problem<double>&, const Packed<double>&,
                         const KernelSet<double>&, int);

}  // namespace tconv::kernels::phase
