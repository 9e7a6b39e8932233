// Whether weights are free of Inf and NaN: the vector kernels multiply weights by zero halos
// and zero-padded rows, harmless for finite weights but NaN (0 * inf) for the others.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace tconv::detail {

// Whether `len` values `step` apart are finite; or-ed branch-free, so the unit-step loop
// vectorises.
template <class T>
bool row_finite(const T* row, std::int64_t len, std::int64_t step) {
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
