#include "kernels/phase.hpp"

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <cstring>

#include "buffer.hpp"
#include "finite.hpp"
#include "kernels/phase_tiling.hpp"
#include "kernels/weight_blocks.hpp"
#include "runtime.hpp"
#include "threadpool.hpp"

namespace tconv::kernels::phase {
namespace {

std::int64_t floor_mod(std::int64_t a, std::int64_t b) { return ((a % b) + b) % b; }
std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// Output position `oo` of the first `dims` dims (row-major): per dim its coordinate o, phase r
// and phase row q (o = q * stride + r).
void outer_position(const Geometry& g, std::int64_t oo, int dims, std::int64_t* o, std::int64_t* r,
                    std::int64_t* q) {
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

template <class T>
bool Packed<T>::matches(const Geometry& g) const {
  return packed_matches(g, kernel, stride, dilation, pad_lo) && g.groups == groups &&
         g.in_channels / g.groups == cin_g && g.out_channels / g.groups == cout_g &&
         choose_algo(g) == algo;
}

Algo choose_algo(const Geometry& g) {
  // Output channels as the vector axis wastes most lanes below 5 channels per group: vectorise
  // over output positions instead.
  return g.out_channels / g.groups <= 4 ? Algo::positions : Algo::channel;
}

bool grid_layout_fits(const Geometry& g) {
  if (choose_algo(g) != Algo::positions || g.rank < 2) return false;
  const std::int64_t sy = g.stride[g.rank - 2], sx = g.stride[g.rank - 1];
  const std::int64_t n = g.out_channels / g.groups;
  return sy >= 2 && sy <= 4 && sx >= 2 && sx <= 4 && n >= 1 && n * sy * sx <= 24;
}

namespace {

// A [C_in/g][C_out/g] block of weights: element (ci, co) at base[ci * ld_ci + co * ld_co].
template <class T>
struct WeightBlock {
  const T* base;
  std::int64_t ld_ci, ld_co;
};

// dst[ci * ld + co] = the block's (ci, co) for ci < rows, co < N.
template <int N, class T>
void copy_block_rows_n(const WeightBlock<T>& src, std::int64_t rows, T* dst, std::int64_t ld) {
  for (std::int64_t ci = 0; ci < rows; ++ci)
    for (int co = 0; co < N; ++co) dst[ci * ld + co] = src.base[ci * src.ld_ci + co * src.ld_co];
}

// The same for n columns, 1 <= n <= 4 (grid_layout_fits: at most 4 output channels per
// group), as loops of known length, which the compiler unrolls (the pack runs on every
// functional call).
template <class T>
void copy_block_rows(const WeightBlock<T>& src, std::int64_t rows, std::int64_t n, T* dst,
                     std::int64_t ld) {
  assert(n >= 1 && n <= 4);
  switch (n) {
    case 1:
      return copy_block_rows_n<1>(src, rows, dst, ld);
    case 2:
      return copy_block_rows_n<2>(src, rows, dst, ld);
    case 3:
      return copy_block_rows_n<3>(src, rows, dst, ld);
    default:
      return copy_block_rows_n<4>(src, rows, dst, ld);
  }
}

// The GridCall layout of pk's weights (see Packed::grid_data); block(gi, ph, tap) gives the
// weights of tap `tap` of phase ph in group gi (from the per-phase blocks or the weights as
// passed).
template <class T, class Block>
void pack_grid(Packed<T>& pk, Block block) {
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
  const std::int64_t cell = pk.cin_g * RY * PH * CO;
  const std::int64_t per_tap = pk.row_shifts * pk.col_shifts * cell;
  pk.grid_offset.resize(static_cast<std::size_t>(pk.groups * outer_phases));
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
      pk.grid_offset[gi * outer_phases + po] = at;
      at += outer_taps[po] * per_tap;
    }
  pk.grid_size = static_cast<std::size_t>(at);
  pk.grid_data = detail::make_buffer<T>(pk.grid_size, "the weights packed for the grid kernel",
                                        detail::kWeightsAdvice);
  T* const out = pk.grid_data.get();
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
                const std::int64_t tap = (t * static_cast<std::int64_t>(dy.c[ry].size()) + jy) *
                                             static_cast<std::int64_t>(dx.c[rx].size()) +
                                         jx;
                const WeightBlock<T> src = block(gi, ph, tap);
                T* dst = out + pk.grid_offset[gi * outer_phases + po] + t * per_tap +
                         ((dy.c[ry][jy] - pk.row_shift_lo) * pk.col_shifts +
                          (dx.c[rx][jx] - pk.col_shift_lo)) *
                             cell +
                         (ry * PH + rx) * CO;
                copy_block_rows(src, pk.cin_g, CO, dst, RY * PH * CO);
              }
}

// A (phase, tap of the phase) of the packed weights: its weight offset along the kernel axes.
struct TapRef {
  std::int64_t ph, t, w_off;
};

// The layout of pk's blocks (see Packed) for this layer: its fields, offsets and buffer, and
// every (phase, tap) in packing order with its weight offset (w_k_axis: the first kernel axis
// of the weight strides ws); taps_of: the taps per phase.
template <class T>
std::vector<TapRef> layout(Packed<T>& pk, const Geometry& g, const std::vector<std::int64_t>& ws,
                           Algo algo, std::int64_t nr, int w_k_axis,
                           std::vector<std::int64_t>& taps_of, bool blocks = true) {
  const int rank = g.rank;
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
  std::int64_t total = 0;
  taps_of.assign(static_cast<std::size_t>(pk.phases), 0);
  for (std::int64_t ph = 0; ph < pk.phases; ++ph) {
    const auto r = phase_residues(ph, pk.dims);
    std::int64_t t = 1;
    for (int d = 0; d < rank; ++d) t *= static_cast<std::int64_t>(pk.dims[d].k[r[d]].size());
    taps_of[ph] = t;
    total += t;
  }
  pk.offset.resize(static_cast<std::size_t>(pk.groups * pk.phases * pk.panels));
  pk.size =
      blocks ? static_cast<std::size_t>(pk.groups * total * pk.cin_g * pk.width * pk.panels) : 0;
  if (blocks)
    pk.data = detail::make_buffer<T>(pk.size, "the weights packed for the kernels",
                                     detail::kWeightsAdvice);
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
  return taps;
}

// Each (group, phase, panel, tap of the phase) block is a [C_in/g][width] matrix: row ci holds
// `width` consecutive output channels of input channel ci, zero-padded past C_out/g. Weight
// element (group gi, input channel ci, output channel co of the group, tap i) lives at
// w + (gi * cin_g + ci) * s_ci + co * s_co + taps[i].w_off. How to fill the blocks at memory
// speed depends on which weight axis is the contiguous one.
template <class T>
struct PackSource {
  const T* w;
  std::int64_t s_ci, s_co;
  const std::vector<TapRef>* taps;
  T* block(Packed<T>& pk, std::int64_t gi, std::int64_t i, std::int64_t panel) const {
    const TapRef& tap = (*taps)[static_cast<std::size_t>(i)];
    return pk.data.get() + pk.offset[(gi * pk.phases + tap.ph) * pk.panels + panel] +
           tap.t * pk.cin_g * pk.width;
  }
};

// PyTorch's (C_in, C_out/g, *kernel): one input channel's weights, every output channel and
// tap, are one contiguous run. Read it in order into a [row][panel][channel of the run][width]
// buffer (small: it stays in L2), so that each packed block's rows for a run of input channels
// are one contiguous piece there as in the block, copied whole. When the kernel axes are dense
// and innermost, the run is a [C_out/g][kernel elements] matrix and the ISA's transpose turns
// it around in registers (a scalar gather moves about one element per nanosecond: 4 ms for
// DCGAN's 8 MiB).
template <class T>
void pack_channel_runs(Packed<T>& pk, const Geometry& g, const PackSource<T>& src,
                       const std::vector<std::int64_t>& ws, int w_k_axis, int threads,
                       TransposeFn<T> transpose, FiniteFn<T> finite_fn) {
  const std::vector<TapRef>& taps = *src.taps;
  const std::int64_t ntaps = static_cast<std::int64_t>(taps.size());
  const std::int64_t cols = pk.panels * pk.width;  // C_out/g rounded up to whole panels
  std::int64_t kernel_elems = 1;
  bool dense_kernel = transpose != nullptr;
  for (int d = g.rank - 1; d >= 0; --d) {
    if (ws[w_k_axis + d] != kernel_elems) dense_kernel = false;
    kernel_elems *= g.kernel[d];
  }
  dense_kernel = dense_kernel && src.s_co >= kernel_elems;
  const std::int64_t tmp_rows = dense_kernel ? kernel_elems : ntaps;
  // Input channels in runs of kRun per item: each packed block then gets kRun consecutive rows
  // (2-4 KiB) in one copy rather than one 64-128 B row at a time.
  // (At most 256 KiB of staging per thread.)
  const std::int64_t kRun = std::clamp<std::int64_t>(
      (std::int64_t(256) << 10) / (tmp_rows * cols * static_cast<std::int64_t>(sizeof(T))), 1, 16);
  const std::int64_t runs = ceil_div(pk.cin_g, kRun);
  // One (row, panel) of the buffer, a line longer than its kRun * width values: rows a 4 KiB
  // multiple apart would share an L1 set, and the transpose writes 8-16 of them at once.
  const std::int64_t piece = kRun * pk.width + std::int64_t(64) / std::int64_t(sizeof(T));
  // Columns past C_out/g (last panel) stay the zeros they start as.
  std::vector<std::vector<T>> tmp(static_cast<std::size_t>(threads));
  for (auto& t : tmp) t.assign(static_cast<std::size_t>(tmp_rows * pk.panels * piece), T(0));
  std::vector<char> finite(static_cast<std::size_t>(threads), 1);
  detail::parallel_for(pk.groups * runs, threads, [&](std::int64_t item, int slot) {
    const std::int64_t gi = item / runs, c0 = item % runs * kRun;
    const std::int64_t c1 = std::min(c0 + kRun, pk.cin_g);
    T* const t0 = tmp[static_cast<std::size_t>(slot)].data();
    for (std::int64_t ci = c0; ci < c1; ++ci) {
      const T* w = src.w + (gi * pk.cin_g + ci) * src.s_ci;
      for (std::int64_t panel = 0; panel < pk.panels; ++panel) {
        const std::int64_t co0 = panel * pk.width;
        const std::int64_t jn = std::min(pk.width, pk.cout_g - co0);
        const T* wp = w + co0 * src.s_co;
        // t[(row * panels + panel) * piece + (ci - c0) * width + j] = weight (ci, co0 + j, row)
        T* t = t0 + panel * piece + (ci - c0) * pk.width;
        const std::int64_t ld = pk.panels * piece;
        if (dense_kernel) {
          transpose(wp, src.s_co, t, ld, jn, kernel_elems, true);
        } else {
          for (std::int64_t j = 0; j < jn; ++j)
            for (std::int64_t i = 0; i < ntaps; ++i)
              t[i * ld + j] = wp[j * src.s_co + taps[i].w_off];
        }
      }
    }
    // The staged run is in cache now: checking it costs little next to a second pass over
    // the weights (values left from an earlier run were checked then).
    const std::int64_t staged = tmp_rows * pk.panels * piece;
    finite[static_cast<std::size_t>(slot)] &= finite_fn(t0, staged) ? 1 : 0;
    const std::size_t bytes = static_cast<std::size_t>((c1 - c0) * pk.width) * sizeof(T);
    const std::int64_t pieces = ntaps * pk.panels;
    auto dst = [&](std::int64_t n) {
      return src.block(pk, gi, n / pk.panels, n % pk.panels) + c0 * pk.width;
    };
    for (std::int64_t n = 0; n < pieces; ++n) {
      // Ask for the next piece's lines ahead: it lies in another block of a buffer larger than
      // L2, and the copies otherwise stall on each line's fetch before the write.
      if (n + 1 < pieces) {
        const char* next = reinterpret_cast<const char*>(dst(n + 1));
        for (std::size_t b = 0; b < bytes; b += 64) __builtin_prefetch(next + b, 1);
      }
      const std::int64_t i = n / pk.panels, panel = n % pk.panels;
      const std::int64_t row = dense_kernel ? taps[i].w_off : i;
      std::memcpy(dst(n), t0 + (row * pk.panels + panel) * piece, bytes);
    }
  });
  pk.finite = std::all_of(finite.begin(), finite.end(), [](char f) { return f != 0; });
}

// Keras's (*kernel, C_out/g, C_in) and other layouts: per (group, tap, panel), in tiles of
// 16 input channels so that both the reads (along the smaller stride) and the row writes
// stay within a few cache lines. With the input channels dense (Keras) a block is the
// transpose of a [width][C_in/g] matrix, which the ISA's transpose turns in registers.
template <class T>
void pack_tiles(Packed<T>& pk, const PackSource<T>& src, int threads, TransposeFn<T> transpose,
                FiniteFn<T> finite_fn) {
  constexpr std::int64_t kTile = 16;
  const std::int64_t ntaps = static_cast<std::int64_t>(src.taps->size());
  const std::int64_t s_ci = src.s_ci, s_co = src.s_co;
  std::vector<char> finite(static_cast<std::size_t>(threads), 1);
  detail::parallel_for(pk.groups * ntaps * pk.panels, threads, [&](std::int64_t item, int slot) {
    const std::int64_t panel = item % pk.panels, i = (item / pk.panels) % ntaps,
                       gi = item / (pk.panels * ntaps);
    const std::int64_t jn = std::min(pk.width, pk.cout_g - panel * pk.width);
    const T* w = src.w + gi * pk.cin_g * s_ci + panel * pk.width * s_co +
                 (*src.taps)[static_cast<std::size_t>(i)].w_off;
    T* dst = src.block(pk, gi, i, panel);
    const bool ci_inner = std::abs(s_ci) < std::abs(s_co);
    if (transpose != nullptr && s_ci == 1 && s_co >= pk.cin_g) {
      transpose(w, s_co, dst, pk.width, jn, pk.cin_g, true);
      for (std::int64_t ci = 0; ci < pk.cin_g && jn < pk.width; ++ci)
        std::fill(dst + ci * pk.width + jn, dst + (ci + 1) * pk.width, T(0));
      finite[static_cast<std::size_t>(slot)] &= finite_fn(dst, pk.cin_g * pk.width) ? 1 : 0;
      return;
    }
    for (std::int64_t c0 = 0; c0 < pk.cin_g; c0 += kTile) {
      const std::int64_t c1 = std::min(c0 + kTile, pk.cin_g);
      if (ci_inner) {
        for (std::int64_t j = 0; j < jn; ++j)
          for (std::int64_t ci = c0; ci < c1; ++ci)
            dst[ci * pk.width + j] = w[ci * s_ci + j * s_co];
      } else {
        for (std::int64_t ci = c0; ci < c1; ++ci)
          for (std::int64_t j = 0; j < jn; ++j) dst[ci * pk.width + j] = w[ci * s_ci + j * s_co];
      }
      // Columns past C_out/g (last panel) are zeros the kernel multiplies but never stores.
      for (std::int64_t ci = c0; ci < c1; ++ci)
        std::fill(dst + ci * pk.width + jn, dst + (ci + 1) * pk.width, T(0));
      finite[static_cast<std::size_t>(slot)] &=
          finite_fn(dst + c0 * pk.width, (c1 - c0) * pk.width) ? 1 : 0;
    }
  });
  pk.finite = std::all_of(finite.begin(), finite.end(), [](char f) { return f != 0; });
}

}  // namespace

// The joint layout (see Packed::joint_data) from the per-phase blocks, where it applies.
template <class T>
void pack_joint(Packed<T>& pk, const Geometry& g) {
  const int xd = g.rank - 1;
  const std::int64_t sx = g.stride[xd];
  // Only channels_first outputs go through the staged rows that read it (see run).
  if (g.data_format != DataFormat::channels_first || pk.algo != Algo::channel || sx < 2 ||
      g.kernel[xd] != sx || g.dilation[xd] != 1 || g.pad_lo[xd] != 0 || pk.width != pk.cout_g ||
      pk.panels != 1)
    return;
  constexpr std::int64_t kPanelMultiple = 32;  // every ISA's full panel divides it
  const std::int64_t cols = sx * pk.cout_g, cin_g = pk.cin_g, w = pk.width;
  pk.joint_ld = ceil_div(cols, kPanelMultiple) * kPanelMultiple;
  const std::int64_t outer = pk.phases / sx;
  std::vector<std::int64_t> taps(static_cast<std::size_t>(outer));
  std::int64_t total = 0;
  for (std::int64_t po = 0; po < outer; ++po) {
    const auto r = phase_residues(po * sx, pk.dims);
    std::int64_t t = 1;
    for (int d = 0; d < xd; ++d) t *= static_cast<std::int64_t>(pk.dims[d].k[r[d]].size());
    taps[static_cast<std::size_t>(po)] = t;
    total += t;
  }
  pk.joint_size = static_cast<std::size_t>(pk.groups * total * cin_g * pk.joint_ld);
  pk.joint_data = detail::make_buffer<T>(pk.joint_size, "the weights packed for the kernels",
                                         detail::kWeightsAdvice);
  pk.joint_offset.resize(static_cast<std::size_t>(pk.groups * outer));
  std::int64_t at = 0;
  for (std::int64_t gi = 0; gi < pk.groups; ++gi)
    for (std::int64_t po = 0; po < outer; ++po) {
      pk.joint_offset[static_cast<std::size_t>(gi * outer + po)] = at;
      const std::int64_t rows = taps[static_cast<std::size_t>(po)] * cin_g;
      T* dst = pk.joint_data.get() + at;
      for (std::int64_t rx = 0; rx < sx; ++rx) {
        const T* src = pk.data.get() + pk.offset[(gi * pk.phases + po * sx + rx) * pk.panels];
        for (std::int64_t k = 0; k < rows; ++k)
          std::copy_n(src + k * w, pk.cout_g, dst + k * pk.joint_ld + rx * pk.cout_g);
      }
      for (std::int64_t k = 0; k < rows; ++k)
        std::fill(dst + k * pk.joint_ld + cols, dst + (k + 1) * pk.joint_ld, T(0));
      at += rows * pk.joint_ld;
    }
}

template <class T>
Packed<T> pack(const Geometry& g, const T* w, const std::vector<std::int64_t>& ws, Algo algo,
               std::int64_t nr, int threads, TransposeFn<T> transpose, bool grid_layout,
               FiniteFn<T> finite) {
  const bool cf = g.data_format == DataFormat::channels_first;
  const int w_cin_axis = cf ? 0 : g.rank + 1;
  const int w_cout_axis = cf ? 1 : g.rank;
  const int w_k_axis = cf ? 2 : 0;
  Packed<T> pk;
  // Owned here, as before the pack was cut up: where the staging buffers land on the heap
  // moved DCGAN's 100 -> 512 layer's pack by 5 %.
  std::vector<std::int64_t> taps_of;
  const std::vector<TapRef> taps = layout(pk, g, ws, algo, nr, w_k_axis, taps_of);
  const PackSource<T> src{w, ws[w_cin_axis], ws[w_cout_axis], &taps};
  threads = std::max(1, threads);
  if (finite == nullptr)
    finite = [](const T* p, std::int64_t n) { return detail::finite_run(p, n); };
  if (std::abs(src.s_ci) > 1 && std::abs(src.s_co) > 1)
    pack_channel_runs(pk, g, src, ws, w_k_axis, threads, transpose, finite);
  else
    pack_tiles(pk, src, threads, transpose, finite);
  if (grid_layout && algo == Algo::positions && grid_layout_fits(g))
    pack_grid(pk, [&](std::int64_t gi, std::int64_t ph, std::int64_t tap) {
      return WeightBlock<T>{
          pk.data.get() + pk.offset[(gi * pk.phases + ph) * pk.panels] + tap * pk.cin_g * pk.width,
          pk.width, 1};
    });
  pack_joint(pk, g);
  return pk;
}

template <class T>
Packed<T> pack_grid_only(const Geometry& g, const T* w, const std::vector<std::int64_t>& ws,
                         FiniteFn<T> finite) {
  const bool cf = g.data_format == DataFormat::channels_first;
  Packed<T> pk;
  std::vector<std::int64_t> taps_of;
  const std::vector<TapRef> taps =
      layout(pk, g, ws, Algo::positions, 0, cf ? 2 : 0, taps_of, /*blocks=*/false);
  // taps holds each phase's taps in order: phase ph's first is at first_tap[ph].
  std::vector<std::int64_t> first_tap(static_cast<std::size_t>(pk.phases), 0);
  for (std::int64_t ph = 1; ph < pk.phases; ++ph)
    first_tap[ph] = first_tap[ph - 1] + taps_of[ph - 1];
  const std::int64_t s_ci = ws[cf ? 0 : g.rank + 1], s_co = ws[cf ? 1 : g.rank];
  pack_grid(pk, [&](std::int64_t gi, std::int64_t ph, std::int64_t tap) {
    return WeightBlock<T>{w + gi * pk.cin_g * s_ci + taps[first_tap[ph] + tap].w_off, s_ci, s_co};
  });
  // The layout holds every weight the grid kernel reads, and zeros.
  const auto n = static_cast<std::int64_t>(pk.grid_size);
  pk.finite = finite ? finite(pk.grid_data.get(), n) : detail::finite_run(pk.grid_data.get(), n);
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

// One thread's lists for run_grid: the outer taps in range (input offset, tap index) and the
// call's pairs (see GridCall), with input offsets from the item's row; and what they were
// made for (the outer row, block and row shifts in range): most items reuse them.
struct GridScratch {
  std::vector<std::int64_t> a_off, m_lo, m_hi, b_off, rm, cm, outer_off, outer_tap;
  std::int64_t o[8] = {0};
  std::int64_t po = 0, oo = -1, xb = -1, ry_lo = 0, ry_hi = 0;
};

// Per shift (lo + index) of the dim, the phases with a tap there, as a bit mask.
std::vector<std::int64_t> shift_masks(const DimPhases& d, std::int64_t lo, std::int64_t shifts) {
  std::vector<std::int64_t> mask(static_cast<std::size_t>(shifts), 0);
  for (std::int64_t r = 0; r < d.stride; ++r)
    for (auto c : d.c[r]) mask[c - lo] |= std::int64_t(1) << r;
  return mask;
}

// Every phase of the last two dims at once (GridCall), the input read in place: an item is
// one input row position qy of the dim before the last (its sy output rows), for one image,
// one position of each outer dim and one block of the last dim.
template <class T>
class GridDriver {
 public:
  GridDriver(const Problem<T>& p, const Packed<T>& pk, const KernelSet<T>& ks, int threads)
      : p_(p), g_(*p.g), pk_(pk), ks_(ks), yd_(g_.rank - 2), xd_(g_.rank - 1) {
    const bool cf = g_.data_format == DataFormat::channels_first;
    c_axis_ = cf ? 1 : g_.rank + 1;
    sp_axis_ = cf ? 2 : 1;
    sy_ = g_.stride[yd_];
    sx_ = g_.stride[xd_];
    qy_max_ = ceil_div(g_.output[yd_], sy_);
    qmax_ = ceil_div(g_.output[xd_], sx_);
    for (int d = 0; d < yd_; ++d) {
      n_outer_ *= g_.output[d];
      outer_phases_ *= g_.stride[d];
    }
    row_mask_ = shift_masks(pk.dims[yd_], pk.row_shift_lo, pk.row_shifts);
    col_mask_ = shift_masks(pk.dims[xd_], pk.col_shift_lo, pk.col_shifts);
    group_ = used_col_shifts(pk);
    rows_ = g_.batch * n_outer_ * qy_max_;
    // Enough items for the threads to balance, blocks of whole vectors of 32 positions or more.
    std::int64_t nxb = 1;
    if (threads > 1 && rows_ < tiling::kItemsPerThread * threads)
      nxb = std::max<std::int64_t>(1, std::min(ceil_div(tiling::kItemsPerThread * threads, rows_),
                                               qmax_ / tiling::kGridMinBlock));
    qblock_ =
        ceil_div(ceil_div(qmax_, nxb), tiling::kGridBlockMultiple) * tiling::kGridBlockMultiple;
    items_ = rows_ * ceil_div(qmax_, qblock_);
    for (int d = 0; d < yd_; ++d) {
      std::size_t m = 0;
      for (const auto& k : pk.dims[d].k) m = std::max(m, k.size());
      max_outer_ *= std::min(static_cast<std::int64_t>(m), g_.input[d]);  // as max_sources in run()
    }
    max_pairs_ = max_outer_ * pk.row_shifts * group_;
    // Inputs well beyond L2 come from L3 or memory, their channel rows a plane apart where no
    // hardware prefetcher follows: the kernel fetches the next item's new row ahead. Inputs
    // that stay in cache would only pay for the extra instructions.
    double in_bytes = static_cast<double>(g_.batch * g_.in_channels * sizeof(T));
    for (int d = 0; d < g_.rank; ++d) in_bytes *= static_cast<double>(g_.input[d]);
    prefetch_rows_ = in_bytes >= tiling::kPrefetchInputBytes;
  }

  std::int64_t items() const { return items_; }
  double per_thread_bytes() const {
    return static_cast<double>(6 * max_pairs_ + 2 * max_outer_) *
           static_cast<double>(sizeof(std::int64_t));
  }
  void init_scratch(GridScratch& s) const {
    for (auto* v : {&s.a_off, &s.m_lo, &s.m_hi, &s.b_off, &s.rm, &s.cm})
      v->reserve(static_cast<std::size_t>(max_pairs_));
    s.outer_off.reserve(static_cast<std::size_t>(max_outer_));
    s.outer_tap.reserve(static_cast<std::size_t>(max_outer_));
  }

  // `grid`: the thread's copy of pk's grid_data (the same layout).
  void run_item(GridScratch& s, std::int64_t item, const T* grid) const {
    const std::int64_t xb = item / rows_;
    std::int64_t rest = item % rows_;
    const std::int64_t qy = rest % qy_max_;
    rest /= qy_max_;
    const std::int64_t oo = rest % n_outer_, n = rest / n_outer_;
    const std::int64_t qa = xb * qblock_, qb = std::min(qa + qblock_, qmax_);
    // The row shifts whose input row exists: a range, the same for every row but the edges.
    const std::int64_t iy0 = qy + pk_.row_shift_lo;
    const std::int64_t ry_lo = std::max<std::int64_t>(0, -iy0);
    const std::int64_t ry_hi = std::min(pk_.row_shifts, g_.input[yd_] - iy0);
    if (oo != s.oo) {
      s.po = outer_taps(s, oo, s.o);
      s.xb = -1;
    }
    if (oo != s.oo || xb != s.xb || ry_lo != s.ry_lo || ry_hi != s.ry_hi) {
      pairs(s, ry_lo, ry_hi, qa);
      s.oo = oo;
      s.xb = xb;
      s.ry_lo = ry_lo;
      s.ry_hi = ry_hi;
    }
    const std::int64_t* o = s.o;
    const std::int64_t po = s.po;
    const std::int64_t xs_y = p_.x_strides[sp_axis_ + yd_];
    const T* x_n = p_.x + n * p_.x_strides[0];
    // The row the next item (qy + 1) reads first, when that is the row after this item's.
    const T* next_row = nullptr;
    if (prefetch_rows_ && s.outer_off.size() == 1 && qy + 1 < qy_max_) {
      const std::int64_t iy = qy + pk_.row_shift_lo + pk_.row_shifts;
      if (iy < g_.input[yd_]) next_row = x_n + s.outer_off[0] + iy * xs_y + qa;
    }
    T* y_n = p_.y + n * p_.y_strides[0];
    for (int d = 0; d < yd_; ++d) y_n += o[d] * p_.y_strides[sp_axis_ + d];
    y_n += qy * sy_ * p_.y_strides[sp_axis_ + yd_] + qa * sx_ * p_.y_strides[sp_axis_ + xd_];
    for (std::int64_t gi = 0; gi < pk_.groups; ++gi)
      call(s, grid, gi, po, qy, qa, qb, x_n + qy * xs_y, y_n, next_row);
  }

 private:
  // The outer dims' position of row oo (into o), its phase (returned) and valid taps
  // (odometer), as input offsets.
  std::int64_t outer_taps(GridScratch& s, std::int64_t oo, std::int64_t* o) const {
    std::int64_t r[8] = {0}, q[8] = {0};
    outer_position(g_, oo, yd_, o, r, q);
    std::int64_t po = 0;
    for (int d = 0; d < yd_; ++d) po = po * g_.stride[d] + r[d];
    s.outer_off.clear();
    s.outer_tap.clear();
    for_each_outer_tap(g_, pk_, yd_, r, q, [&](const std::int64_t* i, std::int64_t tap) {
      std::int64_t off = 0;
      for (int d = 0; d < yd_; ++d) off += i[d] * p_.x_strides[sp_axis_ + d];
      s.outer_off.push_back(off);
      s.outer_tap.push_back(tap);
    });
    return po;
  }

  // The call's pairs: per (outer tap, row shift in [ry_lo, ry_hi), column shift some phase
  // has) its A offset from the item's row and row window, weight offset and phase masks.
  void pairs(GridScratch& s, std::int64_t ry_lo, std::int64_t ry_hi, std::int64_t qa) const {
    for (auto* v : {&s.a_off, &s.m_lo, &s.m_hi, &s.b_off, &s.rm, &s.cm}) v->clear();
    const std::int64_t xs_y = p_.x_strides[sp_axis_ + yd_];
    const std::int64_t block = pk_.cin_g * sy_ * sx_ * pk_.cout_g;
    const std::int64_t in_x = g_.input[xd_];
    for (std::size_t t = 0; t < s.outer_off.size(); ++t)
      for (std::int64_t ry = ry_lo; ry < ry_hi; ++ry) {
        if (row_mask_[ry] == 0) continue;
        for (std::int64_t cx = 0; cx < pk_.col_shifts; ++cx) {
          if (col_mask_[cx] == 0) continue;
          const std::int64_t shift = qa + pk_.col_shift_lo + cx;
          s.a_off.push_back(s.outer_off[t] + (pk_.row_shift_lo + ry) * xs_y + shift);
          s.m_lo.push_back(-shift);
          s.m_hi.push_back(in_x - shift);
          s.b_off.push_back((s.outer_tap[t] * pk_.row_shifts + ry) * pk_.col_shifts * block +
                            cx * block);
          s.rm.push_back(row_mask_[ry]);
          s.cm.push_back(col_mask_[cx]);
        }
      }
  }

  void call(const GridScratch& s, const T* grid, std::int64_t gi, std::int64_t po, std::int64_t qy,
            std::int64_t qa, std::int64_t qb, const T* x_row, T* y_n, const T* next_row) const {
    const std::int64_t cin_g = pk_.cin_g, cout_g = pk_.cout_g;
    const std::int64_t gi_stride = cin_g * p_.x_strides[c_axis_];
    GridCall<T> call;
    call.a = x_row + gi * gi_stride;  // the pairs' offsets are from the item's row
    call.a_off = s.a_off.data();
    call.m_lo = s.m_lo.data();
    call.m_hi = s.m_hi.data();
    call.b = grid + pk_.grid_offset[gi * outer_phases_ + po];
    call.b_off = s.b_off.data();
    call.row_mask = s.rm.data();
    call.col_mask = s.cm.data();
    call.pairs = static_cast<std::int64_t>(s.a_off.size());
    call.group = group_;
    call.k = cin_g;
    call.a_ks = p_.x_strides[c_axis_];
    call.b_ld = sy_ * sx_ * cout_g;
    call.row_phases = sy_;
    call.phases = sx_;
    call.c = y_n + gi * cout_g * p_.y_strides[c_axis_];
    call.c_rs = p_.y_strides[sp_axis_ + yd_];
    call.c_ms = sx_ * p_.y_strides[sp_axis_ + xd_];
    call.c_ps = p_.y_strides[sp_axis_ + xd_];
    call.c_ns = p_.y_strides[c_axis_];
    call.m = qb - qa;
    call.n = cout_g;
    call.rows_valid = std::min(sy_, g_.output[yd_] - qy * sy_);
    call.outputs = std::min(qb * sx_, g_.output[xd_]) - qa * sx_;
    call.bias = p_.bias ? p_.bias + gi * cout_g : nullptr;
    call.prefetch = next_row ? next_row + gi * gi_stride : nullptr;
    const bool ran = ks_.grid_gemm(call);
    assert(ran);
    (void)ran;
  }

  const Problem<T>& p_;
  const Geometry& g_;
  const Packed<T>& pk_;
  const KernelSet<T>& ks_;
  const int yd_, xd_;
  int c_axis_ = 0, sp_axis_ = 0;
  std::int64_t sy_ = 1, sx_ = 1, qy_max_ = 0, qmax_ = 0, n_outer_ = 1, outer_phases_ = 1;
  std::vector<std::int64_t> row_mask_, col_mask_;
  std::int64_t group_ = 0, rows_ = 0, qblock_ = 0, items_ = 0, max_outer_ = 1, max_pairs_ = 0;
  bool prefetch_rows_ = false;
};

}  // namespace

template <class T>
std::size_t run_grid(const Problem<T>& p, const Packed<T>& pk, const KernelSet<T>& ks, int threads,
                     const std::function<Packed<T>()>* repack) {
  const GridDriver<T> driver(p, pk, ks, threads);
  threads =
      static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, driver.items())));
  const double per_thread = driver.per_thread_bytes();
  if (per_thread * threads > detail::scratch_budget(detail::output_bytes(*p.g, sizeof(T))))
    return kDeclined;
  runtime::note_kernel("phase_grid");
  std::vector<GridScratch> scratch(static_cast<std::size_t>(threads));
  std::size_t scratch_bytes = 0;
  for (auto& s : scratch) {
    driver.init_scratch(s);
    scratch_bytes += static_cast<std::size_t>(per_thread);
  }
  // The threads but the caller on copies of their own, made on their first item.
  std::vector<Packed<T>> own(static_cast<std::size_t>(threads));
  detail::parallel_for(
      driver.items(), threads,
      [&](std::int64_t item, int slot) {
        const auto i = static_cast<std::size_t>(slot);
        if (repack && slot > 0 && !own[i].grid_data) own[i] = (*repack)();
        const Packed<T>& layout = own[i].grid_data ? own[i] : pk;
        driver.run_item(scratch[i], item, layout.grid_data.get());
      },
      detail::Schedule::runs);
  return scratch_bytes;
}

