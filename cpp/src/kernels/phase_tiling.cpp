#include "kernels/phase_tiling.hpp"

#include <algorithm>
#include <cstdlib>

#include "buffer.hpp"

namespace tconv::kernels::phase {
namespace {

using namespace tiling;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// The shape facts: tap shifts of the last dim, rows, the largest tap counts, and per outer dim
// the window of input rows between its extreme tap shifts (at most the input's extent): the
// window slides by at most one row from one output row to the next.
void shape_facts(const TilingInput& in, Tiling& t, std::int64_t* window) {
  const Geometry& g = *in.g;
  const std::vector<DimPhases>& dims = *in.dims;
  const int xd = g.rank - 1;
  bool any = false;
  for (const auto& cs : dims[xd].c)
    for (auto c : cs) {
      t.cmin = any ? std::min(t.cmin, c) : c;
      t.cmax = any ? std::max(t.cmax, c) : c;
      any = true;
    }
  t.qmax = ceil_div(g.output[xd], g.stride[xd]);
  for (int d = 0; d < xd; ++d) t.n_outer *= g.output[d];
  t.rows = g.batch * t.n_outer;
  // Distinct taps of a phase read distinct input rows: a row has at most input[d] of them.
  for (int d = 0; d < xd; ++d) {
    std::size_t m = 0;
    for (const auto& k : dims[d].k) m = std::max(m, k.size());
    t.max_sources *= std::min(static_cast<std::int64_t>(m), g.input[d]);
  }
  for (const auto& k : dims[xd].k) t.max_xtaps = std::max<std::int64_t>(t.max_xtaps, k.size());
  for (int d = 0; d < xd; ++d) {
    std::int64_t lo = 0, hi = 0;
    bool seen = false;
    for (const auto& cs : dims[d].c)
      for (auto c : cs) {
        lo = seen ? std::min(lo, c) : c;
        hi = seen ? std::max(hi, c) : c;
        seen = true;
      }
    window[d] = std::min(seen ? hi - lo + 1 : 1, g.input[d]);
    t.cached *= window[d];
  }
}

// Blocks along the last dim: enough for the threads to balance, short enough for the row
// buffers' budget, and cut into whole channel tiles.
void block_last_dim(const TilingInput& in, Tiling& t, std::int64_t per_q, double out_bytes) {
  const int threads = in.threads;
  t.nxb = 1;
  if (threads > 1 && t.rows < kItemsPerThread * threads)
    t.nxb = std::max<std::int64_t>(1, std::min(ceil_div(kItemsPerThread * threads, t.rows),
                                               ceil_div(t.qmax, kMinBalancedBlock)));
  // One-row layers with large weights: longer blocks, within half of every thread's share of
  // the scratch bound (so many threads fall back to the usual budget).
  const bool line = t.n_outer == 1 && in.packed_elems / in.groups * in.elem >= kLineWeightsBytes;
  const double budget = line ? std::clamp(0.5 * detail::scratch_budget(out_bytes) / threads,
                                          kRowBuffersBytes, kLineBuffersBytes)
                             : std::clamp(kRowBuffersShare * out_bytes / threads, kRowBuffersBytes,
                                          kRowBuffersMaxBytes);
  const std::int64_t fit = static_cast<std::int64_t>(budget) / per_q;
  t.nxb = std::max(t.nxb, ceil_div(t.qmax, std::max<std::int64_t>(kMinBudgetBlock, fit)));
  t.qblock = ceil_div(t.qmax, t.nxb);
  if (t.nxb > 1 && !in.positions) {
    const std::int64_t mr = std::max<std::int64_t>(kChannelTile, in.mr);
    const std::int64_t wide = ceil_div(t.qblock, mr) * mr;
    const bool wide_fits =
        static_cast<double>(threads * wide * per_q) <= kLongTileShare * out_bytes;
    t.qblock = std::min(t.qmax, wide_fits ? wide : ceil_div(t.qblock, kChannelTile) * kChannelTile);
  }
  t.nxb = ceil_div(t.qmax, t.qblock);
}

// Short rows with weights beyond L2: an item takes a block of consecutive rows of one line
// (see run), whose input rows all stay in the row cache, which grows to hold them. `in_place`:
// the kernels read the input in place, so the block caches nothing and can be longer.
void block_rows(const TilingInput& in, Tiling& t, const std::int64_t* window, double out_bytes,
                bool in_place) {
  const Geometry& g = *in.g;
  const int xd = g.rank - 1;
  t.line_len = xd >= 1 ? g.output[xd - 1] : 1;
  t.lines = t.rows / t.line_len;
  t.block_rows = 1;
  const double weight_bytes = static_cast<double>(in.packed_elems) /
                              static_cast<double>(in.groups) * static_cast<double>(in.elem);
  const double all_weights = static_cast<double>(in.packed_elems) * static_cast<double>(in.elem);
  const std::int64_t budget = static_cast<std::int64_t>(
      std::clamp(kRowBlockShare * std::max(out_bytes, all_weights) / in.threads, kRowBlockMinBytes,
                 kRowBlockMaxBytes));
  if (xd >= 1 && !in.positions && t.qblock < kShortRow && weight_bytes > kLargeWeightsBytes) {
    const std::int64_t positions = in_place ? kRowBlockPositionsInPlace : kRowBlockPositions;
    t.block_rows = std::min(t.line_len, ceil_div(positions, t.qblock));
    const std::int64_t others = t.cached / window[xd - 1];
    while (!in_place && t.block_rows > 1 &&
           others * (window[xd - 1] + t.block_rows - 1) * t.row_stride * in.elem > budget)
      --t.block_rows;
    t.cached = others * (window[xd - 1] + t.block_rows - 1);
  }
  for (int d = 0; d < xd; ++d) t.modulus[d] = window[d] + (d == xd - 1 ? t.block_rows - 1 : 0);
  t.blocks_per_line = ceil_div(t.line_len, t.block_rows);
}

// The items, and the output channels split too where the row blocks are too few. The channel
// kernels run a grouped layer whose row cache cannot keep every group's lines group by group:
// a thread's consecutive items then walk down one group's rows, finding its input rows in its
// lines and its weights in cache. `in_place`: the kernels read the input in place.
void split_items(const TilingInput& in, Tiling& t, bool in_place) {
  t.group_items = !in.positions && in.groups > 1 && t.group_lines == 1 ? in.groups : 1;
  t.panel_parts = 1;
  const std::int64_t row_items = t.group_items * t.lines * t.blocks_per_line * t.nxb;
  if (in.threads > 1 && row_items < kPanelItemsPerThread * in.threads)
    t.panel_parts = std::min(in.panels, ceil_div(kPanelItemsPerThread * in.threads, row_items));
  // A row cut into blocks whose weights outgrow L2: item by item, the blocks of one panel
  // (its weights then stay in L2 from one block to the next) rather than every panel per block.
  // Each panel's pass then copies the block's input rows again: only where the input is read
  // in place, or those copies (panels x the group's input) stay within the weights.
  const double all_panels = static_cast<double>(in.packed_elems) / static_cast<double>(in.groups) *
                            static_cast<double>(in.elem);
  double group_input = static_cast<double>(in.g->batch * in.cin_g * in.elem);
  for (auto e : in.g->input) group_input *= static_cast<double>(e);
  const bool copies_pay = in_place || static_cast<double>(in.panels) * group_input <= all_panels;
  t.blocks_inner =
      !in.positions && t.nxb > 1 && in.panels > 1 && all_panels > kBlocksInnerBytes && copies_pay;
  if (t.blocks_inner) t.panel_parts = in.panels;
  t.panels_per_item = ceil_div(in.panels, t.panel_parts);
  t.panel_parts = ceil_div(in.panels, t.panels_per_item);
  t.items = row_items * t.panel_parts;
  t.threads =
      static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(in.threads, t.items)));
}

