// Phase (sub-pixel) decomposition of a transposed convolution into dense batch-reduce GEMMs.
//
// Per dimension the outputs o = s*q + r with the same residue r (a "phase") receive
// contributions from the same kernel taps {k : (r + pad_lo - k*d) mod s == 0}, each from the
// input position i = q + c_k with c_k = (r + pad_lo - k*d) / s. So every phase is a dense
// stride-1 correlation with its own small sub-kernel: no multiplications by inserted zeros, no
// column buffer, every output written once with the bias in its accumulator. Phases with no
// taps (stride > kernel, some dilations) receive the bias only. kernel == stride is the special
// case of one tap per phase: a plain GEMM whose stores do the pixel shuffle.
//
// The driver walks output rows (all spatial dims but the last) and blocks of the last dim; for
// each it copies the input rows the row's taps need into a small zero-haloed buffer (so borders
// need no special code and any input layout or stride is accepted), then calls the micro-kernel
// once per (phase along the last dim, channel panel). Layers with at most 4 output channels
// per group and strides of 2-4 in their last two dims instead compute every phase of those two
// dims at once from the input read in place (GridCall, where the ISA has that kernel): each
// input vector loaded feeds every output row and column phase with a tap at its shift, so no
// row copies are needed to keep the loads cheap.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "buffer.hpp"
#include "kernels/microkernel.hpp"
#include "kernels/problem.hpp"

namespace tconv::kernels::phase {

enum class Algo { channel, positions };

struct DimPhases {
  std::int64_t stride = 1;
  std::vector<std::vector<std::int64_t>> k;  // per residue: kernel indices of its taps
  std::vector<std::vector<std::int64_t>> c;  // per residue: input shift of each tap
};

// A dim's phases: per residue r < stride, the taps k with (r + pad_lo - k * dilation) a multiple
// of the stride, and their input shifts.
DimPhases dim_phases(std::int64_t kernel, std::int64_t stride, std::int64_t dilation,
                     std::int64_t pad_lo);

// Weights packed for one layer: per (group, phase[, channel panel]) a block of
// [tap of the phase][C_in/g][width]; width = the kernel's nr (channel algorithm, zero-padded
// columns) or C_out/g (position algorithm).
template <class T>
struct Packed {
  Algo algo = Algo::channel;
  std::int64_t width = 0, panels = 1, phases = 1;
  std::int64_t groups = 1, cin_g = 0, cout_g = 0;
  std::vector<std::int64_t> kernel, stride, dilation, pad_lo;  // what the packing depends on
  std::vector<DimPhases> dims;
  std::vector<std::int64_t> offset;  // per (group, phase, panel)
  detail::Buffer<T> data;            // not value-initialised: every element is written by the pack
  std::size_t size = 0;
  bool finite = true;  // no Inf or NaN in what was packed (checked as it is packed)

  // The same weights for GridCall (every phase of the last two dims at once), packed when
  // grid_layout_fits: per (group, phase of the dims before those two, tap of that phase, row
  // shift, column shift) a [C_in/g][RY][PH][C_out/g] block, zeros where a phase has no tap at
  // that shift. Shifts run from the lowest to the highest of any phase's taps.
  detail::Buffer<T> grid_data;
  std::size_t grid_size = 0;
  std::int64_t row_shift_lo = 0, row_shifts = 0, col_shift_lo = 0, col_shifts = 0;
  std::vector<std::int64_t> grid_offset;  // per (group, outer phase)

  // Where every phase of the last dim has one tap, at input shift 0 (kernel == stride there,
  // no padding before it, no dilation), with C_out/g exactly one panel wide: per (group, phase of
  // the other dims) a [tap][C_in/g][joint_ld] block, the last dim's phases side by side (column
  // rx * C_out/g + co; zeros up to joint_ld, whole panels of any kernel's width). Their outputs
  // lie side by side in a staged channels_last row, so one full-width GEMM computes them all.
  detail::Buffer<T> joint_data;
  std::size_t joint_size = 0;
  std::int64_t joint_ld = 0;
  std::vector<std::int64_t> joint_offset;  // per (group, phase of the other dims)

