// Text helpers for error messages (baseline code only: never include from a per-ISA file).
#pragma once

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace tconv::detail {

// A shape as Python prints a tuple: (2, 3), (5,), ().
inline std::string join(const std::vector<std::int64_t>& v) {
  std::ostringstream s;
  s << '(';
  for (std::size_t i = 0; i < v.size(); ++i) s << (i ? ", " : "") << v[i];
  if (v.size() == 1) s << ',';
  s << ')';
  return s.str();
}

}  // namespace tconv::detail
