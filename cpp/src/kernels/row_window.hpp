// Row windows for the per-ISA channel kernels. Internal linkage on purpose: every ISA
// translation unit gets its own copy, compiled with its own flags, so no instantiation is
// shared with code built for another ISA (docs/design.md, "Per-ISA code and the ODR").
#pragma once

#include <cstdint>

namespace tconv::kernels {
namespace {

// The positions of an MR-position tile starting at call position m0 that pair p has (bit i: m0 +
// i), from the call's row windows.
template <int MR, class Call>
unsigned window_mask(const Call& g, std::int64_t p, std::int64_t m0) {
  constexpr unsigned kAll = (1u << MR) - 1u;
  if (!g.m_lo) return kAll;
  const std::int64_t lo = g.m_lo[p] - m0, hi = g.m_hi[p] - m0;
  if (lo >= MR || hi <= 0 || lo >= hi) return 0;
  const unsigned below_hi = hi >= MR ? kAll : (1u << hi) - 1u;
  const unsigned below_lo = lo <= 0 ? 0u : (1u << lo) - 1u;
  return below_hi & ~below_lo;
}

}  // namespace
}  // namespace tconv::kernels
