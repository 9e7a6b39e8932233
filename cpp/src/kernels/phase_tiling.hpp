// The phase driver's tiling policy: how run() cuts a layer into work items (output rows, blocks
// of the last dim, blocks of rows, shares of the output channels) and sizes each thread's row
// buffers. Pure arithmetic on the layer's shape and the ISA's kernel facts; the measurements
// behind the constants are in docs/design.md ("The phase driver's tiling").
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/phase.hpp"

namespace tconv::kernels::phase {

namespace tiling {
// Items per thread below which rows are split into blocks of the last dim, so threads balance.
inline constexpr std::int64_t kItemsPerThread = 8;
// A row split for balance keeps blocks at least this many positions wide.
inline constexpr std::int64_t kMinBalancedBlock = 24;
// Each thread's row buffers: 64 KiB (within L2) ...
inline constexpr double kRowBuffersBytes = 64.0 * 1024;
// ... grown up to 128 KiB (longer blocks: fewer halos and calls) ...
inline constexpr double kRowBuffersMaxBytes = 128.0 * 1024;
// ... while all threads' buffers stay within 5 % of the output.
inline constexpr double kRowBuffersShare = 0.05;
// Row buffers of up to 256 KiB where an image's output is one row (1-D layers), and a group's
// packed weights fill an L2 (1 MiB): each block of the row reads every weight once, from L3, so
// fewer, longer blocks read them fewer times (docs/design.md).
inline constexpr double kLineBuffersBytes = 256.0 * 1024;
inline constexpr std::int64_t kLineWeightsBytes = std::int64_t(1) << 20;
// A block sized to the buffer budget keeps at least this many positions.
inline constexpr std::int64_t kMinBudgetBlock = 12;
// The channel kernels' shortest tile: split rows are cut into whole tiles of it.
inline constexpr std::int64_t kChannelTile = 6;
// Blocks of whole tiles of the ISA's longer tile where all threads' buffers stay within 4 %
// of the output.
inline constexpr double kLongTileShare = 0.04;
// Rows of fewer positions than this per block, with packed weights per group beyond ...
inline constexpr std::int64_t kShortRow = 32;
// ... this size (a share of L2), are run in blocks of consecutive rows, panel by panel ...
inline constexpr double kLargeWeightsBytes = 256.0 * 1024.0;
// ... of about this many positions in all (twice as many where the kernels read the input in
// place: the block then caches no input rows) ...
inline constexpr std::int64_t kRowBlockPositions = 64;
inline constexpr std::int64_t kRowBlockPositionsInPlace = 128;
// ... whose input rows take at most 4 % of the larger of the output and the weights, shared
// by the threads, between 64 KiB and 1 MiB per thread.
inline constexpr double kRowBlockShare = 0.04;
inline constexpr double kRowBlockMinBytes = 64.0 * 1024.0;
inline constexpr double kRowBlockMaxBytes = 1024.0 * 1024.0;
// Packed weights per group beyond which a row cut into blocks runs the blocks of one panel
// after another (L2 of the cores measured: 2 MiB).
inline constexpr double kBlocksInnerBytes = 2.0 * 1024 * 1024;
// Items per thread below which the output channels (panels) are split too.
inline constexpr std::int64_t kPanelItemsPerThread = 4;
// Buffer rows whose position pitch is a multiple of this many bytes map a tile's positions
// to one or a few L1 sets; such pitches get one cache line of padding.
inline constexpr std::int64_t kAliasingPitchBytes = 1024;
inline constexpr std::int64_t kCacheLineBytes = 64;
// The channel kernels read the input in place when one thread's row copies would exceed 5 %
// of the output (8 % where the input's channels are a plane apart, as in NCHW: each k-step
// of an in-place tile then reads another cache line) ...
inline constexpr double kChannelCopyShare = 0.05;
inline constexpr double kChannelCopyShareStrided = 0.08;
// ... or when all threads' row buffers would pass 9/10 of the scratch bound (10 % of the
// output, at least 4 MiB: detail::scratch_budget).
inline constexpr double kRowCopiesBudgetShare = 0.9;
// ... the position-vector kernels when one thread's copies of whole rows exceed half of it.
inline constexpr double kPositionCopyShare = 0.5;
// GridCall (run_grid): a row split for balance keeps blocks of at least 32 positions, in whole
// vectors of 16 ...
inline constexpr std::int64_t kGridMinBlock = 32;
inline constexpr std::int64_t kGridBlockMultiple = 16;
// ... and it prefetches the next item's input row where the input exceeds L2.
inline constexpr double kPrefetchInputBytes = 2.0 * 1024 * 1024;
}  // namespace tiling

// What the tiling policy reads besides the geometry.
struct TilingInput {
  const Geometry* g = nullptr;
  const std::vector<DimPhases>* dims = nullptr;  // the packed weights' phases per dim
  std::int64_t elem = 0;                         // bytes per element
  bool positions = false;                        // Algo::positions
  std::int64_t cin_g = 0, cout_g = 0, groups = 1, panels = 1, width = 0;
  std::size_t packed_elems = 0;     // Packed::size (every group)
  bool via_row = false;             // outputs staged in a channels-last row (see run)
  std::int64_t xs_x = 0, xs_c = 0;  // input strides along the last dim and the channels
  // The ISA's kernel facts (KernelSet).
  std::int64_t mr = 6, position_tile = 0;
  bool channel_windows = false, position_in_place = false;
  int threads = 1;
};

// How run() cuts the layer. Positions q count phase rows of the last dim (o = q * stride + r).
struct Tiling {
  std::int64_t cmin = 0, cmax = 0;       // lowest and highest input shift of a last-dim tap
  std::int64_t qmax = 0;                 // phase rows of the last dim
  std::int64_t n_outer = 1;              // output positions of the outer dims (one row each)
  std::int64_t rows = 0;                 // output rows: batch x n_outer
  std::int64_t max_sources = 1;          // most outer taps of a row that reach the input
  std::int64_t max_xtaps = 0;            // most last-dim taps of a phase
  std::int64_t qblock = 0, nxb = 1;      // block length and blocks per row along the last dim
  std::int64_t xlen_alloc = 0;           // buffer row length: a block and its halo (and tile)
  std::int64_t cin_pitch = 0;            // channel-kernel buffer: elements per position
  std::int64_t row_stride = 0;           // elements per buffered input row
  std::int64_t line_len = 1, lines = 0;  // output rows per line (last outer dim), lines
  std::int64_t block_rows = 1;           // consecutive rows of a line per item
  std::int64_t blocks_per_line = 1;
  std::int64_t cached = 1;       // buffered input rows per thread and group (the row cache's lines)
  std::int64_t group_lines = 1;  // groups whose lines the row cache keeps side by side: 1 or all
  std::int64_t modulus[8] = {0};  // the row cache's extent per outer dim
  std::int64_t panel_parts = 1, panels_per_item = 1;
  bool blocks_inner = false;     // an item's block of the row varies before its panels
  std::int64_t group_items = 1;  // items per row block: one per group, or 1 (every group)
  std::int64_t items = 0;
  int threads = 1;
  std::int64_t row_len = 0;         // staging row elements (via_row)
  bool in_place = false;            // A read from the input itself, no row copies
  bool all_groups = false;          // every group in one row pass, on shared row copies
  std::int64_t a_ms = 0, a_ks = 0;  // A's strides along positions and input channels
  double per_thread_bytes = 0;      // scratch per thread, for the budget check
};

Tiling plan_tiling(const TilingInput& in);

}  // namespace tconv::kernels::phase