template <class T>
bool grid_applies(const Problem<T>& p, const Packed<T>& pk, const KernelSet<T>& ks) {
  const Geometry& g = *p.g;
  if (!ks.grid_gemm || pk.grid_size == 0 || !grid_layout_fits(g)) return false;
  const bool cf = g.data_format == DataFormat::channels_first;
  const int sp_axis = cf ? 2 : 1;
  if (p.x_strides[sp_axis + g.rank - 1] != 1) return false;
  const std::int64_t group = used_col_shifts(pk);
  return group >= 1 && group <= 8;
}

namespace {

// Each thread's copies of the input rows its output rows read, each in a line with its zero
// halo. Direct-mapped by the row's position modulo the window per outer dim: the rows of one
// output row never collide, and a row entering the window replaces the one that left it (a
// search over the lines cost kernel^2 per output row for tall kernels).
template <class T>
class RowCache {
 public:
  void init(std::int64_t lines, std::int64_t pitch, const std::int64_t* modulus, int dims) {
    pitch_ = pitch;
    dims_ = dims;
    std::copy(modulus, modulus + dims, modulus_);
    detail::assign_or_throw(buf_, static_cast<std::size_t>(lines * pitch), T(0),
                            "the input row buffers");
    tag_.assign(static_cast<std::size_t>(lines), -1);
    halo_.assign(static_cast<std::size_t>(lines), -1);
  }
  // The line of the input row at `in` (its index per outer dim).
  std::int64_t line_of(const std::int64_t* in) const {
    std::int64_t line = 0;
    for (int d = 0; d < dims_; ++d) line = line * modulus_[d] + in[d] % modulus_[d];
    return line;
  }
  // Whether `line` holds the row tagged `key`; it does from now on (the caller fills it).
  bool holds(std::int64_t line, std::int64_t key) {
    if (tag_[line] == key) return true;
    tag_[line] = key;
    return false;
  }
  // Whether `line`'s zero halo is that of block `xb`; it is from now on. The halo's extent
  // depends only on the block and copies write only inside it, so a line last filled for the
  // same block still has its zeros.
  bool halo_of(std::int64_t line, std::int64_t xb) {
    if (halo_[line] == xb) return true;
    halo_[line] = xb;
    return false;
  }
  T* data() { return buf_.data(); }
  T* line(std::int64_t i) { return buf_.data() + i * pitch_; }
  std::size_t bytes() const {
    return buf_.capacity() * sizeof(T) +
           (tag_.capacity() + halo_.capacity()) * sizeof(std::int64_t);
  }

