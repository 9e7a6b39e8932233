// What the C++ test programs share.
#pragma once

#include <cstdint>

namespace tconv_test {

// splitmix64: the same stream on every platform and compiler (the cross-compiled AArch64 run
// draws the layers the x86-64 run draws).
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::int64_t range(std::int64_t lo, std::int64_t hi) {  // inclusive
    return lo + static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53 * 2.0 - 1.0; }
  template <class V>
  const typename V::value_type& pick(const V& v) {
    return v[static_cast<std::size_t>(range(0, static_cast<std::int64_t>(v.size()) - 1))];
  }
};

}  // namespace tconv_test
