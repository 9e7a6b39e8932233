// The interface between the phase driver (baseline code) and the per-ISA micro-kernels.
//
// Plain structs and function pointers only: an ISA translation unit must not share any inline
// function or template instantiation with baseline code (docs/design.md, "Per-ISA code and
// the ODR"), so nothing here has a body.
//
// A call computes an M x N block of one output phase as a batch-reduce GEMM:
//
//   C[m][n] = bias[n] + sum over pairs p, over k < K of  A_p[k][m] * B_p[k][n]
//   A_p[k][m] = a[a_off[p] + k * a_ks + m * a_ms]      (a packed input row buffer)
//   B_p[k][n] = b[b_off[p] + k * b_ld + n]              (packed weights)
//   C[m][n] is stored at c[m * c_ms + n * c_ns]          (the output, any layout)
//
// Each C element is accumulated in registers from the bias and stored once; the summation
// order depends only on the pair list, never on the thread that runs the call.
#pragma once

#include <cstdint>

namespace tconv::kernels {

template <class T>
struct GemmCall {
  const T* a;
  const std::int64_t* a_off;
  const T* b;
  const std::int64_t* b_off;
  std::int64_t pairs, k, a_ks, a_ms, b_ld;
  T* c;
  std::int64_t c_ms, c_ns;
  std::int64_t m, n;  // positions to compute; valid columns (<= the kernel's width)
  const T* bias;      // n values, or null for zero
  // A hint: the A rows are read from main memory for the first time (a_ks must be 1), so the
  // kernel fetches each row's next lines ahead of the k loop. Kernels may ignore it.
  bool prefetch_a = false;
  // Row windows, or null: pair p has A positions m in [m_lo[p], m_hi[p]) only; the positions
  // outside are zeros the kernel must not read (their addresses may lie outside the input: A is
  // then the input itself, read in place, and these are the taps that fall past its borders). m_lo
  // may be negative and m_hi may exceed m. With windows the position kernels read no lane at or
  // past a pair's m_hi (there is no buffer slack to read into). Only for kernel sets that declare
  // `windows`.
  const std::int64_t* m_lo = nullptr;
  const std::int64_t* m_hi = nullptr;
  // The cell kernel only (KernelSet::cell_gemm): B's column stride (B_p[k][n] at
  // b[b_off[p] + k * b_ld + n * b_ns]), and, or null for all, per (pair p, vector v of
  // positions) the lanes of A to read, bit i of a_lanes[p * ceil(m / lanes) + v] for position
  // v * lanes + i: the others are zeros the kernel must not read (A is the input read in place).
  // lanes_ld: a_lanes' entries per pair when not ceil(m / lanes) (a call over part of the
  // cells, a_lanes pointing at the first vector's entry of pair 0).
  std::int64_t b_ns = 1, lanes_ld = 0;
  const std::uint16_t* a_lanes = nullptr;
  // The cell kernel only: `sets` GEMMs at once, set s of pairs [set_first[s], set_first[s + 1])
  // into its C at c + s * c_ss (sets == 1 with set_first null: every pair into c).
  std::int64_t sets = 1, c_ss = 0;
  const std::int64_t* set_first = nullptr;
};

template <class T>
using GemmFn = void (*)(const GemmCall<T>&);

// The position-vector GEMM over several phases of the last dim at once (tiny C_out): one load
// of input positions feeds every phase with a tap at that shift.
//
//   C_ph[m][n] = bias[n] + sum over pairs p with b_off[p * phases + ph] >= 0, over k < K of
//                a[a_off[p] + k * a_ks + m] * b[b_off[p * phases + ph] + k * b_ld + n]
//   C_ph[m][n] is stored at c[ph * c_ps + m * c_ms + n * c_ns]
//
// partner[p] > p names a pair whose phases are exactly the ones pair p lacks: the kernel runs
// both in one pass over k, so every accumulator has a chain to advance (a pair feeding one
// phase alone leaves too few independent FMA chains to hide the latency). partner[p] == -2
// marks such a partner (already done), -1 a pair run alone. The summation order is fixed by
// the list and the partners, never by the thread that runs the call.
template <class T>
struct PhaseCall {
  const T* a;
  const std::int64_t* a_off;
  const T* b;
  const std::int64_t* b_off;    // pairs x phases; -1: that phase has no tap at this shift
  const std::int64_t* partner;  // pairs entries, or null: every pair alone
  std::int64_t pairs, k, a_ks, b_ld, phases;
  T* c;
  std::int64_t c_ms, c_ps, c_ns;
  std::int64_t m, n;
  const T* bias;
  // Row windows per pair (partners included), or null: as in GemmCall.
  const std::int64_t* m_lo = nullptr;
  const std::int64_t* m_hi = nullptr;
  // The pairs come in groups of `group` consecutive ones that read the same input row at
  // different shifts (a_off apart by the shift): a kernel may run a group in one pass over k.
  std::int64_t group = 1;
};

// Returns false (and computes nothing) when it has no kernel for this (phases, n).
template <class T>
using PhaseFn = bool (*)(const PhaseCall<T>&);

// Every phase of the last two dims at once (tiny C_out, read in place): the sy x sx phases of
// an input row of q positions are one tile of sy * sx accumulator sets, so each input vector
// loaded feeds every output row and column phase with a tap at that (row, column) shift,
// rather than one output row's phases as in PhaseCall.
//
//   C[ry][rx][m][n] = bias[n] + sum over pairs p with bit ry of row_mask[p] and bit rx of
//                     col_mask[p], over k < K of
//                     a[a_off[p] + k * a_ks + m] * b[b_off[p] + k * b_ld + (ry * PH + rx) * N + n]
//   stored at c[ry * c_rs + m * c_ms + rx * c_ps + n * c_ns], for output rows ry < rows_valid
//   and row positions m * c_ms / c_ps + rx < outputs (the row's last outputs may lack phases)
//
// with RY = row_phases, PH = phases, N = n, b_ld = RY * PH * N (the weights of a pair: every
// phase's taps at its shift, zeros where a phase has none, never read). Pairs come in groups
// of `group` consecutive ones reading the same input row at different shifts (so with the same
// row_mask); the row windows m_lo / m_hi are required (A is the input, read in place).
template <class T>
struct GridCall {
  const T* a;
  const std::int64_t* a_off;
  const std::int64_t* m_lo;
  const std::int64_t* m_hi;
  const T* b;
  const std::int64_t* b_off;
  const std::int64_t* row_mask;
  const std::int64_t* col_mask;
  std::int64_t pairs, group, k, a_ks, b_ld;
  std::int64_t row_phases, phases;
  T* c;
  std::int64_t c_rs, c_ms, c_ps, c_ns;
  std::int64_t m, n;
  std::int64_t rows_valid, outputs;
  const T* bias;
  // A hint, or null: an input row (channels a_ks apart, positions as m) that the next call
  // reads first; the kernel fetches its lines while it computes.
  const T* prefetch = nullptr;
};

// Returns false (and computes nothing) when it has no kernel for (n, row_phases, phases).
template <class T>
using GridFn = bool (*)(const GridCall<T>&);

// A kernel family: the channel-vector GEMM (N = output channels, width nr) and the
// position-vector GEMM (M = output positions in vectors of `vl`, N <= 4 output channels,
// a_ms must be 1; without row windows the row buffer must be readable `position_tile` elements
// past the last row, with them nothing past a pair's window is read).
// dst[j * dst_ld + i] = src[i * src_ld + j] for i < rows, j < cols (a strided 2-D transpose).
// dst_order: sweep dst rows to the end before the next band (the side in main memory streams
// through few rows at a time), else src rows.
template <class T>
using TransposeFn = void (*)(const T* src, std::int64_t src_ld, T* dst, std::int64_t dst_ld,
                             std::int64_t rows, std::int64_t cols, bool dst_order);

// Whether p[0..n) are free of Inf and NaN (detail::finite_run over a unit-step run, in vectors).
template <class T>
using FiniteFn = bool (*)(const T* p, std::int64_t n);

// Depthwise, channels_first: output rows [row0, row1) of one channel (a row: all spatial
// dims but the last). Row `row` takes the pairs e in [pair_first[row], pair_first[row + 1]),
// each an input row and a kernel row:
//
//   X_e = x + (pair_x[e] - x_first) * x_pitch      (the input row, zero-haloed)
//   W_e = w + pair_w[e]                             (the kernel row along the last dim)
//
// and its output o = phases * q + r (r < phases, o < y_len) is
//
//   y[y_off[row] + o * y_step] = bias + sum over e, over taps t of phase r of
//                                W_e[tap_k[t]] * X_e[q + tap_c[t]]
//
// where the taps of phase r are t in [tap_first[r], tap_first[r + 1]) (r < min(phases, y_len)).
// The caller makes every X_e[q + tap_c[t]] readable (the halo holds zeros), so each phase of
// a row is a dense correlation with no bounds checks. The kernel first fills the input rows
// [x_first, x_first + fill_rows) of the buffer from the channel's input:
//
//   fill[(i - x_first) * x_pitch + j] = src[src_off[i] + j * src_step]   for j < src_len
//
// (fill == x; the halos around each row are the caller's and stay untouched).
//
// Rows may also run two at a time (stride 2 along the row, y_step 1, y_len / 2 >= 8): from row
// r, pair_run[r] groups (r, r + 1), (r + 2, r + 3), ... in which both rows of a group read the
// same input rows (1, 2 or 4), every group has the kernel rows of the first, and input rows and
// y offsets advance by the same amounts from group to group. pair_kind names the phases' taps:
// 1: shifts (lo + 1, lo) for phase 0 and (lo + 2, lo + 1) for phase 1, in tap order (kernel 4,
// padding 1); 2: shift lo, one tap per phase (kernel 2); 0: none, and pair_run is all zero.
// With pair_kind != 0, rows outside the runs that read 1, 2 or 4 input rows may run alone on the
// same kernels. Kernels may ignore all this.
template <class T>
struct DwRowsCall {
  const T* src;
  const std::int64_t* src_off;
  std::int64_t src_step, src_len;
  T* fill;
  std::int64_t fill_rows;
  const T* x;
  std::int64_t x_first, x_pitch;
  const T* w;
  const std::int64_t* pair_first;
  const std::int64_t* pair_x;
  const std::int64_t* pair_w;
  const std::int64_t* y_off;
  const std::int64_t* pair_run;
  int pair_kind;
  std::int64_t pair_lo;
  std::int64_t row0, row1;
  const std::int64_t* tap_first;
  const std::int64_t* tap_k;
  const std::int64_t* tap_c;
  std::int64_t phases;
  std::int64_t y_len;
  T* y;
  std::int64_t y_step;
  T bias;
};

template <class T>
using DwRowsFn = void (*)(const DwRowsCall<T>&);

// Depthwise, channels_last: output pixels [o0, o1) of one output row, vectorised over the
// `channels` contiguous channels. Pixel o takes the taps row pair p x column tap t, for t in
// [col_first[o], col_first[o + 1]):
//
//   y[o * y_step + c] = bias[c] + sum over p, t of x[row_x[p] + col_x[t] + c] *
//                                                  w[row_w[p] + col_w[t] + c]
template <class T>
struct DwPixelsCall {
  const T* x;
  const std::int64_t* row_x;
  const std::int64_t* row_w;
  std::int64_t pairs;
  const std::int64_t* col_first;
  const std::int64_t* col_x;
  const std::int64_t* col_w;
  const T* w;     // packed [tap][channels]
  const T* bias;  // channels values, or null for zero
  std::int64_t channels;
  std::int64_t o0, o1;
  T* y;  // the output row (o = 0)
  std::int64_t y_step;
};

template <class T>
using DwPixelsFn = void (*)(const DwPixelsCall<T>&);

// A channel-vector kernel for panels of nr output channels, in full tiles of mr positions.
template <class T>
struct ChannelKernel {
  GemmFn<T> fn = nullptr;
  std::int64_t nr = 0, mr = 0;
};

template <class T>
struct KernelSet {
  GemmFn<T> channel_gemm;
  std::int64_t nr;
  GemmFn<T> position_gemm;
  std::int64_t position_tile;
  TransposeFn<T> transpose;
  PhaseFn<T> phase_gemm;    // may be null
  DwRowsFn<T> dw_rows;      // may be null (the depthwise driver's scalar kernels then)
  DwPixelsFn<T> dw_pixels;  // may be null
  // Positions of the channel kernel's full tile: the driver cuts long rows into blocks of whole
  // tiles, so that a block does not end in a tile too short to hide the FMA latency.
  std::int64_t mr = 6;
  // Whether channel_gemm, and position_gemm with phase_gemm, honour the row windows
  // (GemmCall::m_lo / m_hi): the driver then reads small inputs in place instead of copying
  // them into zero-haloed row buffers.
  bool channel_windows = false;
  bool position_windows = false;
  // Whether phase_gemm runs each group of shifts in one pass over the input channels, so that
  // reading an NCHW input in place (channel planes far apart) costs no more than copying it.
  bool position_in_place = false;
  GridFn<T> grid_gemm = nullptr;  // may be null
  // Channel kernels for panels narrower than nr, narrowest first (fn null: none). Layers with
  // few output channels per group pack the narrowest panel that holds them, so no FMA lanes
  // run on the zero columns a full-width panel would carry.
  ChannelKernel<T> narrow[2] = {};
  // The cell kernel, or null: C column-major (c_ms == 1) with the positions (a_ms == 1) in the
  // vector lanes and each weight broadcast from where it lies (b_ns, a_lanes). For the direct
  // driver: few positions against weights too large to copy.
  GemmFn<T> cell_gemm = nullptr;
  // The positions of its tile: a call with more reads the weights once per tile of positions.
  std::int64_t cell_mr = 0;
  // The lanes of its vectors (GemmCall::a_lanes has a bit per lane).
  std::int64_t cell_lanes = 0;
  // The columns of its tile: calls of a multiple of them run no narrow tile.
  std::int64_t cell_nr = 0;
  // transpose with dst_order, writing whole aligned destination lines with streaming stores,
  // or null: for outputs too large to stay in cache, where an ordinary store first reads each
  // line it writes. Call it only inside detail::parallel_for, which orders those stores.
  TransposeFn<T> transpose_stream = nullptr;
  // The pack's Inf/NaN check in vectors, or null for detail::finite_run.
  FiniteFn<T> finite = nullptr;
  // The stream kernel, or null: up to stream_mr positions (A with a_ms == 1) by any columns, B
  // read where it lies (b_ld apart), each line once; pairs == 1, no windows, c_ns == 1.
  GemmFn<T> stream_gemm = nullptr;
  std::int64_t stream_mr = 0;
};

}  // namespace tconv::kernels