 private:
  std::vector<T> buf_;
  std::vector<std::int64_t> tag_, halo_;
  std::int64_t pitch_ = 0, modulus_[8] = {0};
  int dims_ = 0;
};

// One thread's buffers: the staging row, the row cache, the sources of a row (one per outer tap
// in range) and the pair lists of a call.
template <class T>
struct RowScratch {
  std::vector<T> row;
  RowCache<T> cache;
  std::vector<std::int64_t> a_off, b_off, partner, m_lo, m_hi, source_in, source_tap, source_off;
  std::vector<std::int64_t> phase_first;  // all groups: where each phase's pairs start
  // The outer position whose sources source_in / source_tap hold (-1: none yet), its output
  // indices and phase: consecutive row passes of one output row (one per group) share them.
  std::int64_t sources_of = -1, sources_phase = 0, sources_o[8] = {0};
  std::size_t copied_bytes = 0;  // input copied into the row cache (fill_line)
};

// ---- row fills: input positions [lo, hi) of one row into a buffer line ----------------------

// Contiguous rows (channels_first, position-vector buffer): whole-row copies, and the same row
// one step further along the outer dim (`next` elements on) requested now, since the next
// output rows read it and its lines are a channel stride apart (no prefetcher follows them).
template <class T>
void copy_whole_rows(const T* base, std::int64_t xs_c, T* dst, std::int64_t ds_c,
                     std::int64_t cin_g, std::int64_t lo, std::int64_t hi, std::int64_t next,
                     bool more) {
  for (std::int64_t ci = 0; ci < cin_g; ++ci) {
    const T* __restrict sp = base + ci * xs_c;
    T* __restrict dp = dst + ci * ds_c;
    std::memcpy(dp + lo, sp + lo, static_cast<std::size_t>(hi - lo) * sizeof(T));
    if (more)
      for (std::int64_t xi = lo; xi < hi; xi += 64 / static_cast<std::int64_t>(sizeof(T)))
        __builtin_prefetch(sp + next + xi);
  }
}

// Any other layout: along the buffer's inner axis when the source's is the shorter stride (in
// 16 x 16 tiles, so both sides move whole cache lines), else position by position.
template <class T>
void copy_strided(const T* base, std::int64_t xs_x, std::int64_t xs_c, T* dst, std::int64_t ds_x,
                  std::int64_t ds_c, std::int64_t cin_g, std::int64_t lo, std::int64_t hi) {
  if (std::abs(xs_x) <= std::abs(xs_c)) {
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
    return;
  }
  for (std::int64_t xi = lo; xi < hi; ++xi) {
    const T* sp = base + xi * xs_x;
    T* d = dst + xi * ds_x;
    for (std::int64_t ci = 0; ci < cin_g; ++ci) d[ci * ds_c] = sp[ci * xs_c];
  }
}

// Zeros in buffer columns [0, lo) and [hi, xlen): the halo outside the input.
template <class T>
void zero_halo(T* dst, std::int64_t ds_x, std::int64_t ds_c, std::int64_t cin_g, std::int64_t lo,
               std::int64_t hi, std::int64_t xlen) {
  for (std::int64_t ci = 0; ci < cin_g; ++ci) {
    T* d = dst + ci * ds_c;
    for (std::int64_t xi = 0; xi < lo; ++xi) d[xi * ds_x] = T(0);
    for (std::int64_t xi = hi; xi < xlen; ++xi) d[xi * ds_x] = T(0);
  }
}

// ---- pair lists --------------------------------------------------------------------------

// The multi-phase call's pairs of one input row: each shift of the last dim that some phase
// has a tap at (each phase's taps in its order), with that tap per phase, and its partner:
// a later shift feeding exactly the phases it lacks (see PhaseCall::partner).
struct ShiftUse {
  std::int64_t c, jx[4], partner;
};

std::vector<ShiftUse> shift_uses(const DimPhases& dx, std::int64_t cmin, std::int64_t cmax) {
  const std::int64_t sx = dx.stride;
  std::vector<ShiftUse> uses;
  std::vector<int> masks;
  for (std::int64_t c = cmax; c >= cmin; --c) {
    ShiftUse u{c, {-1, -1, -1, -1}, -1};
    int mask = 0;
    for (std::int64_t rx = 0; rx < sx; ++rx)
      for (std::int64_t jx = 0; jx < static_cast<std::int64_t>(dx.c[rx].size()); ++jx)
        if (dx.c[rx][jx] == c) {
          u.jx[rx] = jx;
          mask |= 1 << rx;
        }
    if (mask == 0) continue;
    uses.push_back(u);
    masks.push_back(mask);
  }
  const int full = (1 << sx) - 1;
  for (std::size_t a = 0; a < uses.size(); ++a) {
    if (uses[a].partner != -1 || masks[a] == full) continue;
    for (std::size_t b = a + 1; b < uses.size(); ++b)
      if (uses[b].partner == -1 && masks[b] == (full ^ masks[a])) {
        uses[a].partner = static_cast<std::int64_t>(b);
        uses[b].partner = -2;
        break;
      }
  }
  return uses;
}

// Where one row pass reads and writes (see PhaseDriver::row_pass).
template <class T>
struct RowJob {
  std::int64_t gi, panel, xb, qa, qb, ph_outer, nsources;
  // A of source si at position i of the last dim: a_base[source_off[si] + i * a_ms].
  const T* a_base;
  T* y_dst;  // where the micro-kernels store: the output or the staging row
  std::int64_t ys_x, ys_c;
  std::int64_t co_lo, co_hi;  // the panel's output channels within the group
  const T* bias_g;
};

// Outputs from this size on are stored by streaming (KernelSet::transpose_stream): beyond the
// L2 of two threads, so their lines are not in cache when written; smaller fresh results often
// are (docs/design.md, "Kernels").
constexpr double kStreamOutputBytes = 8 << 20;

// The runs of one layer on the per-row kernels; see run().
template <class T>
class PhaseDriver {
 public:
  PhaseDriver(const Problem<T>& p, const Packed<T>& pk, const KernelSet<T>& ks, const Tiling& t,
              bool via_row, bool multi, bool joint)
      : p_(p),
        g_(*p.g),
        pk_(pk),
        ks_(ks),
        t_(t),
        xd_(g_.rank - 1),
        via_row_(via_row),
        multi_(multi),
        joint_(joint),
        channel_(channel_kernel(ks, pk.cout_g)) {
    const bool cf = g_.data_format == DataFormat::channels_first;
    c_axis_ = cf ? 1 : g_.rank + 1;
    sp_axis_ = cf ? 2 : 1;
    positions_ = pk.algo == Algo::positions;
    sx_ = g_.stride[xd_];
    in_x_ = g_.input[xd_];
    out_x_ = g_.output[xd_];
    xs_x_ = p.x_strides[sp_axis_ + xd_];
    xs_c_ = p.x_strides[c_axis_];
    for (int d = 0; d < xd_; ++d) n_in_outer_ *= g_.input[d];
    line_channels_ = t.all_groups ? pk.cin_g * pk.groups : pk.cin_g;
    stream_ = via_row && ks.transpose_stream && p.y_strides[sp_axis_ + xd_] == 1 &&
              detail::output_bytes(g_, sizeof(T)) >= kStreamOutputBytes;
    // The bias of each joint column, per group: its channel's.
    if (joint_ && p.bias)
      for (std::int64_t gi = 0; gi < pk.groups; ++gi)
        for (std::int64_t rx = 0; rx < sx_; ++rx)
          joint_bias_.insert(joint_bias_.end(), p.bias + gi * pk.cout_g,
                             p.bias + (gi + 1) * pk.cout_g);
  }

