#pragma once

#define TCONV_VERSION_MAJOR 0
#define TCONV_VERSION_MINOR 1
#define TCONV_VERSION_PATCH 0

namespace tconv {
inline constexpr const char* version = "0.1.0";
}  // namespace tconv