// Whether the kernels read the input in place (the kernels skip the taps past the borders)
// rather than from zero-haloed row copies. Both kinds of kernel decide by one thread's copies:
// a thread copies only the rows its blocks read, and the position-vector kernels sum in another
// order in place, so their choice must not depend on the thread count at all. (plan() caps all
// threads' row buffers on top: see kRowCopiesBudgetShare.)
bool reads_in_place(const TilingInput& in, const Tiling& t, double out_bytes) {
  if (!in.positions) {
    const double copy_bytes =
        static_cast<double>(t.cached * t.row_stride) * static_cast<double>(in.elem);
    const double share = std::abs(in.xs_c) == 1 ? kChannelCopyShare : kChannelCopyShareStrided;
    return in.channel_windows && copy_bytes > share * out_bytes;
  }
  if (!in.position_in_place || in.xs_x != 1) return false;
  const double whole_rows = static_cast<double>(t.cached) *
                            static_cast<double>(t.qmax + t.cmax - t.cmin + in.position_tile) *
                            static_cast<double>(in.cin_g) * static_cast<double>(in.elem);
  return whole_rows > kPositionCopyShare * out_bytes;
}

// The row passes of one output row run group after group, so with one set of lines they evict
// each other's input rows and each pass refills its own (a row the next output row reads again
// is copied once per output row). Every group gets its lines where all threads' lines still stay
// within the row buffers' share of the output. (A 1-D layer has one row per image: nothing to
// keep.)
std::int64_t group_lines(const TilingInput& in, const Tiling& t, double out_bytes) {
  if (in.groups == 1 || in.g->rank < 2) return 1;
  const double all_groups = static_cast<double>(in.threads) *
                            static_cast<double>(t.cached * t.row_stride) *
                            static_cast<double>(in.groups) * static_cast<double>(in.elem);
  return all_groups <= kRowBuffersShare * out_bytes ? in.groups : 1;
}