  // The multi-phase call's shifts (see shift_uses), where it runs.
  void plan_shifts() {
    if (!multi_) return;
    for (std::int64_t rx = 0; rx < sx_; ++rx)
      dx_taps_.push_back(static_cast<std::int64_t>(pk_.dims[xd_].c[rx].size()));
    uses_ = shift_uses(pk_.dims[xd_], t_.cmin, t_.cmax);
  }

  bool streams_output() const { return stream_; }

  // Sizes one thread's buffers; returns their bytes.
  std::size_t init_scratch(RowScratch<T>& s) const {
    const std::int64_t lines_cached = t_.in_place ? 0 : t_.cached * t_.group_lines;
    std::int64_t max_pairs =
        t_.max_sources * std::max<std::int64_t>(t_.max_xtaps, t_.cmax - t_.cmin + 1);
    if (t_.all_groups) {
      // A row's lists for every call: the joint call's, then each phase's.
      std::int64_t taps = 1;
      for (const auto& xk : pk_.dims[xd_].c) taps += static_cast<std::int64_t>(xk.size());
      max_pairs = t_.max_sources * taps;
    }
    const auto sz = [](std::int64_t n) { return static_cast<std::size_t>(n); };
    s.row.resize(sz(t_.row_len));
    s.phase_first.resize(sz(t_.all_groups ? sx_ : 0));
    s.cache.init(lines_cached, t_.row_stride, t_.modulus, xd_);
    s.source_off.resize(sz(t_.max_sources));
    // Pair lists: the multi-phase call's hold a pair per (source, shift) with sx weight offsets.
    s.a_off.reserve(sz(max_pairs));
    s.b_off.reserve(sz(max_pairs * sx_));
    s.partner.reserve(sz(max_pairs));
    s.m_lo.reserve(sz(t_.in_place ? max_pairs : 0));
    s.m_hi.reserve(sz(t_.in_place ? max_pairs : 0));
    s.source_in.reserve(sz(t_.max_sources * std::max(xd_, 1)));
    s.source_tap.reserve(sz(t_.max_sources));
    return s.row.capacity() * sizeof(T) + s.cache.bytes() +
           (s.a_off.capacity() + s.b_off.capacity() + s.partner.capacity() + s.m_lo.capacity() +
            s.m_hi.capacity() + s.source_in.capacity() + s.source_tap.capacity() +
            s.source_off.capacity()) *
               sizeof(std::int64_t);
  }

