// Whether values are free of Inf and NaN, for the kernels that multiply weights by zeros the
// definition never pairs them with (0 * inf is NaN).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace tconv::detail {

// Or-ed branch-free, so that the unit-step loop vectorises.
template <class T>
bool finite_run(const T* row, std::int64_t len, std::int64_t step = 1) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr Bits kExp = sizeof(T) == 4 ? Bits(0x7f800000u) : Bits(0x7ff0000000000000ull);
  Bits bad = 0;
  if (step == 1) {
    for (std::int64_t j = 0; j < len; ++j) {
      Bits b;
      std::memcpy(&b, row + j, sizeof b);
      bad |= Bits((b & kExp) == kExp);
    }
  } else {
    for (std::int64_t j = 0; j < len; ++j) {
      Bits b;
      std::memcpy(&b, row + j * step, sizeof b);
      bad |= Bits((b & kExp) == kExp);
    }
  }
  return bad == 0;
}

}  // namespace tconv::detail