// The tiling of `in`; `shared`: row copies of every group's channels (see plan_tiling);
// `in_place`: the channel kernels read the input in place whatever the copies would take.
Tiling plan(const TilingInput& in, bool shared, bool in_place = false) {
  const Geometry& g = *in.g;
  const int xd = g.rank - 1;
  Tiling t;
  std::int64_t window[8] = {0};
  shape_facts(in, t, window);
  const std::int64_t per_q =
      ((in.via_row ? g.stride[xd] * in.cout_g : 0) + t.cached * in.cin_g) * in.elem;
  const double out_bytes = detail::output_bytes(g, static_cast<std::size_t>(in.elem));
  block_last_dim(in, t, per_q, out_bytes);
  const std::int64_t xlen_max = t.qblock + t.cmax - t.cmin;
  t.xlen_alloc = in.positions ? xlen_max + in.position_tile : xlen_max;
  t.cin_pitch = !in.positions && (in.cin_g * in.elem) % kAliasingPitchBytes == 0
                    ? in.cin_g + kCacheLineBytes / in.elem
                    : in.cin_g;
  t.row_stride = t.xlen_alloc * (in.positions ? in.cin_g : t.cin_pitch);
  block_rows(in, t, window, out_bytes, in_place);
  t.group_lines = group_lines(in, t, out_bytes);
  t.in_place = in_place || reads_in_place(in, t, out_bytes);
  split_items(in, t, t.in_place);
  t.row_len = in.via_row ? std::min(t.qblock * g.stride[xd], g.output[xd]) * in.width : 0;
  t.all_groups = shared;
  t.a_ms = t.in_place ? in.xs_x : in.positions ? 1 : t.cin_pitch;
  t.a_ks = t.in_place ? in.xs_c : in.positions ? t.xlen_alloc : 1;
  // Per thread: the staging row and row buffers (T); tags, halos, sources and pair lists.
  const std::int64_t lines_cached = t.in_place ? 0 : t.cached * t.group_lines;
  const std::int64_t max_pairs =
      t.max_sources * std::max<std::int64_t>(t.max_xtaps, t.cmax - t.cmin + 1);
  const std::int64_t sx = g.stride[xd];
  t.per_thread_bytes =
      static_cast<double>(t.row_len + lines_cached * t.row_stride) * static_cast<double>(in.elem) +
      static_cast<double>(2 * lines_cached + t.max_sources * (std::max(xd, 1) + 2) +
                          max_pairs * (2 + sx + (t.in_place ? 2 : 0))) *
          static_cast<double>(sizeof(std::int64_t));
  // All threads' row copies within the scratch bound, with room for the rest.
  if (!t.in_place && !in.positions && in.channel_windows &&
      t.per_thread_bytes * t.threads > kRowCopiesBudgetShare * detail::scratch_budget(out_bytes))
    return plan(in, shared, true);
  return t;
}

}  // namespace

// A grouped layer whose groups fit one panel each runs every group of an output row in one row
// pass, on row copies of all groups' channels: one fill per input row and one set of pair lists
// per row serve every group. Where those copies fit each thread's row buffers with the same
// blocks, and the rows need no blocks of rows.
Tiling plan_tiling(const TilingInput& in) {
  Tiling apart = plan(in, false);
  // Blocks of rows read in place cache no input rows: they take longer blocks, in place still.
  if (apart.in_place && apart.block_rows > 1) apart = plan(in, false, true);
  if (in.positions || in.groups == 1 || in.panels != 1) return apart;
  TilingInput all = in;
  all.cin_g = in.cin_g * in.groups;
  all.groups = 1;
  const Tiling t = plan(all, true);
  const bool fits =
      t.in_place || static_cast<double>(t.cached * t.row_stride * in.elem) <= kRowBuffersBytes;
  return fits && t.block_rows == 1 && t.qblock == apart.qblock ? t : apart;
}

}  // namespace tconv::kernels::phase