  // The driver's own buffers, shared by the threads: the joint columns' bias.
  std::size_t own_bytes() const { return joint_bias_.capacity() * sizeof(T); }

  // Work item `item` (see Tiling): the position-vector kernels take one row of one block, all
  // groups; the channel kernels a block of rows of one line, for a share of the panels.
  void run_item(RowScratch<T>& s, std::int64_t item) const {
    if (positions_) {
      // Blocks outermost, so a run of consecutive items walks down the rows of one block and
      // each new row finds most of its input rows in the thread's cache.
      for (std::int64_t gi = 0; gi < pk_.groups; ++gi)
        row_pass(s, item % t_.rows, item / t_.rows, gi, 0);
      return;
    }
    std::int64_t rest = item, g0 = 0, g1 = t_.all_groups ? 1 : pk_.groups;
    if (t_.group_items > 1) {
      const std::int64_t per_group = t_.items / t_.group_items;
      g0 = item / per_group;
      g1 = g0 + 1;
      rest = item % per_group;
    }
    std::int64_t part = 0, xb = 0;
    if (t_.blocks_inner) {
      xb = rest % t_.nxb;
      rest /= t_.nxb;
      part = rest % t_.panel_parts;
      rest /= t_.panel_parts;
    } else {
      // Rows before blocks: the row cache keeps one block's lines, which the next rows of the
      // same block read again (blocks alternating row by row refilled them every time).
      part = rest % t_.panel_parts;
      rest /= t_.panel_parts;
      const std::int64_t row_blocks = t_.lines * t_.blocks_per_line;
      xb = rest / row_blocks;
      rest %= row_blocks;
    }
    const std::int64_t line = rest / t_.blocks_per_line, blk = rest % t_.blocks_per_line;
    const std::int64_t row0 = line * t_.line_len + blk * t_.block_rows;
    const std::int64_t row1 = std::min(row0 + t_.block_rows, (line + 1) * t_.line_len);
    const std::int64_t pa = part * t_.panels_per_item;
    const std::int64_t pb = std::min(pk_.panels, pa + t_.panels_per_item);
    // A block's rows by phase of the last outer dim: rows of one phase use that phase's part
    // of the panel's weights only, so 1 / stride of the panel must stay in cache while the
    // block's rows go by.
    const std::int64_t sy = xd_ >= 1 ? g_.stride[xd_ - 1] : 1;
    if (row1 == row0 + 1) {
      for (std::int64_t gi = g0; gi < g1; ++gi)
        for (std::int64_t panel = pa; panel < pb; ++panel)
          row_pass(s, phases_inner(row0), xb, gi, panel);
      return;
    }
    for (std::int64_t gi = g0; gi < g1; ++gi)
      for (std::int64_t panel = pa; panel < pb; ++panel)
        for (std::int64_t ry = 0; ry < sy; ++ry)
          for (std::int64_t row = row0; row < row1; ++row)
            if ((row % t_.line_len) % sy == ry) row_pass(s, row, xb, gi, panel);
  }

 private:
  // The output row at place r of the order in which rows of one item run one by one. With three
  // or more dims, the rows o = s * q + r of the dim before the last outer one that read the same
  // input rows (its phases r) go side by side along the last outer dim, so that the row cache
  // still holds them: (q, y, r) rather than (o, y). Two or fewer dims: the rows in order.
  std::int64_t phases_inner(std::int64_t r) const {
    const int zd = xd_ - 2;
    if (zd < 0 || g_.stride[zd] == 1) return r;
    const std::int64_t sz = g_.stride[zd], nz = g_.output[zd], ny = g_.output[xd_ - 1];
    // Rows of one image per position of the dims before zd: (o_z, y) planes of nz * ny.
    const std::int64_t plane = nz * ny, at = r % plane, outer = r - at;
    const std::int64_t zq = at / (sz * ny), off = at % (sz * ny);
    const std::int64_t k = std::min(sz, nz - sz * zq);  // rows of the last q: k <= sz phases
    return outer + (sz * zq + off % k) * ny + off / k;
  }

  // One output row (image n, outer position oo) of group gi, output channels of one panel.
  void row_pass(RowScratch<T>& s, std::int64_t row, std::int64_t xb, std::int64_t gi,
                std::int64_t panel) const {
    const std::int64_t oo = row % t_.n_outer;
    const std::int64_t n = row / t_.n_outer;
    RowJob<T> job;
    job.gi = gi;
    job.panel = panel;
    job.xb = xb;
    job.qa = xb * t_.qblock;
    job.qb = std::min(job.qa + t_.qblock, t_.qmax);
    if (s.sources_of != oo) {
      s.sources_phase = outer_sources(s, oo, s.sources_o);
      s.sources_of = oo;
    }
    const std::int64_t* o = s.sources_o;
    job.ph_outer = s.sources_phase;
    job.nsources = static_cast<std::int64_t>(s.source_tap.size());

    T* y_row = p_.y + n * p_.y_strides[0];
    for (int d = 0; d < xd_; ++d) y_row += o[d] * p_.y_strides[sp_axis_ + d];
    const std::int64_t x0 = job.qa * sx_, x1 = std::min(job.qb * sx_, out_x_);
    // Where the micro-kernels store: the output itself, or the block's channels-last row of
    // this panel's channels.
    job.y_dst = via_row_ ? s.row.data() - x0 * pk_.width : y_row;
    job.ys_x = via_row_ ? pk_.width : p_.y_strides[sp_axis_ + xd_];
    job.ys_c = via_row_ ? 1 : p_.y_strides[c_axis_];
    job.co_lo = panel * pk_.width;
    job.co_hi = std::min(pk_.cout_g, job.co_lo + pk_.width);
    if (t_.all_groups) {
      groups_pass(s, job, n, y_row, x0, x1);
      return;
    }
    const T* const x_g = p_.x + n * p_.x_strides[0] + gi * pk_.cin_g * xs_c_;
    job.a_base = t_.in_place ? x_g : s.cache.data();
    if (t_.in_place)
      place_in_input(s, job.nsources);
    else
      place_in_cache(s, x_g, n, job);
    job.bias_g = p_.bias ? p_.bias + gi * pk_.cout_g : nullptr;
    // Tiny C_out: all phases of the last dim in one call, positions up to the last one that
    // every phase has; the per-phase calls take the rest.
    std::int64_t q_done = job.qa;
    if (multi_ && job.nsources > 0)
      q_done = run_all_phases(s, job);
    else if (joint_ && job.nsources > 0)
      q_done = run_joint(s, job);
    for (std::int64_t rx = 0; rx < sx_; ++rx) run_phase(s, job, rx, q_done);
    if (via_row_) store_row(s, job, y_row, x0, x1);
  }

  // Every group of the row (Tiling::all_groups): the row copies hold all groups' channels and
  // the pair lists are built once; each group's calls read its channels of the copies.
  void groups_pass(RowScratch<T>& s, RowJob<T>& job, std::int64_t n, T* y_row, std::int64_t x0,
                   std::int64_t x1) const {
    const T* const x_n = p_.x + n * p_.x_strides[0];
    if (t_.in_place)
      place_in_input(s, job.nsources);
    else
      place_in_cache(s, x_n, n, job);
    const std::int64_t q_joint = joint_ && job.nsources > 0 ? joint_end(job) : job.qa;
    std::int64_t first = 0;
    if (q_joint > job.qa) {
      joint_pairs(s, job, 0);
      first = job.nsources;
    }
    for (std::int64_t rx = 0; rx < sx_; ++rx) {
      const auto& xk = pk_.dims[xd_].c[static_cast<std::size_t>(rx)];
      s.phase_first[static_cast<std::size_t>(rx)] = first;
      phase_pairs(s, job, xk, q_joint, first);
      first += job.nsources * static_cast<std::int64_t>(xk.size());
    }
    for (std::int64_t gi = 0; gi < pk_.groups; ++gi) {
      job.gi = gi;
      job.a_base = (t_.in_place ? x_n : s.cache.data()) + gi * pk_.cin_g * t_.a_ks;
      job.bias_g = p_.bias ? p_.bias + gi * pk_.cout_g : nullptr;
      if (q_joint > job.qa) joint_calls(s, job, q_joint, 0);
      for (std::int64_t rx = 0; rx < sx_; ++rx)
        run_phase(s, job, rx, q_joint, s.phase_first[static_cast<std::size_t>(rx)]);
      if (via_row_) store_row(s, job, y_row, x0, x1);
    }
  }

  // The outer dims' position of row oo (into o), the phase (returned), and per outer tap in
  // range a source: its input indices (source_in, xd per source) and tap index (source_tap,
  // row-major over the phase's outer tap lists).
  std::int64_t outer_sources(RowScratch<T>& s, std::int64_t oo, std::int64_t* o) const {
    std::int64_t r[8] = {0}, q[8] = {0};
    outer_position(g_, oo, xd_, o, r, q);
    std::int64_t ph_outer = 0;
    for (int d = 0; d < xd_; ++d) ph_outer = ph_outer * g_.stride[d] + r[d];
    s.source_in.clear();
    s.source_tap.clear();
    for_each_outer_tap(g_, pk_, xd_, r, q, [&](const std::int64_t* i, std::int64_t tap) {
      for (int d = 0; d < xd_; ++d) s.source_in.push_back(i[d]);
      s.source_tap.push_back(tap);
    });
    return ph_outer;
  }

  // In place: each source's offset is its input row's.
  void place_in_input(RowScratch<T>& s, std::int64_t nsources) const {
    for (std::int64_t si = 0; si < nsources; ++si) {
      std::int64_t off = 0;
      for (int d = 0; d < xd_; ++d) off += s.source_in[si * xd_ + d] * p_.x_strides[sp_axis_ + d];
      s.source_off[si] = off;
    }
  }

  // From copies: each source's row found in, or copied into, the row cache.
  void place_in_cache(RowScratch<T>& s, const T* x_g, std::int64_t n, const RowJob<T>& job) const {
    const std::int64_t i0 = job.qa + t_.cmin;  // input position of buffer column 0
    for (std::int64_t si = 0; si < job.nsources; ++si) {
      const std::int64_t* in = s.source_in.data() + si * xd_;
      std::int64_t in_row = 0;
      for (int d = 0; d < xd_; ++d) in_row = in_row * g_.input[d] + in[d];
      const std::int64_t key = ((n * n_in_outer_ + in_row) * pk_.groups + job.gi) * t_.nxb + job.xb;
      const std::int64_t line = s.cache.line_of(in) + job.gi % t_.group_lines * t_.cached;
      s.source_off[si] = line * t_.row_stride - i0 * t_.a_ms;
      if (s.cache.holds(line, key)) continue;
      const T* src = x_g;
      for (int d = 0; d < xd_; ++d) src += in[d] * p_.x_strides[sp_axis_ + d];
      s.copied_bytes +=
          static_cast<std::size_t>(fill_line(s.cache, line, src, in, job)) * sizeof(T);
    }
  }