  // Packed for this geometry's weights (same layer, any input size)?
  bool matches(const Geometry& g) const;
  std::size_t bytes() const { return (size + grid_size + joint_size) * sizeof(T); }
};

// Which algorithm the micro-kernels run for this layer.
Algo choose_algo(const Geometry& g);

// Whether the GridCall layout (and kernel) covers this layer: the position algorithm, two
// dims or more, row and column strides of 2-4, and C_out/g x both strides <= 24 accumulators.
bool grid_layout_fits(const Geometry& g);

// The channel kernel for C_out/g output channels per group: the ISA's narrowest panel that
// holds them, else the full one (panels of nr). Packing and driver both choose by it.
template <class T>
ChannelKernel<T> channel_kernel(const KernelSet<T>& ks, std::int64_t cout_g);

// On up to `threads` threads (the weights of large layers are megabytes). `transpose` (the
// ISA's, or null) turns PyTorch-layout blocks around in vector registers. `grid_layout`: also
// the GridCall layout, where it fits. `finite` (the ISA's, or null) checks the packed values for
// Inf and NaN.
template <class T>
Packed<T> pack(const Geometry& g, const T* w, const std::vector<std::int64_t>& w_strides, Algo algo,
               std::int64_t nr, int threads, TransposeFn<T> transpose = nullptr,
               bool grid_layout = false, FiniteFn<T> finite = nullptr);

// The GridCall layout alone (no per-phase blocks: Packed::data is empty), straight from the
// weights, for a call that packs for itself and runs the grid kernel. grid_layout_fits(g) must
// hold. `finite` as in pack.
template <class T>
Packed<T> pack_grid_only(const Geometry& g, const T* w, const std::vector<std::int64_t>& w_strides,
                         FiniteFn<T> finite = nullptr);

// Whether run_shuffle handles this layer: no padding, output padding or dilation, every dim
// either kernel == stride or a single input position (so each output comes from exactly one
// input position and tap), the channel algorithm, and channels contiguous enough to feed the
// micro-kernel straight from x (channels_last, or an input of one position per image).
template <class T>
bool shuffle_applies(const Problem<T>& p);

// Whether run_shuffle_in_place takes this layer: every input dim one position wide, and either
// channels first with the weights' and the output's (output channel, kernel) axes dense, so
// that each input channel's weights are a row of the GEMM's B as they lie, (C_out/g * kernel
// elements) of them a whole number of the kernel's width `nr`; or channels last with Keras's
// dense (*kernel, C_out/g, C_in) weights, each (tap, output channel) a column of B, and C_out/g
// a whole number of `nr` (a panel within one tap of the output).
template <class T>
bool shuffle_reads_weights(const Problem<T>& p, std::int64_t nr);

// kernel == stride as one GEMM [input positions x C_in] x [C_in x taps * C_out] whose stores
// do the pixel shuffle: the micro-kernel reads x in place (no row buffer, no halo) and writes
// each output once, bias included. Returns the scratch bytes used (none).
template <class T>
std::size_t run_shuffle(const Problem<T>& p, const Packed<T>& packed, const KernelSet<T>& kernels,
                        int threads);

// A plan's weights for run_shuffle_in_place, copied once for all its calls: per group, every
// panel of the blocks that weight_blocks.hpp copies, [group][panel][C_in/g][nr]; and the bias
// of each column, where the plan has a bias.
template <class T>
struct ShuffleColumns {
  std::int64_t nr = 0;
  detail::Buffer<T> data;  // every element written by the copy
  std::size_t size = 0;
  std::vector<T> bias;
  std::size_t bytes() const { return (size + bias.size()) * sizeof(T); }
};

// The copy of shuffle_reads_weights(p, kernels.nr)'s weights for run_shuffle_in_place.
template <class T>
ShuffleColumns<T> pack_shuffle_columns(const Problem<T>& p, const KernelSet<T>& kernels);

// run_shuffle with the weights as they lie rather than packed: a row of B is an input channel's
// weights, its columns the (output channel, tap) pairs (Keras's: (tap, output channel)), which
// are also the output's order; blocks of panels are copied as the GEMM reaches them
// (weight_blocks.hpp), read from `columns` where a plan copied them all once, or, for up to
// the stream kernel's positions on PyTorch's weights, read in place by that kernel. Every
// product it forms is one of the definition's, so Inf and NaN weights need no other kernel.
// Returns the scratch bytes used (the bias of each column, where `columns` does not hold it,
// and the stream kernel's input by channel), with the blocks it copied (one per thread) in
// *block_bytes.
template <class T>
std::size_t run_shuffle_in_place(const Problem<T>& p, const KernelSet<T>& kernels, int threads,
                                 std::size_t* block_bytes,
                                 const ShuffleColumns<T>* columns = nullptr);

// What run returns, computing nothing, where its buffers would exceed detail::scratch_budget
// (kernels far longer than the input along two dims or more): the caller runs the layer on a
// kernel without per-row buffers.
inline constexpr std::size_t kDeclined = static_cast<std::size_t>(-1);

// Whether run_grid takes this layer: its weights in the GridCall layout, the ISA's kernel, the
// input's last dim contiguous (in place, whole vectors of positions), and few enough shifts.
template <class T>
bool grid_applies(const Problem<T>& p, const Packed<T>& packed, const KernelSet<T>& kernels);

// Every phase of the last two dims at once (GridCall), the input read in place. Where `repack`
// is given (a call that packed `packed` for itself), each thread but the caller runs on a copy
// it makes with it: the caller's copy, which it rewrites every call, is then read by no other
// core, whose cached lines would make those writes wait (docs/design.md). Returns the scratch
// bytes used (tap lists, all threads), or kDeclined.
template <class T>
std::size_t run_grid(const Problem<T>& p, const Packed<T>& packed, const KernelSet<T>& kernels,
                     int threads, const std::function<Packed<T>()>* repack = nullptr);

// The row-buffer driver: runs the layer with packed weights on up to `threads` threads.
// Returns the bytes of scratch used (row buffers and tap lists, all threads), for the memory
// accounting, or kDeclined.
template <class T>
std::size_t run(const Problem<T>& p, const Packed<T>& packed, const KernelSet<T>& kernels,
                int threads);

}  // namespace tconv::kernels::phase
