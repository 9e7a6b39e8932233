// The direct driver: a GEMM on the weights as the caller passed them, then a col2im.
//
// With weights laid out (C_in, C_out/g, *kernel) densely per input channel (PyTorch's layout),
// the weights of input channel ci are one run of N = C_out/g * prod(kernel) values in
// (output channel, tap) order: a column per (output channel, tap). So over the input cells m
// of one image (every spatial index, flattened) a group is the GEMM
//
//   C[m][j] = sum over ci of x[ci][m] * w[ci][j]
//
// run by the channel kernel with B read in place (b_ld = the weights' input-channel stride),
// followed by a col2im: C[m][(co, tap)] adds to y[co][m * stride + tap * dilation - pad_lo]
// where that cell lies inside y (the others fall in the cropped padding). Nothing is packed:
// where the weights are large and the input cells few, a pack costs more than it saves.
// Every product it forms is one of the definition's, so Inf and NaN weights need no other
// kernel.
//
// Where the kernel set has a cell kernel (KernelSet::cell_gemm) and one image's cells lie one
// element apart and fit its tile, it runs the GEMM with the cells in the vector lanes and the
// weights broadcast in place: nothing is copied, and C (column-major) goes into y column by
// column (run_cells).
//
// Where moreover every output dim is stride x input (run_phases), each phase's outputs lie on a
// grid of the input's shape: the cell kernel sums a phase's taps over the input read in place at
// their shifts (lanes outside it masked) and each output is written once, with no col2im. Groups
// of a few output channels take that path over any number of cells. It reads the weights at
// their strides in any layout (Keras's too), and an input whose cells are not one element apart
// (channels_last) from a copy with every image's channels first.
//
// Otherwise work goes in panels of the kernel's width nr over the columns, copied a block of
// panels at a time (see weight_blocks.hpp): all the cells of a panel are run while its
// weights (C_in/g x nr) are in cache, every cell of an image at once where its C takes at most
// 16 KiB, else in chunks of about two tiles (C stays in L1), C added into y after each. A thread
// owns whole output channels, so no two threads add into one y cell; a cell's contributions arrive
// in an order fixed by the layer, nr and the kernel's tile (never by the threads).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/microkernel.hpp"
#include "kernels/problem.hpp"

namespace tconv::kernels::direct {

// Output channels per item of the phases path (1 <= most): the fewest items of at most `most`,
// evened out, then rounded up to whole column tiles of the cell kernel (`tile`, 0 for none)
// where that stays within a fifth above `most` (20 columns ran as tiles of 6, 6, 6 and 2).
std::int64_t item_columns(std::int64_t cout_g, std::int64_t most, std::int64_t tile);

// Whether the driver takes the layer: an input whose spatial dims flatten to one stride, rank
// <= 9, and either weights dense per input channel in (C_out/g, *kernel) order or a layer of
// the phases path (by_phases: weights in any layout).
template <class T>
bool applies(const Problem<T>& p, const KernelSet<T>& ks);

// Whether run takes the phases path (the cell kernel, every output dim stride x input, one
// image's cells within the kernel's tile, or narrow_phases).
template <class T>
bool by_phases(const Problem<T>& p, const KernelSet<T>& ks);

// Whether run takes the phases path for any number of cells (in chunks of cells past a tile):
// 5-12 output channels per group.
template <class T>
bool narrow_phases(const Problem<T>& p, const KernelSet<T>& ks);

// Runs the layer on up to `threads` threads. Returns the scratch bytes used (all threads; each
// chunk's C), with the blocks of copied weights in *block_bytes (the packed weights of this
// driver, a block per thread), or phase::kDeclined where they would exceed the scratch budget.
template <class T>
std::size_t run(const Problem<T>& p, const KernelSet<T>& kernels, int threads,
                std::size_t* block_bytes);

}  // namespace tconv::kernels::direct