  // Copies the block's part of input row `src` (indices `in`) into cache line `line`; returns
  // the elements copied.
  std::int64_t fill_line(RowCache<T>& cache, std::int64_t line, const T* src,
                         const std::int64_t* in, const RowJob<T>& job) const {
    const std::int64_t cin_g = line_channels_, i0 = job.qa + t_.cmin;
    const std::int64_t xlen = job.qb - job.qa + t_.cmax - t_.cmin;
    T* dst = cache.line(line);
    const std::int64_t lo = std::clamp<std::int64_t>(-i0, 0, xlen);
    const std::int64_t hi = std::clamp<std::int64_t>(in_x_ - i0, lo, xlen);
    const std::int64_t ds_x = positions_ ? 1 : t_.cin_pitch, ds_c = positions_ ? t_.xlen_alloc : 1;
    if (!cache.halo_of(line, job.xb)) zero_halo(dst, ds_x, ds_c, cin_g, lo, hi, xlen);
    // Walk the source along its unit-stride axis (x in channels_first, C in channels_last).
    const T* base = src + i0 * xs_x_;
    if (!positions_ && xs_x_ == 1 && ks_.transpose) {
      ks_.transpose(base + lo, xs_c_, dst + lo * t_.cin_pitch, t_.cin_pitch, cin_g, hi - lo, false);
    } else if (positions_ && xs_x_ == 1) {
      const std::int64_t next = xd_ > 0 ? p_.x_strides[sp_axis_ + xd_ - 1] : 0;
      const bool more = xd_ > 0 && in[xd_ - 1] + 1 < g_.input[xd_ - 1];
      copy_whole_rows(base, xs_c_, dst, ds_c, cin_g, lo, hi, next, more);
    } else if (!positions_ && xs_c_ == 1) {
      // Channels contiguous (channels_last): each position's channels are one run.
      for (std::int64_t xi = lo; xi < hi; ++xi)
        std::copy_n(base + xi * xs_x_, cin_g, dst + xi * t_.cin_pitch);
    } else {
      copy_strided(base, xs_x_, xs_c_, dst, ds_x, ds_c, cin_g, lo, hi);
    }
    return (hi - lo) * cin_g;
  }

  // The multi-phase call's pairs (see shift_uses): per (source, shift) pair its A offset, its
  // row window in place, one weight offset per phase (-1: no tap there) and its partner.
  std::int64_t all_phase_pairs(RowScratch<T>& s, const RowJob<T>& job) const {
    const std::int64_t nuses = static_cast<std::int64_t>(uses_.size());
    const std::int64_t npairs = job.nsources * nuses;
    // Written by index into lists sized once (this runs for every output row).
    s.a_off.resize(static_cast<std::size_t>(npairs));
    s.b_off.resize(static_cast<std::size_t>(npairs * sx_));
    s.partner.resize(static_cast<std::size_t>(npairs));
    if (t_.in_place) {
      s.m_lo.resize(static_cast<std::size_t>(npairs));
      s.m_hi.resize(static_cast<std::size_t>(npairs));
    }
    std::int64_t* a_off = s.a_off.data();
    std::int64_t* b_off = s.b_off.data();
    std::int64_t* partner = s.partner.data();
    std::int64_t phase_off[4];
    for (std::int64_t rx = 0; rx < sx_; ++rx)
      phase_off[rx] = pk_.offset[(job.gi * pk_.phases + job.ph_outer * sx_ + rx) * pk_.panels];
    const std::int64_t qa = job.qa;
    for (std::int64_t si = 0; si < job.nsources; ++si) {
      const std::int64_t first = si * nuses;
      const std::int64_t tap = s.source_tap[si];
      for (std::int64_t ui = 0; ui < nuses; ++ui) {
        const ShiftUse& u = uses_[static_cast<std::size_t>(ui)];
        const std::int64_t pr = first + ui;
        a_off[pr] = s.source_off[si] + (qa + u.c) * t_.a_ms;
        if (t_.in_place) {
          s.m_lo[static_cast<std::size_t>(pr)] = -(qa + u.c);
          s.m_hi[static_cast<std::size_t>(pr)] = in_x_ - (qa + u.c);
        }
        for (std::int64_t rx = 0; rx < sx_; ++rx)
          b_off[pr * sx_ + rx] = u.jx[rx] < 0 ? -1
                                              : phase_off[rx] + (tap * dx_taps_[rx] + u.jx[rx]) *
                                                                    pk_.cin_g * pk_.width;
        partner[pr] = u.partner >= 0 ? first + u.partner : u.partner;
      }
    }
    return npairs;
  }

  // Every phase of the last dim in one call, up to the last position every phase has.
  // Returns the first position it did not write.
  std::int64_t run_all_phases(RowScratch<T>& s, const RowJob<T>& job) const {
    const std::int64_t q_all = std::min(job.qb, ceil_div(out_x_ - (sx_ - 1), sx_));
    if (q_all <= job.qa) return job.qa;
    const std::int64_t npairs = all_phase_pairs(s, job);
    PhaseCall<T> call;
    call.a = job.a_base;
    call.a_off = s.a_off.data();
    call.m_lo = t_.in_place ? s.m_lo.data() : nullptr;
    call.m_hi = t_.in_place ? s.m_hi.data() : nullptr;
    call.group = t_.in_place ? static_cast<std::int64_t>(uses_.size()) : 1;
    call.b = pk_.data.get();
    call.b_off = s.b_off.data();
    call.partner = s.partner.data();
    call.pairs = npairs;
    call.k = pk_.cin_g;
    call.a_ks = t_.a_ks;
    call.b_ld = pk_.width;
    call.phases = sx_;
    call.c = job.y_dst + job.qa * sx_ * job.ys_x + job.gi * pk_.cout_g * job.ys_c;
    call.c_ms = sx_ * job.ys_x;
    call.c_ps = job.ys_x;
    call.c_ns = job.ys_c;
    call.m = q_all - job.qa;
    call.n = pk_.cout_g;
    call.bias = job.bias_g;
    return ks_.phase_gemm(call) ? q_all : job.qa;
  }

  // A call over the row's pairs as phase_pairs listed them (A, its offsets and windows, B's
  // offsets); the caller sets B, C and the sizes.
  GemmCall<T> pairs_call(const RowScratch<T>& s, const RowJob<T>& job, std::int64_t first,
                         std::int64_t pairs) const {
    GemmCall<T> call;
    call.a = job.a_base;
    call.a_off = s.a_off.data() + first;
    call.m_lo = t_.in_place ? s.m_lo.data() + first : nullptr;
    call.m_hi = t_.in_place ? s.m_hi.data() + first : nullptr;
    call.b_off = s.b_off.data() + first;
    call.pairs = pairs;
    call.k = pk_.cin_g;
    call.a_ks = t_.a_ks;
    call.a_ms = t_.a_ms;
    return call;
  }

  // Every phase of the last dim in one full-width GEMM on the joint weights (one tap per
  // phase, at shift 0), up to the last position every phase has. Returns the first position it
  // did not write.
  std::int64_t run_joint(RowScratch<T>& s, const RowJob<T>& job) const {
    const std::int64_t q_all = joint_end(job);
    if (q_all <= job.qa) return job.qa;
    joint_pairs(s, job, 0);
    joint_calls(s, job, q_all, 0);
    return q_all;
  }

  // The last position every phase has, within the block: the joint GEMM's end.
  std::int64_t joint_end(const RowJob<T>& job) const {
    return std::max(job.qa, std::min(job.qb, ceil_div(out_x_ - (sx_ - 1), sx_)));
  }

  // The joint GEMM's pairs, one per source, from `first` on.
  void joint_pairs(RowScratch<T>& s, const RowJob<T>& job, std::int64_t first) const {
    phase_pairs(s, job, pk_.dims[xd_].c[0], job.qa, first);
    for (std::int64_t si = 0; si < job.nsources; ++si)
      s.b_off[static_cast<std::size_t>(first + si)] = s.source_tap[si] * pk_.cin_g * pk_.joint_ld;
  }

  // The joint GEMM of positions [qa, q_all) on the pairs listed from `first` on.
  void joint_calls(const RowScratch<T>& s, const RowJob<T>& job, std::int64_t q_all,
                   std::int64_t first) const {
    const std::int64_t cols = sx_ * pk_.cout_g, ld = pk_.joint_ld;
    assert(ld % ks_.nr == 0);  // the last panel's columns past `cols` are zeros, never garbage
    GemmCall<T> call = pairs_call(s, job, first, job.nsources);
    call.b_ld = ld;
    call.c_ms = sx_ * job.ys_x;
    call.c_ns = 1;
    call.m = q_all - job.qa;
    const T* b =
        pk_.joint_data.get() +
        pk_.joint_offset[static_cast<std::size_t>(job.gi * (pk_.phases / sx_) + job.ph_outer)];
    T* c = job.y_dst + job.qa * sx_ * job.ys_x;
    for (std::int64_t j = 0; j < cols; j += ks_.nr) {
      call.b = b + j;
      call.c = c + j;
      call.n = std::min(ks_.nr, cols - j);
      call.bias = job.bias_g ? joint_bias_.data() + job.gi * cols + j : nullptr;
      ks_.channel_gemm(call);
    }
  }

  // One phase's pairs from position qa on, listed from `first` on: per (source, tap of the
  // phase) its A and weight offsets, and its row window in place.
  void phase_pairs(RowScratch<T>& s, const RowJob<T>& job, const std::vector<std::int64_t>& xk,
                   std::int64_t qa, std::int64_t first = 0) const {
    const std::int64_t xt = static_cast<std::int64_t>(xk.size());
    // Written by index into lists sized once (this runs for every row, phase and group).
    const std::size_t end = static_cast<std::size_t>(first + job.nsources * xt);
    s.a_off.resize(end);
    s.b_off.resize(end);
    s.m_lo.resize(t_.in_place ? end : 0);
    s.m_hi.resize(t_.in_place ? end : 0);
    std::size_t pr = static_cast<std::size_t>(first);
    for (std::int64_t si = 0; si < job.nsources; ++si)
      for (std::int64_t jx = 0; jx < xt; ++jx, ++pr) {
        s.a_off[pr] = s.source_off[si] + (qa + xk[jx]) * t_.a_ms;
        s.b_off[pr] = (s.source_tap[si] * xt + jx) * pk_.cin_g * pk_.width;
        if (t_.in_place) {
          s.m_lo[pr] = -(qa + xk[jx]);
          s.m_hi[pr] = in_x_ - (qa + xk[jx]);
        }
      }
  }

  // Phase rx of the last dim, positions from q_done (where no multi-phase call wrote) on, on
  // its pairs listed from `first` on (listed here when `first` < 0).
  void run_phase(RowScratch<T>& s, const RowJob<T>& job, std::int64_t rx, std::int64_t q_done,
                 std::int64_t first = -1) const {
    const std::int64_t nq = rx < out_x_ ? ceil_div(out_x_ - rx, sx_) : 0;
    const std::int64_t q1 = std::min(job.qb, nq);
    const std::int64_t qa = q_done;
    if (qa >= q1) return;
    const std::int64_t co_lo = job.co_lo, co_hi = job.co_hi, ys_x = job.ys_x, ys_c = job.ys_c;
    T* y0 = job.y_dst + (qa * sx_ + rx) * ys_x + (via_row_ ? -co_lo : job.gi * pk_.cout_g) * ys_c;
    const auto& xk = pk_.dims[xd_].c[rx];
    if (job.nsources == 0 || xk.empty()) {
      // No tap reaches the input: the bias only.
      for (std::int64_t qq = 0; qq < q1 - qa; ++qq)
        for (std::int64_t co = co_lo; co < co_hi; ++co)
          y0[qq * sx_ * ys_x + co * ys_c] = job.bias_g ? job.bias_g[co] : T(0);
      return;
    }
    if (first < 0) {
      phase_pairs(s, job, xk, qa);
      first = 0;
    }
    GemmCall<T> call =
        pairs_call(s, job, first, job.nsources * static_cast<std::int64_t>(xk.size()));
    call.b_ld = pk_.width;
    call.c_ms = sx_ * ys_x;
    call.c_ns = ys_c;
    call.m = q1 - qa;
    const std::int64_t ph = job.ph_outer * sx_ + rx;
    call.b = pk_.data.get() + pk_.offset[(job.gi * pk_.phases + ph) * pk_.panels + job.panel];
    call.c = y0 + co_lo * ys_c;
    call.n = co_hi - co_lo;
    call.bias = job.bias_g ? job.bias_g + co_lo : nullptr;
    (positions_ ? ks_.position_gemm : channel_.fn)(call);
  }

