// The phase driver's tiling policy (plan_tiling, an internal header) over a grid of layers:
// the invariants run() relies on, checked on every plan rather than on remembered values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <tconv/tconv.hpp>
#include <vector>

#include "buffer.hpp"
#include "kernels/phase.hpp"
#include "kernels/phase_tiling.hpp"

namespace {

using tconv::Geometry;
using tconv::kernels::phase::Algo;
using tconv::kernels::phase::Tiling;
using tconv::kernels::phase::TilingInput;

struct Layer {
  std::int64_t batch, cin, cout;
  std::vector<std::int64_t> input, kernel;
  std::int64_t stride, pad, dilation;
};

Geometry geometry(const Layer& l, tconv::DataFormat format) {
  const int rank = static_cast<int>(l.input.size());
  tconv::LayerSpec spec;
  spec.rank = rank;
  spec.stride.assign(rank, l.stride);
  spec.dilation.assign(rank, l.dilation);
  spec.pad_lo.assign(rank, l.pad);
  spec.pad_hi.assign(rank, l.pad);
  spec.data_format = format;
  const bool cf = format == tconv::DataFormat::channels_first;
  std::vector<std::int64_t> x{l.batch}, w;
  if (cf) x.push_back(l.cin);
  x.insert(x.end(), l.input.begin(), l.input.end());
  if (!cf) x.push_back(l.cin);
  if (cf) {
    w = {l.cin, l.cout};
    w.insert(w.end(), l.kernel.begin(), l.kernel.end());
  } else {
    w = l.kernel;
    w.push_back(l.cout);
    w.push_back(l.cin);
  }
  return tconv::resolve_geometry(x, w, spec);
}

// A layer's tiling as run() asks for it, with the weights packed as run() gets them.
struct Case {
  Geometry g;
  tconv::kernels::phase::Packed<float> pk;
  TilingInput in;
};

Case make_case(const Layer& l, tconv::DataFormat format, int threads, std::int64_t mr, bool via_row,
               std::int64_t nr = 16) {
  Case c{geometry(l, format), {}, {}};
  const Algo algo = tconv::kernels::phase::choose_algo(c.g);
  std::vector<float> w(static_cast<std::size_t>(l.cin * l.cout), 0.0f);
  for (auto k : l.kernel) w.resize(w.size() * static_cast<std::size_t>(k), 0.0f);
  // Dense weight strides of the layout (elements), innermost last.
  const std::vector<std::int64_t> shape = c.g.weight_shape();
  std::vector<std::int64_t> ws(shape.size(), 1);
  for (std::size_t i = shape.size() - 1; i-- > 0;) ws[i] = ws[i + 1] * shape[i + 1];
  c.pk = tconv::kernels::phase::pack(c.g, w.data(), ws, algo, nr, 1);
  TilingInput& in = c.in;
  in.g = &c.g;
  in.dims = &c.pk.dims;
  in.elem = sizeof(float);
  in.positions = algo == Algo::positions;
  in.cin_g = c.pk.cin_g;
  in.cout_g = c.pk.cout_g;
  in.groups = c.pk.groups;
  in.panels = c.pk.panels;
  in.width = c.pk.width;
  in.packed_elems = c.pk.size;
  in.via_row = via_row && !in.positions;
  in.xs_x = format == tconv::DataFormat::channels_first ? 1 : l.cin;
  in.xs_c = format == tconv::DataFormat::channels_first ? c.g.input.back() : 1;
  in.mr = mr;
  in.position_tile = 16;
  in.channel_windows = true;
  in.position_in_place = true;
  in.threads = threads;
  return c;
}

const std::vector<Layer> kLayers = {
    {16, 512, 256, {8, 8}, {4, 4}, 2, 1, 1},  // short rows, large weights: row blocks
    {1, 512, 256, {8, 8}, {4, 4}, 2, 1, 1},
    {1, 256, 128, {64, 64}, {3, 3}, 2, 1, 1},  // long rows: blocks along the row
    {2, 64, 3, {32, 32}, {4, 4}, 2, 1, 1},     // position vectors (tiny C_out)
    {1, 56, 1, {40, 40}, {9, 9}, 3, 3, 1},
    {1, 128, 64, {300}, {7}, 3, 2, 1},           // 1-D
    {2, 64, 32, {4, 6, 5}, {3, 4, 3}, 2, 1, 1},  // 3-D
    {1, 96, 40, {7, 9}, {5, 3}, 1, 2, 2},        // stride 1, dilation
    {3, 256, 72, {5, 6}, {5, 4}, 3, 1, 1},       // 1 KiB channel pitch
    {1, 8, 200, {1, 1}, {4, 4}, 1, 0, 1},        // one input position
};

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

TEST(PhaseTiling, BlocksCoverEveryPositionAndItemsEveryRow) {
  for (const Layer& l : kLayers)
    for (auto format : {tconv::DataFormat::channels_first, tconv::DataFormat::channels_last})
      for (int threads : {1, 2, 3, 8})
        for (std::int64_t mr : {6, 8, 12}) {
          Case c = make_case(l, format, threads, mr, format == tconv::DataFormat::channels_first);
          const Tiling t = tconv::kernels::phase::plan_tiling(c.in);
          const Geometry& g = c.g;
          const int xd = g.rank - 1;
          SCOPED_TRACE(testing::Message() << "layer cin=" << l.cin << " rank=" << g.rank
                                          << " threads=" << threads << " mr=" << mr);
          EXPECT_EQ(t.qmax, ceil_div(g.output[xd], g.stride[xd]));
          // Blocks along the last dim: none empty, together every position.
          EXPECT_GE(t.qblock, 1);
          EXPECT_GE(t.qblock * t.nxb, t.qmax);
          EXPECT_LT((t.nxb - 1) * t.qblock, t.qmax);
          // The channel kernels' blocks of a split row are whole tiles (or the whole row).
          if (!c.in.positions && t.nxb > 1) {
            EXPECT_TRUE(t.qblock % 6 == 0 || t.qblock % std::max<std::int64_t>(6, mr) == 0 ||
                        t.qblock == t.qmax);
          }
          // Items: every row of every line, every block, every panel, once.
          EXPECT_EQ(t.lines * t.line_len, g.batch * t.n_outer);
          EXPECT_EQ(t.blocks_per_line, ceil_div(t.line_len, t.block_rows));
          EXPECT_GE(t.panel_parts * t.panels_per_item, c.pk.panels);
          EXPECT_LT((t.panel_parts - 1) * t.panels_per_item, c.pk.panels);
          EXPECT_EQ(t.items, t.lines * t.blocks_per_line * t.nxb * t.panel_parts);
          EXPECT_GE(t.threads, 1);
          EXPECT_LE(t.threads, std::min<std::int64_t>(threads, t.items));
          // Row blocks only for the channel kernels' short rows, longer only where the kernels
          // read the input in place (the block caches no input rows).
          if (t.block_rows > 1) {
            EXPECT_FALSE(c.in.positions);
            EXPECT_LT(t.qblock, 32);
            EXPECT_LE(t.block_rows, t.line_len);
            const std::int64_t most = t.in_place
                                          ? tconv::kernels::phase::tiling::kRowBlockPositionsInPlace
                                          : tconv::kernels::phase::tiling::kRowBlockPositions;
            EXPECT_LE(t.block_rows, ceil_div(most, t.qblock));
          }
          // The row cache holds every input row one output row (or row block) reads.
          std::int64_t lines = 1;
          for (int d = 0; d < xd; ++d) lines *= t.modulus[d];
          EXPECT_EQ(lines, t.cached);
          EXPECT_GE(t.cached, t.max_sources);
          // A buffer line holds a block, its halo, and (position vectors) a tile of slack.
          EXPECT_GE(t.xlen_alloc, t.qblock + t.cmax - t.cmin);
          EXPECT_EQ(t.row_stride, t.xlen_alloc * (c.in.positions ? c.pk.cin_g : t.cin_pitch));
          // No buffer pitch a multiple of 1 KiB: the positions of a tile in distinct L1 sets.
          if (!c.in.positions) {
            EXPECT_NE(t.cin_pitch * 4 % 1024, 0);
          }
          EXPECT_EQ(t.row_len > 0, c.in.via_row);
          // The channel kernels' row copies, all threads together, within 9/10 of the bound.
          if (!c.in.positions && !t.in_place) {
            EXPECT_LE(
                t.per_thread_bytes * t.threads,
                0.9 * tconv::detail::scratch_budget(tconv::detail::output_bytes(g, sizeof(float))));
          }
        }
}

TEST(PhaseTiling, RowBlocksReadInPlaceTakeTheWholeLine) {
  // DCGAN 512 -> 256 at 8x8 (8 positions per phase row, 8 MiB of weights), batch 1, reads its
  // input in place: each block of rows caches nothing, so one block takes all 16 rows of the
  // image and each phase's weights serve 8 rows, not 4. (At batch 16 its NCHW row copies stay
  // within their share of the output: see the next test.)
  const Layer l{1, 512, 256, {8, 8}, {4, 4}, 2, 1, 1};
  for (int threads : {1, 2}) {
    const Case c = make_case(l, tconv::DataFormat::channels_first, threads, 8, true);
    const Tiling t = tconv::kernels::phase::plan_tiling(c.in);
    SCOPED_TRACE(testing::Message() << "threads=" << threads);
    EXPECT_TRUE(t.in_place);
    EXPECT_EQ(t.qblock, 8);
    EXPECT_EQ(t.block_rows, 16);
    EXPECT_EQ(t.blocks_per_line, 1);
    EXPECT_GE(t.items, threads);
  }
}

TEST(PhaseTiling, ChannelsAPlaneApartAreCopiedUpToALargerShare) {
  // DCGAN 512 -> 256 at 8x8, batch 16: one thread's row copies come to 5-8 % of the output.
  // NCHW channels lie a plane apart, so an in-place tile reads a new line per k-step: it
  // copies. NHWC channels are dense: it reads in place.
  const Layer l{16, 512, 256, {8, 8}, {4, 4}, 2, 1, 1};
  const Case cf = make_case(l, tconv::DataFormat::channels_first, 1, 8, true);
  const Case cl = make_case(l, tconv::DataFormat::channels_last, 1, 8, false);
  EXPECT_FALSE(tconv::kernels::phase::plan_tiling(cf.in).in_place);
  EXPECT_TRUE(tconv::kernels::phase::plan_tiling(cl.in).in_place);
}

TEST(PhaseTiling, ASecondThreadLeavesAChannelLayerCopyingItsRows) {
  // A dilated 256 -> 128 layer (3x3, stride 2, dilation 2) at 32x32 copies its input rows on
  // one thread; each thread copies only the rows its own blocks read, so two threads copy too
  // (counted over both threads' buffers, its copies crossed the share and it read in place,
  // 1.2x slower).
  const Layer l{1, 256, 128, {32, 32}, {3, 3}, 2, 2, 2};
  for (int threads : {1, 2}) {
    const Case c = make_case(l, tconv::DataFormat::channels_first, threads, 8, true);
    EXPECT_FALSE(tconv::kernels::phase::plan_tiling(c.in).in_place) << "threads=" << threads;
  }
  // A functional call on two threads runs it as two slices of 64 output channels, one thread
  // each: their copies are twice the share of their output, within the NCHW share still.
  const Layer slice{1, 256, 64, {32, 32}, {3, 3}, 2, 2, 2};
  const Case c = make_case(slice, tconv::DataFormat::channels_first, 1, 8, true);
  EXPECT_FALSE(tconv::kernels::phase::plan_tiling(c.in).in_place);
}

TEST(PhaseTiling, ASmallOutputCopiesRowsWithinTheScratchFloor) {
  // HiFi-GAN's 256 -> 128 up-sampling (k16 s8, 800 samples) as a functional call on two
  // threads runs slices of 64 output channels, one thread each (two AVX-512 panels of 32). A
  // slice's row buffers pass 9 % of its 1.6 MB output but lie far within the 4 MiB floor of
  // the scratch bound: it copies its rows (read in place, each k-step of an NCHW tile reads
  // another line: 1.2x slower).
  const Layer slice{1, 256, 64, {800}, {16}, 8, 4, 1};
  const Case c = make_case(slice, tconv::DataFormat::channels_first, 1, 7, true, 32);
  const Tiling t = tconv::kernels::phase::plan_tiling(c.in);
  EXPECT_EQ(t.qblock, 84);
  EXPECT_EQ(t.nxb, 10);
  EXPECT_GT(t.per_thread_bytes, 0.09 * tconv::detail::output_bytes(c.g, sizeof(float)));
  EXPECT_FALSE(t.in_place);
}

TEST(PhaseTiling, PositionVectorsReadInPlaceOrNotWhateverTheThreadCount) {
  // In place they sum in another order: results must not depend on the thread count.
  for (const Layer& l : kLayers)
    for (auto format : {tconv::DataFormat::channels_first, tconv::DataFormat::channels_last}) {
      Case one = make_case(l, format, 1, 6, false);
      if (!one.in.positions) continue;
      const bool in_place = tconv::kernels::phase::plan_tiling(one.in).in_place;
      for (int threads : {2, 3, 8}) {
        Case c = make_case(l, format, threads, 6, false);
        EXPECT_EQ(tconv::kernels::phase::plan_tiling(c.in).in_place, in_place)
            << "cin=" << l.cin << " threads=" << threads;
      }
    }
}

TEST(PhaseTiling, SomeLayerOfTheGridTakesEachBranch) {
  // The grid above reaches the policy's branches, or its checks would be vacuous.
  bool row_blocks = false, split_rows = false, split_panels = false, in_place = false,
       copies = false, padded_pitch = false;
  for (const Layer& l : kLayers)
    for (auto format : {tconv::DataFormat::channels_first, tconv::DataFormat::channels_last})
      for (int threads : {1, 8}) {
        Case c = make_case(l, format, threads, 8, true);
        const Tiling t = tconv::kernels::phase::plan_tiling(c.in);
        row_blocks = row_blocks || t.block_rows > 1;
        split_rows = split_rows || t.nxb > 1;
        split_panels = split_panels || t.panel_parts > 1;
        in_place = in_place || t.in_place;
        copies = copies || !t.in_place;
        padded_pitch = padded_pitch || t.cin_pitch != c.pk.cin_g;
      }
  EXPECT_TRUE(row_blocks);
  EXPECT_TRUE(split_rows);
  EXPECT_TRUE(split_panels);
  EXPECT_TRUE(in_place);
  EXPECT_TRUE(copies);
  EXPECT_TRUE(padded_pitch);
}

TEST(PhaseTiling, BlocksOfARowRunPanelByPanelWhereTheWeightsOutgrowL2) {
  // HiFi-GAN V1's first up-sampling layer again (8 MiB of weights, its row cut into blocks):
  // one panel per item, the blocks of a panel in consecutive items, so that a panel's weights
  // serve every block before the next panel's come. 256 -> 128 (2 MiB) keeps every panel per
  // item.
  const auto cf = tconv::DataFormat::channels_first;
  for (int threads : {1, 2}) {
    const Case c = make_case({1, 512, 256, {100}, {16}, 8, 4, 1}, cf, threads, 8, true);
    const Tiling t = tconv::kernels::phase::plan_tiling(c.in);
    SCOPED_TRACE(testing::Message() << "threads=" << threads);
    EXPECT_GT(t.nxb, 1);
    EXPECT_TRUE(t.blocks_inner);
    EXPECT_EQ(t.panels_per_item, 1);
    EXPECT_EQ(t.panel_parts, c.pk.panels);
    const Case small = make_case({1, 256, 128, {100}, {16}, 8, 4, 1}, cf, threads, 8, true);
    EXPECT_FALSE(tconv::kernels::phase::plan_tiling(small.in).blocks_inner);
  }
}

TEST(PhaseTiling, OneRowLayersWithLargeWeightsTakeLongerBlocks) {
  // HiFi-GAN V1's first up-sampling layer (512 -> 256, k16 s8 p4, 100 input positions: 8 MiB
  // of weights). Each block of its one output row reads every weight, so on a few threads the
  // blocks are at least twice as long as on 64 threads (whose share of the scratch bound keeps
  // the usual budget), and every thread's buffers still fit that bound (run() would decline).
  const auto cf = tconv::DataFormat::channels_first;
  const Layer line{1, 512, 256, {100}, {16}, 8, 4, 1};
  Case many = make_case(line, cf, 64, 8, true);
  const std::int64_t usual = tconv::kernels::phase::plan_tiling(many.in).qblock;
  for (int threads : {1, 2}) {
    Case c = make_case(line, cf, threads, 8, true);
    const Tiling t = tconv::kernels::phase::plan_tiling(c.in);
    EXPECT_GE(t.qblock, 2 * usual) << threads;
    const double bound =
        tconv::detail::scratch_budget(tconv::detail::output_bytes(c.g, sizeof(float)));
    EXPECT_LE(t.per_thread_bytes * t.threads, bound) << threads;
  }
}

}  // namespace
