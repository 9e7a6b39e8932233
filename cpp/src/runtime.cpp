#include "runtime.hpp"

#include <sched.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <stdexcept>
#include <thread>

namespace tconv {
namespace {

// The cap set through set_max_isa; the most capable ISA caps nothing.
constexpr Isa kNoCap = Isa::avx512;
std::atomic<Isa> g_isa_cap{kNoCap};
// 0 = default (environment or CPU count).
std::atomic<int> g_threads{0};

bool cpu_has_avx2_fma() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  // libgcc's and compiler-rt's feature checks report avx512f only when XCR0 says the OS saves
  // the opmask and upper-zmm state.
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && cpu_has_avx2_fma();
#else
  return false;
#endif
}

bool avx512_kernels_built() {
#ifdef TCONV_HAVE_AVX512
  return true;
#else
  return false;
#endif
}

bool avx2_kernels_built() {
#ifdef TCONV_HAVE_AVX2
  return true;
#else
  return false;
#endif
}

bool neon_kernels_built() {
#ifdef TCONV_HAVE_NEON
  return true;
#else
  return false;
#endif
}

// Caps compare capability, the enum's order. avx2 and neon, the vector ISAs of two
// architectures, are one level: a cap at either allows both.
Isa cap_level(Isa cap) { return cap == Isa::neon ? Isa::avx2 : cap; }

Isa env_isa_cap() {
  const char* v = std::getenv("TCONV_MAX_ISA");
  if (!v || !*v) return kNoCap;
  try {
    return cap_level(isa_from_name(v));
  } catch (const std::invalid_argument&) {
    return kNoCap;  // an unknown name must not stop a program; Python warns about it
  }
}

int cpu_count() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned h = std::thread::hardware_concurrency();
  return h ? static_cast<int>(h) : 1;
}

int default_threads() {
  if (const char* v = std::getenv("TCONV_NUM_THREADS")) {
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (end != v && *end == '\0' && n > 0) return static_cast<int>(std::min<long>(n, 1024));
  }
  return cpu_count();
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512:
      return "avx512";
    case Isa::avx2:
      return "avx2";
    case Isa::neon:
      return "neon";
    case Isa::portable:
      return "portable";
  }
  return "unknown";
}

Isa isa_from_name(const std::string& name) {
  std::string lower;
  for (char c : name)
    lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (lower == "avx512") return Isa::avx512;
  if (lower == "avx2") return Isa::avx2;
  if (lower == "neon") return Isa::neon;
  if (lower == "portable" || lower == "baseline" || lower == "generic") return Isa::portable;
  throw std::invalid_argument("unknown ISA '" + name +
                              "'; valid names are 'avx512', 'avx2', 'neon' and 'portable'");
}

std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  if (avx512_kernels_built() && cpu_has_avx512()) out.push_back(Isa::avx512);
  if (avx2_kernels_built() && cpu_has_avx2_fma()) out.push_back(Isa::avx2);
  // NEON is part of the AArch64 base architecture: built means runnable.
  if (neon_kernels_built()) out.push_back(Isa::neon);
  out.push_back(Isa::portable);
  return out;
}

std::vector<Isa> compiled_isas() {
  std::vector<Isa> out;
  if (avx512_kernels_built()) out.push_back(Isa::avx512);
  if (avx2_kernels_built()) out.push_back(Isa::avx2);
  if (neon_kernels_built()) out.push_back(Isa::neon);
  out.push_back(Isa::portable);
  return out;
}

void set_max_isa(Isa isa) { g_isa_cap.store(cap_level(isa)); }

Isa active_isa() { return runtime::choose_isa(Options{}); }

void set_num_threads(int n) { g_threads.store(n > 0 ? std::min(n, 1024) : 0); }

int get_num_threads() {
  int n = g_threads.load();
  return n > 0 ? n : default_threads();
}

namespace runtime {

namespace {
thread_local const char* t_kernel = "none";
thread_local bool t_streamed = false;
thread_local std::size_t t_input_copied = 0;
}  // namespace

void note_kernel(const char* name) { t_kernel = name; }
const char* noted_kernel() { return t_kernel; }
void note_output_streamed(bool streamed) { t_streamed = streamed; }
bool noted_output_streamed() { return t_streamed; }
void note_input_copied(std::size_t bytes) { t_input_copied = bytes; }
std::size_t noted_input_copied() { return t_input_copied; }

Isa choose_isa(const Options& options) {
  // Every cap can only lower the ISA.
  Isa cap = std::min(env_isa_cap(), g_isa_cap.load());
  if (options.cap_isa) cap = std::min(cap, cap_level(options.max_isa));
  for (Isa isa : available_isas())
    if (isa <= cap) return isa;
  return Isa::portable;
}

int choose_threads(const Options& options) {
  // Threads beyond the CPUs only take turns on them, and a pool that large would stay that
  // large (and wake) for every later call.
  const int asked = options.num_threads > 0 ? options.num_threads : get_num_threads();
  return std::min(asked, cpu_count());
}

bool fma_in_halves() {
#if defined(__x86_64__) || defined(__i386__)
  // AMD family 19h with AVX-512 is Zen 4, whose 512-bit FMA is two passes through 256-bit
  // pipes; Zen 5 (1Ah) and Intel's AVX-512 cores have whole 512-bit pipes.
  static const bool halves = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return false;
    const bool amd = ebx == 0x68747541 && edx == 0x69746e65 && ecx == 0x444d4163;  // AuthenticAMD
    if (!amd || !__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
    const unsigned family = ((eax >> 8) & 0xf) + ((eax >> 20) & 0xff);
    return family == 0x19;
  }();
  return halves;
#else
  return false;
#endif
}

}  // namespace runtime
}  // namespace tconv