  // The store: the staging row's positions [x0, x1) of the panel's channels written out to a
  // channels_first output row, position-contiguous, channel by channel.
  void store_row(RowScratch<T>& s, const RowJob<T>& job, T* y_row, std::int64_t x0,
                 std::int64_t x1) const {
    const std::int64_t yx = p_.y_strides[sp_axis_ + xd_], yc = p_.y_strides[c_axis_];
    const std::int64_t co_lo = job.co_lo, co_hi = job.co_hi, first = job.gi * pk_.cout_g;
    if (yx == 1 && ks_.transpose) {
      (stream_ ? ks_.transpose_stream : ks_.transpose)(s.row.data(), pk_.width,
                                                       y_row + (first + co_lo) * yc + x0, yc,
                                                       x1 - x0, co_hi - co_lo, true);
      return;
    }
    // In 16 x 16 tiles: whole cache lines on both sides.
    constexpr std::int64_t kTile = 16;
    for (std::int64_t ca = co_lo; ca < co_hi; ca += kTile)
      for (std::int64_t xa = x0; xa < x1; xa += kTile) {
        const std::int64_t ce = std::min(ca + kTile, co_hi), xe = std::min(xa + kTile, x1);
        for (std::int64_t co = ca; co < ce; ++co) {
          T* yp = y_row + (first + co) * yc;
          const T* rp = s.row.data() + (co - co_lo);
          for (std::int64_t x = xa; x < xe; ++x) yp[x * yx] = rp[(x - x0) * pk_.width];
        }
      }
  }

  const Problem<T>& p_;
  const Geometry& g_;
  const Packed<T>& pk_;
  const KernelSet<T>& ks_;
  const Tiling t_;
  const int xd_;                        // the blocked, vectorised-over dimension
  const bool via_row_, multi_, joint_;  // joint: the full-width GEMM of run_joint
  const ChannelKernel<T> channel_;
  std::vector<T> joint_bias_;  // per group, the bias of each joint column
  int c_axis_ = 0, sp_axis_ = 0;
  bool positions_ = false;
  std::int64_t sx_ = 1, in_x_ = 0, out_x_ = 0, xs_x_ = 0, xs_c_ = 0, n_in_outer_ = 1;
  std::int64_t line_channels_ = 0;  // channels per position of a row copy
  bool stream_ = false;             // store_row writes with KernelSet::transpose_stream
  std::vector<ShiftUse> uses_;
  std::vector<std::int64_t> dx_taps_;
};

}  // namespace

template <class T>
std::size_t run(const Problem<T>& p, const Packed<T>& pk, const KernelSet<T>& ks, int threads) {
  const Geometry& g = *p.g;
  const int xd = g.rank - 1;
  const int c_axis = g.data_format == DataFormat::channels_first ? 1 : g.rank + 1;
  const int sp_axis = g.data_format == DataFormat::channels_first ? 2 : 1;
  const bool positions = pk.algo == Algo::positions;
  const std::int64_t sx = g.stride[xd];
  TilingInput in;
  in.g = &g;
  in.dims = &pk.dims;
  in.elem = static_cast<std::int64_t>(sizeof(T));
  in.positions = positions;
  in.cin_g = pk.cin_g;
  in.cout_g = pk.cout_g;
  in.groups = pk.groups;
  in.panels = pk.panels;
  in.width = pk.width;
  in.packed_elems = pk.size;
  // With channels_first output the channel-vector tiles would store one scalar per output
  // channel, each to its own cache line. Instead a block's outputs go to a small channels-last
  // row (vector stores), which is then written out position-contiguous, channel by channel.
  in.via_row = !positions && std::abs(p.y_strides[c_axis]) != 1;
  in.xs_x = p.x_strides[sp_axis + xd];
  in.xs_c = p.x_strides[c_axis];
  in.mr = channel_kernel(ks, pk.cout_g).mr;
  in.position_tile = ks.position_tile;
  in.channel_windows = ks.channel_windows;
  in.position_in_place = ks.position_windows && ks.position_in_place;
  in.threads = threads;
  const Tiling t = plan_tiling(in);
  assert(t.cached >= t.max_sources);
  if (t.per_thread_bytes * t.threads > detail::scratch_budget(detail::output_bytes(g, sizeof(T))))
    return kDeclined;
  // Staged rows only: there the joint columns (phase, channel) are adjacent.
  const bool joint = !positions && in.via_row && pk.joint_size > 0;
  if (positions)
    runtime::note_kernel(t.in_place ? "phase_positions_in_place" : "phase_positions");
  else if (t.block_rows > 1)
    runtime::note_kernel("phase_channel_blocks");
  else if (t.all_groups && t.in_place)
    runtime::note_kernel(joint ? "phase_channel_joint_groups_in_place"
                               : "phase_channel_groups_in_place");
  else if (t.all_groups)
    runtime::note_kernel(joint ? "phase_channel_joint_groups" : "phase_channel_groups");
  else
    runtime::note_kernel(joint ? "phase_channel_joint" : "phase_channel");
  const bool multi = positions && ks.phase_gemm && sx >= 2 && sx <= 4;
  PhaseDriver<T> driver(p, pk, ks, t, in.via_row, multi, joint);
  runtime::note_output_streamed(driver.streams_output());
  std::vector<RowScratch<T>> scratch(static_cast<std::size_t>(t.threads));
  std::size_t scratch_bytes = driver.own_bytes();
  for (auto& s : scratch) scratch_bytes += driver.init_scratch(s);
  // After the row buffers, as before: where they land on the heap moved channels_last
  // position-vector layers by 15 % (their strided row fills).
  driver.plan_shifts();
  // Runs of consecutive items per thread: consecutive rows share input rows.
  detail::parallel_for(
      t.items, t.threads,
      [&](std::int64_t item, int slot) {
        driver.run_item(scratch[static_cast<std::size_t>(slot)], item);
      },
      detail::Schedule::runs);
  std::size_t copied = 0;
  for (const auto& s : scratch) copied += s.copied_bytes;
  runtime::note_input_copied(copied);
  return scratch_bytes;
}

template <class T>
bool shuffle_applies(const Problem<T>& p) {
  const Geometry& g = *p.g;
  if (choose_algo(g) != Algo::channel) return false;
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
  const std::int64_t c_ms = m_batch ? p.y_strides[0] : g.stride[xd] * p.y_strides[sp_axis + xd];
  // Items: (image unless M is the batch) x (input position over the other dims) x tap, taps
  // innermost so one input row serves all its taps from cache.
  const int outer_dims = m_batch ? rank : xd;
  std::int64_t n_pos = 1, n_taps = 1;
  for (int d = 0; d < outer_dims; ++d) n_pos *= g.input[d];
  for (int d = 0; d < rank; ++d) n_taps *= g.kernel[d];
  const std::int64_t n_img = m_batch ? 1 : g.batch;
  // With M along the batch and channels first, every tap of an output channel lies in one cache
  // line: on more than one thread items split by (group, panel) too, each thread a run of whole
  // panels, so that no two threads write into one line (split by tap alone, two threads ran
  // slower than one; one thread keeps the order by tap).
  const bool split_panels = m_batch && cf && threads > 1;
  const std::int64_t n_split = split_panels ? pk.groups * pk.panels : 1;
  const std::int64_t items = n_img * n_pos * n_split * n_taps;
  const std::int64_t cin_g = pk.cin_g, cout_g = pk.cout_g;
  const GemmFn<T> gemm = channel_kernel(ks, cout_g).fn;
  std::int64_t zero_off = 0;
  // The first tap of an input row reads it from memory when the input is beyond L2; the
  // other taps find it in cache.
  double x_bytes = static_cast<double>(g.batch * g.in_channels * sizeof(T));
  for (int d = 0; d < rank; ++d) x_bytes *= static_cast<double>(g.input[d]);
  const bool x_in_memory = x_bytes > 2.0 * 1024 * 1024;
  auto body = [&](std::int64_t item, int) {
    std::int64_t tap = item % n_taps, rest = item / n_taps;
    const bool first_tap = tap == 0;
    const std::int64_t split = rest % n_split;
    rest /= n_split;
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
    const std::int64_t gp0 = n_split > 1 ? split : 0;
    const std::int64_t gp1 = n_split > 1 ? split + 1 : pk.groups * pk.panels;
    for (std::int64_t gi = gp0 / pk.panels; gi * pk.panels < gp1; ++gi) {
      call.a = xa + gi * cin_g * p.x_strides[c_axis];
      const std::int64_t pa = std::max(gp0 - gi * pk.panels, std::int64_t{0});
      const std::int64_t pb = std::min(gp1 - gi * pk.panels, pk.panels);
      for (std::int64_t panel = pa; panel < pb; ++panel) {
        call.b = pk.data.get() + pk.offset[(gi * pk.phases + ph) * pk.panels + panel] +
                 t * cin_g * pk.width;
        const std::int64_t co0 = gi * cout_g + panel * pk.width;
        call.c = ya + co0 * p.y_strides[c_axis];
        call.n = std::min(pk.width, cout_g - panel * pk.width);
        call.bias = p.bias ? p.bias + co0 : nullptr;
        call.prefetch_a = x_in_memory && first_tap && panel == 0;
        gemm(call);
      }
    }
  };
  threads = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, items)));
  // Runs of consecutive items per thread: a row's taps on one thread find it in that core's
  // cache (U-Net 128->64 at 128x128 NHWC, two threads: about 175 -> 185 GFLOP/s). With M along
  // the batch an item is a tap of the whole input, and single items measured faster.
  detail::parallel_for(items, threads, body,
                       m_batch && !split_panels ? detail::Schedule::items : detail::Schedule::runs);
  return 0;
}

// The in-place shuffle's columns (output channel, tap) in PyTorch's order, or (tap, output
// channel) in Keras's: per column j of a group, its weights' offset (a row of C_in/g values
// b_ld apart, or a column of them one apart) and its output's offset.
struct ShuffleCols {
  bool by_columns;                  // Keras's: B stored by columns
  std::int64_t cols, cout_g, taps;  // per group
  std::int64_t ld;                  // B's row (PyTorch) or column (Keras) stride
  std::int64_t tap_stride;          // Keras: the output's stride between taps (C_out)
  std::int64_t y_of(std::int64_t gi, std::int64_t j) const {
    return by_columns ? j / cout_g * tap_stride + gi * cout_g + j % cout_g : gi * cols + j;
  }
};

// The columns where the layer suits the in-place shuffle (see shuffle_reads_weights): every
// input dim one position, the output's dims the kernel's, the weights' and the output's
// columns dense in the same order, whole panels of nr within a tap (Keras's).
template <class T>
bool shuffle_cols(const Problem<T>& p, std::int64_t nr, ShuffleCols* sc) {
  const Geometry& g = *p.g;
  const int r = g.rank;
  const bool cf = g.data_format == DataFormat::channels_first;
  const int w_k = cf ? 2 : 0, y_sp = cf ? 2 : 1;
  const std::int64_t cout_g = g.out_channels / g.groups;
  if (nr < 1) return false;
  // The kernel dims dense (last first) in the weights and the output, from a tap's stride:
  // 1 in PyTorch's (output channel, tap) order, C_out/g * C_in and C_out in Keras's.
  const std::int64_t w_tap = cf ? 1 : cout_g * g.in_channels, y_tap = cf ? 1 : g.out_channels;
  std::int64_t taps = 1;
  for (int d = r - 1; d >= 0; --d) {
    if (g.input[d] != 1 || g.output[d] != g.kernel[d] || p.w_strides[w_k + d] != w_tap * taps ||
        p.y_strides[y_sp + d] != y_tap * taps)
      return false;
    taps *= g.kernel[d];
  }
  sc->by_columns = !cf;
  sc->cout_g = cout_g;
  sc->taps = taps;
  sc->cols = cout_g * taps;
  if (cf) {
    sc->ld = p.w_strides[0];
    return p.w_strides[1] == taps && p.y_strides[1] == taps && sc->cols % nr == 0;
  }
  sc->ld = g.in_channels;
  sc->tap_stride = g.out_channels;
  return p.w_strides[r + 1] == 1 && p.w_strides[r] == g.in_channels && p.y_strides[r + 1] == 1 &&
         cout_g % nr == 0;
}

template <class T>
bool shuffle_reads_weights(const Problem<T>& p, std::int64_t nr) {
  ShuffleCols sc;
  return shuffle_cols(p, nr, &sc);
}

// The bias of columns [j0, j0 + n) of group gi into out: their output channels', in runs of
// one channel or of consecutive ones (no division per column: it showed in the profile of
// DCGAN's projection, 8192 columns).
template <class T>
void column_bias(const Problem<T>& p, const ShuffleCols& sc, std::int64_t gi, std::int64_t j0,
                 std::int64_t n, T* out) {
  const T* b = p.bias + gi * sc.cout_g;
  for (std::int64_t j = j0, len = 0; j < j0 + n; j += len) {
    if (sc.by_columns) {  // column t * C_out/g + co
      const std::int64_t co = j % sc.cout_g;
      len = std::min(sc.cout_g - co, j0 + n - j);
      std::copy_n(b + co, len, out + (j - j0));
    } else {  // column co * taps + t
      const std::int64_t co = j / sc.taps;
      len = std::min((co + 1) * sc.taps - j, j0 + n - j);
      std::fill_n(out + (j - j0), len, b[co]);
    }
  }
}

// Every column of a group, in panels as copy_block and copy_block_by_columns lay them out.
template <class T>
void copy_group_columns(const Problem<T>& p, const ShuffleCols& sc, std::int64_t gi,
                        std::int64_t j0, std::int64_t cols, std::int64_t nr, TransposeFn<T> turn,
                        T* buf) {
  const std::int64_t cin_g = p.g->in_channels / p.g->groups;
  if (sc.by_columns)
    copy_block_by_columns(p.w + gi * cin_g + j0 * sc.ld, sc.ld, cin_g, cols, nr, turn, buf);
  else
    copy_block(p.w + gi * cin_g * sc.ld + j0, sc.ld, cin_g, cols, nr, buf);
}

template <class T>
ShuffleColumns<T> pack_shuffle_columns(const Problem<T>& p, const KernelSet<T>& ks) {
  ShuffleCols sc;
  shuffle_cols(p, ks.nr, &sc);
  const Geometry& g = *p.g;
  const std::int64_t group_size = g.in_channels / g.groups * sc.cols;
  ShuffleColumns<T> out;
  out.nr = ks.nr;
  out.size = static_cast<std::size_t>(g.groups * group_size);
  out.data = detail::make_buffer<T>(out.size, "the plan's packed weights", detail::kWeightsAdvice);
  for (std::int64_t gi = 0; gi < g.groups; ++gi)
    copy_group_columns(p, sc, gi, 0, sc.cols, ks.nr, ks.transpose,
                       out.data.get() + gi * group_size);
  if (p.bias) {
    detail::resize_or_throw(out.bias, static_cast<std::size_t>(g.groups * sc.cols),
                            "the bias per tap");
    for (std::int64_t gi = 0; gi < g.groups; ++gi)
      column_bias(p, sc, gi, 0, sc.cols, out.bias.data() + gi * sc.cols);
  }
  return out;
}

// The input of one position per sample as [channel][sample], for the stream kernel (A with
// a_ms == 1).
template <class T>
std::vector<T> input_by_channel(const Problem<T>& p, int c_axis) {
  const Geometry& g = *p.g;
  std::vector<T> out;
  detail::resize_or_throw(out, static_cast<std::size_t>(g.batch * g.in_channels),
                          "the input by channel");
  for (std::int64_t c = 0; c < g.in_channels; ++c)
    for (std::int64_t n = 0; n < g.batch; ++n)
      out[c * g.batch + n] = p.x[n * p.x_strides[0] + c * p.x_strides[c_axis]];
  return out;
}

template <class T>
std::size_t run_shuffle_in_place(const Problem<T>& p, const KernelSet<T>& ks, int threads,
                                 std::size_t* block_bytes, const ShuffleColumns<T>* columns) {
  const Geometry& g = *p.g;
  ShuffleCols sc;
  shuffle_cols(p, ks.nr, &sc);
  const std::int64_t cols = sc.cols;
  const std::int64_t cin_g = g.in_channels / g.groups, panels = cols / ks.nr;
  const int c_axis = sc.by_columns ? g.rank + 1 : 1;
  // The bias per column: the plan's, or each item's columns' in its thread's buffer.
  const T* const plan_bias = columns && !columns->bias.empty() ? columns->bias.data() : nullptr;
  // Few positions: the stream kernel reads the weights where they lie, each line once, with
  // the input by channel. Otherwise an item is a block of panels of one group, copied (see
  // weight_blocks.hpp) and run.
  const bool stream = !columns && !sc.by_columns && ks.stream_gemm && g.batch <= ks.stream_mr;
  runtime::note_kernel(columns  ? "phase_shuffle_columns"
                       : stream ? "phase_shuffle_stream"
                                : "phase_shuffle_in_place");
  const std::int64_t block = block_panels(cin_g, ks.nr, sizeof(T));
  const std::int64_t blocks = (panels + block - 1) / block, items = g.groups * blocks;
  threads = static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, items)));
  const std::size_t per_slot =
      columns || stream ? 0 : static_cast<std::size_t>(block * cin_g * ks.nr);
  std::vector<T> bufs, bias;
  detail::resize_or_throw(bufs, per_slot * static_cast<std::size_t>(threads),
                          "the blocks of copied weights");
  if (p.bias && !plan_bias)
    detail::resize_or_throw(bias, static_cast<std::size_t>(block * ks.nr * threads),
                            "the bias per tap");
  std::vector<T> by_channel;
  if (stream) by_channel = input_by_channel(p, c_axis);
  const std::int64_t zero_off = 0;
  auto body = [&](std::int64_t item, int slot) {
    const std::int64_t gi = item / blocks, q0 = item % blocks * block;
    const std::int64_t q1 = std::min(panels, q0 + block), j0 = q0 * ks.nr;
    // Column j's bias at col_bias[j - j0].
    const T* col_bias = plan_bias ? plan_bias + gi * cols + j0 : nullptr;
    if (!bias.empty()) {
      T* own = bias.data() + slot * block * ks.nr;
      column_bias(p, sc, gi, j0, (q1 - q0) * ks.nr, own);
      col_bias = own;
    }
    GemmCall<T> call;
    call.a_off = &zero_off;
    call.b_off = &zero_off;
    call.pairs = 1;
    call.k = cin_g;
    call.c_ms = p.y_strides[0];
    call.c_ns = 1;
    call.m = g.batch;
    if (stream) {
      call.a = by_channel.data() + gi * cin_g * g.batch;
      call.a_ks = g.batch;
      call.a_ms = 1;
      call.b_ld = sc.ld;
      call.n = (q1 - q0) * ks.nr;
      call.b = p.w + gi * cin_g * sc.ld + j0;
      call.c = p.y + sc.y_of(gi, j0);
      call.bias = col_bias;
      ks.stream_gemm(call);
      return;
    }
    call.a = p.x + gi * cin_g * p.x_strides[c_axis];
    call.a_ks = p.x_strides[c_axis];
    call.a_ms = p.x_strides[0];
    const T* buf = nullptr;
    if (columns) {
      buf = columns->data.get() + (gi * panels + q0) * cin_g * ks.nr;
    } else {
      T* slot_buf = bufs.data() + static_cast<std::size_t>(slot) * per_slot;
      copy_group_columns(p, sc, gi, j0, (q1 - q0) * ks.nr, ks.nr, ks.transpose, slot_buf);
      buf = slot_buf;
    }
    call.b_ld = ks.nr;
    call.n = ks.nr;
    for (std::int64_t q = q0; q < q1; ++q) {
      const std::int64_t j = q * ks.nr;
      call.b = buf + (q - q0) * cin_g * ks.nr;
      call.c = p.y + sc.y_of(gi, j);
      call.bias = col_bias ? col_bias + (j - j0) : nullptr;
      ks.channel_gemm(call);
    }
  };
  // Runs of consecutive blocks per thread: a thread walks the weights' columns in order.
  detail::parallel_for(items, threads, body, detail::Schedule::runs);
  *block_bytes = bufs.capacity() * sizeof(T);
  return (bias.capacity() + by_channel.capacity()) * sizeof(T);
}

template <class T>
ChannelKernel<T> channel_kernel(const KernelSet<T>& ks, std::int64_t cout_g) {
  for (const auto& k : ks.narrow)
    if (k.fn && cout_g <= k.nr) return k;
  return {ks.channel_gemm, ks.nr, ks.mr};
}

template struct Packed<float>;
template ChannelKernel<float> channel_kernel(const KernelSet<float>&, std::int64_t);
template ChannelKernel<double> channel_kernel(const KernelSet<double>&, std::int64_t);
template struct Packed<double>;
template Packed<float> pack(const Geometry&, const float*, const std::vector<std::int64_t>&, Algo,
                            std::int64_t, int, TransposeFn<float>, bool, FiniteFn<float>);
template Packed<double> pack(const Geometry&, const double*, const std::vector<std::int64_t>&, Algo,
                             std::int64_t, int, TransposeFn<double>, bool, FiniteFn<double>);
template Packed<float> pack_grid_only(const Geometry&, const float*,
                                      const std::vector<std::int64_t>&, FiniteFn<float>);
template Packed<double> pack_grid_only(const Geometry&, const double*,
                                       const std::vector<std::int64_t>&, FiniteFn<double>);
template std::size_t run(const Problem<float>&, const Packed<float>&, const KernelSet<float>&, int);
template bool grid_applies(const Problem<float>&, const Packed<float>&, const KernelSet<float>&);
template bool grid_applies(const Problem<double>&, const Packed<double>&, const KernelSet<double>&);
template std::size_t run_grid(const Problem<float>&, const Packed<float>&, const KernelSet<float>&,
                              int, const std::function<Packed<float>()>*);
template std::size_t run_grid(const Problem<double>&, const Packed<double>&,
                              const KernelSet<double>&, int,
                              const std::function<Packed<double>()>*);
template bool shuffle_applies(const Problem<float>&);
template bool shuffle_applies(const Problem<double>&);
template bool shuffle_reads_weights(const Problem<float>&, std::int64_t);
template bool shuffle_reads_weights(const Problem<double>&, std::int64_t);
template std::size_t run_shuffle_in_place(const Problem<float>&, const KernelSet<float>&, int,
                                          std::size_t*, const ShuffleColumns<float>*);
template std::size_t run_shuffle_in_place(const Problem<double>&, const KernelSet<double>&, int,
                                          std::size_t*, const ShuffleColumns<double>*);
template ShuffleColumns<float> pack_shuffle_columns(const Problem<float>&, const KernelSet<float>&);
template ShuffleColumns<double> pack_shuffle_columns(const Problem<double>&,
                                                     const KernelSet<double>&);
template std::size_t run_shuffle(const Problem<float>&, const Packed<float>&,
                                 const KernelSet<float>&, int);
template std::size_t run_shuffle(const Problem<double>&, const Packed<double>&,
                                 const KernelSet<double>&, int);
template std::size_t run(const Problem<double>&, const Packed<double>&, const KernelSet<double>&,
                         int);

}  // namespace tconv::kernels::phase
