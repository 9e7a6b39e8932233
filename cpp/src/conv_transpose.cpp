#include "tconv/conv_transpose.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "buffer.hpp"
#include "canonical.hpp"
#include "finite.hpp"
#include "kernels/depthwise.hpp"
#include "kernels/direct.hpp"
#include "kernels/phase.hpp"
#include "kernels/portable.hpp"
#include "runtime.hpp"
#include "tconv/plan.hpp"
#include "threadpool.hpp"
#ifdef TCONV_HAVE_AVX2
#include "kernels/avx2.hpp"
#include "kernels/avx512.hpp"
#endif
#ifdef TCONV_HAVE_NEON
#include "kernels/neon.hpp"
#endif
#include "validate.hpp"

namespace tconv {
namespace {

std::vector<std::int64_t> contiguous_strides(const std::vector<std::int64_t>& shape) {
  std::vector<std::int64_t> s(shape.size());
  std::int64_t acc = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    s[i] = acc;
    acc *= std::max<std::int64_t>(shape[i], 1);
  }
  return s;
}

std::vector<std::int64_t> strides_or_default(const std::vector<std::int64_t>& strides,
                                             const std::vector<std::int64_t>& shape,
                                             const char* name) {
  if (strides.empty()) return contiguous_strides(shape);
  if (strides.size() != shape.size()) {
    throw std::invalid_argument(std::string(name) + " strides must have one entry per axis (" +
                                std::to_string(shape.size()) + "), got " +
                                std::to_string(strides.size()));
  }
  return strides;
}

std::string format_shape(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

thread_local CallMemory t_last_memory;
thread_local Isa t_last_isa = Isa::portable;

// Below this much work per thread, waking another thread costs more than it saves.
constexpr double kFlopsPerThread = 2e6;

// The direct driver's range (see direct_pays): at most this many input cells over the batch;
// on its phases path one image (it reads the weights once per image) and weights of at least
// kPhasesWeightBytes, otherwise weights of at least kDirectWeightBytes with at least
// kDirectChannels input channels per group (the col2im's cost per output column is repaid by
// that many FMAs; docs/design.md).
constexpr double kDirectCells = 128;
constexpr double kPhasesWeightBytes = 256 << 10;
constexpr double kDirectWeightBytes = 1 << 20;
constexpr std::int64_t kDirectChannels = 512;

int threads_for(const Geometry& g, const Options& options) {
  const int t = runtime::choose_threads(options);
  const double by_work = std::max(1.0, g.flops() / kFlopsPerThread);
  return static_cast<int>(std::min<double>(t, by_work));
}

// ---- each ISA's kernel set ---------------------------------------------------------------------

template <class T>
struct KernelTable;
#ifdef TCONV_HAVE_AVX2
template <>
struct KernelTable<float> {
  static kernels::KernelSet<float> avx2() { return kernels::avx2::kernels_f32(); }
#ifdef TCONV_HAVE_AVX512
  static kernels::KernelSet<float> avx512() {
    return kernels::avx512::kernels_f32(runtime::fma_in_halves());
  }
#endif
};
template <>
struct KernelTable<double> {
  static kernels::KernelSet<double> avx2() { return kernels::avx2::kernels_f64(); }
#ifdef TCONV_HAVE_AVX512
  static kernels::KernelSet<double> avx512() {
    return kernels::avx512::kernels_f64(runtime::fma_in_halves());
  }
#endif
};
#endif
#ifdef TCONV_HAVE_NEON
template <>
struct KernelTable<float> {
  static kernels::KernelSet<float> neon() { return kernels::neon::kernels_f32(); }
};
template <>
struct KernelTable<double> {
  static kernels::KernelSet<double> neon() { return kernels::neon::kernels_f64(); }
};
#endif

template <class T>
bool phase_kernels(Isa isa, kernels::KernelSet<T>* out) {
#ifdef TCONV_HAVE_NEON
  if (isa == Isa::neon) {
    *out = KernelTable<T>::neon();
    return true;
  }
#endif
#ifdef TCONV_HAVE_AVX512
  if (isa == Isa::avx512) {
    *out = KernelTable<T>::avx512();
    return true;
  }
#endif
#ifdef TCONV_HAVE_AVX2
  if (isa == Isa::avx2) {
    *out = KernelTable<T>::avx2();
    return true;
  }
#else
  (void)isa;
  (void)out;
#endif
  return false;
}

// Bytes of an array of `shape` with elements of `elem` bytes (as a double: no overflow).
double bytes_of(const std::vector<std::int64_t>& shape, std::size_t elem) {
  double bytes = static_cast<double>(elem);
  for (auto e : shape) bytes *= static_cast<double>(e);
  return bytes;
}

bool phase_handles(const Geometry& g) {
  // The driver keeps per-row indices for up to 8 outer dimensions.
  if (g.rank < 1 || g.rank > 9) return false;
  // Its input window spans every tap, (kernel - 1) * dilation / stride cells, zero halo
  // included: with a dilation far beyond the input (found by fuzzing: 2**31) that is gigabytes
  // for a tiny layer. Such layers go to the portable kernel, whose memory follows the taps.
  // Likewise the packed weights keep per-phase tables, prod(stride) entries: a stride of 2**61
  // on a 3-cell output (also found by fuzzing) must not size them.
  double phases = 1.0, outputs = 1.0;
  for (int d = 0; d < g.rank; ++d) {
    const double span = static_cast<double>(g.kernel[d] - 1) * static_cast<double>(g.dilation[d]);
    if (span / static_cast<double>(g.stride[d]) > 4.0 * static_cast<double>(g.input[d]) + 4096.0)
      return false;
    phases *= static_cast<double>(g.stride[d]);
    outputs *= static_cast<double>(g.output[d]);
  }
  return phases <= outputs + 4096.0;
}

// A plan's packed weights, made on first use and shared by its calls. No lock: a fork() while
// another thread packs must leave the child nothing half-held, so entries are immutable and
// kept for the plan's life in an append-only list published by compare-exchange. Two threads
// packing at once both publish; the list holds one entry per kernel layout the plan has run
// with (one per ISA at most), and past kMaxEntries a layout is packed per call instead.
template <class P>
class PackList {
 public:
  PackList() = default;
  PackList(const PackList&) = delete;
  PackList& operator=(const PackList&) = delete;
  ~PackList() {
    for (Node* n = head_.load(std::memory_order_acquire); n;) {
      Node* next = n->next;
      delete n;
      n = next;
    }
  }

  // The first entry `fits` accepts, else make()'s, published for later calls.
  template <class Fits, class Make>
  std::shared_ptr<const P> get(const Fits& fits, const Make& make) {
    Node* head = head_.load(std::memory_order_acquire);
    int entries = 0;
    for (Node* n = head; n; n = n->next, ++entries)
      if (fits(*n->packed)) return n->packed;
    auto packed = std::make_shared<const P>(make());
    if (entries >= kMaxEntries) return packed;
    Node* node = new Node{packed, head};
    while (!head_.compare_exchange_weak(node->next, node, std::memory_order_release,
                                        std::memory_order_acquire)) {
    }
    return packed;
  }

  std::size_t bytes() const {
    std::size_t total = 0;
    for (Node* n = head_.load(std::memory_order_acquire); n; n = n->next)
      total += n->packed->bytes();
    return total;
  }

 private:
  static constexpr int kMaxEntries = 8;
  struct Node {
    std::shared_ptr<const P> packed;
    Node* next;
  };
  std::atomic<Node*> head_{nullptr};
};

template <class T>
struct PackCache {
  bool weights_finite = true;  // see all_finite
  PackList<kernels::phase::Packed<T>> phase;
  PackList<kernels::depthwise::Packed<T>> depthwise;
  PackList<kernels::phase::ShuffleColumns<T>> shuffle;
};

// Calls visit(row, len, step) on each run of the array's elements (shape, strides in elements),
// in C order; stops at the first visit that returns false and returns whether none did.
template <class T, class Visit>
bool each_run(std::vector<std::int64_t> shape, const T* base, std::vector<std::int64_t> strides,
              Visit visit) {
  for (auto e : shape)
    if (e == 0) return true;
  // Axes that continue the next one's run merge into it: the usual C-contiguous weights are one
  // run, visited at memory speed.
  for (std::size_t a = shape.size() - 1; a > 0; --a) {
    if (strides[a - 1] != strides[a] * shape[a]) continue;
    shape[a - 1] *= shape[a];
    strides[a - 1] = strides[a];
    shape.erase(shape.begin() + static_cast<std::ptrdiff_t>(a));
    strides.erase(strides.begin() + static_cast<std::ptrdiff_t>(a));
  }
  const std::size_t last = shape.size() - 1;
  const std::int64_t len = shape[last], step = strides[last];
  std::vector<std::int64_t> idx(last, 0);
  for (;;) {
    std::int64_t off = 0;
    for (std::size_t a = 0; a < last; ++a) off += idx[a] * strides[a];
    if (!visit(base + off, len, step)) return false;
    std::size_t a = last;
    for (; a > 0; --a) {
      if (++idx[a - 1] < shape[a - 1]) break;
      idx[a - 1] = 0;
    }
    if (a == 0) return true;
  }
}

// Whether no weight is Inf or NaN. The vector kernels multiply weights by the zero halo around
// the input rows and the depthwise row kernels by zero-padded rows, which is harmless for
// finite weights but turns an Inf into NaN (0 * inf) in cells that weight never reaches; such
// layers go to the portable kernel, which multiplies the pairs of the definition only.
template <class T>
bool all_finite(const std::vector<std::int64_t>& shape, const T* w,
                const std::vector<std::int64_t>& strides) {
  return each_run(shape, w, strides, [](const T* row, std::int64_t len, std::int64_t step) {
    return detail::finite_run(row, len, step);
  });
}

// No input channels: nothing contributes and y is the bias (or zero). Handled before any
// kernel so that none offsets x or weight pointers, which may then be null.
template <class T>
void bias_only(const Geometry& g, const T* bias, T* y, const std::vector<std::int64_t>& ys) {
  const std::vector<std::int64_t> shape = g.output_shape();
  const std::size_t c_axis = g.data_format == DataFormat::channels_first ? 1 : shape.size() - 1;
  std::vector<std::int64_t> idx(shape.size(), 0);
  for (;;) {
    std::int64_t off = 0;
    for (std::size_t a = 0; a < idx.size(); ++a) off += idx[a] * ys[a];
    y[off] = bias ? bias[idx[c_axis]] : T(0);
    std::size_t a = shape.size();
    for (; a > 0; --a) {
      if (++idx[a - 1] < shape[a - 1]) break;
      idx[a - 1] = 0;
    }
    if (a == 0) return;
  }
}

// ---- the drivers, in the order the dispatch tries them --------------------------------------
//
// A layer runs on the first driver whose applies() accepts it and whose run() does not decline
// (kDeclined: its buffers would exceed the scratch budget). Options::driver names one driver
// instead (tests and benchmarks reach every driver that way, whatever the thresholds).

template <class T>
struct Call {
  Call(const Geometry& g_, const kernels::Problem<T>& p_, const Options& options_,
       PackCache<T>* cache_)
      : g(g_), p(p_), options(options_), cache(cache_) {}

  const Geometry& g;
  const kernels::Problem<T>& p;
  const Options& options;
  PackCache<T>* cache;
  Isa isa = Isa::portable;
  bool have_isa = false;  // the ISA has phase kernels (ks is set)
  kernels::KernelSet<T> ks{};
  int threads = 1;
  std::shared_ptr<const kernels::phase::Packed<T>> phase_pk;  // packed on first use
  bool grid_only = false;  // phase_pk holds the grid layout alone (see grid_packed)
  int finite_memo = -1;    // finite(), once asked

  // No Inf or NaN in the weights (see all_finite): asked only by drivers that need it.
  bool finite() {
    if (finite_memo < 0)
      finite_memo = cache ? cache->weights_finite : all_finite(g.weight_shape(), p.w, p.w_strides);
    return finite_memo == 1;
  }
  // The same, asked by the phase drivers: a call that packs for itself learns it from its first
  // pack (the grid layout alone where that is all it needs, see grid_packed), which reads every
  // weight their kernels use anyway (a separate scan read 2-8 MiB of weights a second time).
  bool phase_finite() {
    if (finite_memo < 0 && !cache) finite_memo = grid_packed().finite ? 1 : 0;
    return finite();
  }
  bool vector_phase() { return have_isa && phase_handles(g) && phase_finite(); }
  // Whether the shuffle reads the weights in the output's column order: a call that packs for
  // itself copies them a block at a time as they lie, a channels_first plan once for all its
  // calls (its per-tap blocks would store one value per output line; channels_last ones store
  // dense rows either way, and keep them).
  bool shuffle_columns() const {
    return have_isa && kernels::phase::shuffle_reads_weights(p, ks.nr) &&
           (!cache || g.data_format == DataFormat::channels_first);
  }
  const kernels::phase::Packed<T>& phase_packed();
  const kernels::phase::Packed<T>& grid_packed();
};

template <class T>
const kernels::phase::Packed<T>& Call<T>::phase_packed() {
  if (phase_pk && !grid_only) return *phase_pk;
  grid_only = false;
  const auto algo = kernels::phase::choose_algo(g);
  const std::int64_t cout_g = g.out_channels / g.groups;
  const std::int64_t width =
      algo == kernels::phase::Algo::channel ? kernels::phase::channel_kernel(ks, cout_g).nr : 0;
  // A second thread pays from a few tens of KiB: a call that packs for itself waits for the
  // pack before its threads start (docs/design.md, "Working memory").
  const double weight_bytes = bytes_of(g.weight_shape(), sizeof(T));
  const int pack_threads = weight_bytes > (64 << 10) ? runtime::choose_threads(options) : 1;
  auto make = [&] {
    return kernels::phase::pack(g, p.w, p.w_strides, algo, width, pack_threads, ks.transpose,
                                ks.grid_gemm != nullptr, ks.finite);
  };
  auto fits = [&](const kernels::phase::Packed<T>& pk) {
    return pk.matches(g) && (algo != kernels::phase::Algo::channel || pk.width == width) &&
           !(ks.grid_gemm && pk.grid_size == 0 && kernels::phase::grid_layout_fits(g));
  };
  phase_pk = cache ? cache->phase.get(fits, make)
                   : std::make_shared<const kernels::phase::Packed<T>>(make());
  return *phase_pk;
}

// The weights for the grid kernel. A call that packs for itself packs the grid layout alone
// (the kernel reads nothing else); a driver that needs the per-phase blocks after it, where the
// grid kernel did not run, packs them then (phase_packed).
template <class T>
const kernels::phase::Packed<T>& Call<T>::grid_packed() {
  if (phase_pk) return *phase_pk;
  // The grid layout reads every weight once per tap: from cache below this size.
  constexpr double kGridOnlyBytes = 1 << 20;
  if (cache || !ks.grid_gemm || !kernels::phase::grid_layout_fits(g) ||
      bytes_of(g.weight_shape(), sizeof(T)) > kGridOnlyBytes)
    return phase_packed();
  phase_pk = std::make_shared<const kernels::phase::Packed<T>>(
      kernels::phase::pack_grid_only(g, p.w, p.w_strides, ks.finite));
  grid_only = true;
  return *phase_pk;
}

// Depthwise layers: the depthwise driver with the ISA's kernels, or with its scalar ones when
// the ISA is capped to portable. An ISA without depthwise kernels keeps the phase driver.
template <class T>
bool depthwise_applies(Call<T>& c) {
  return kernels::depthwise::applies(c.p, c.threads) &&
         (!c.have_isa || (c.ks.dw_rows && c.ks.dw_pixels)) && c.finite();
}

template <class T>
std::size_t depthwise_run(Call<T>& c) {
  kernels::DwRowsFn<T> rows = kernels::depthwise::portable_rows<T>();
  kernels::DwPixelsFn<T> pixels = kernels::depthwise::portable_pixels<T>();
  if (c.have_isa) {
    rows = c.ks.dw_rows;
    pixels = c.ks.dw_pixels;
    t_last_isa = c.isa;
  }
  auto make = [&] { return kernels::depthwise::pack(c.g, c.p.w, c.p.w_strides); };
  const auto packed =
      c.cache ? c.cache->depthwise.get([&](const auto& pk) { return pk.matches(c.g); }, make)
              : std::make_shared<const kernels::depthwise::Packed<T>>(make());
  t_last_memory.packed_weight_bytes = packed->bytes();
  return kernels::depthwise::run(c.p, *packed, rows, pixels, c.threads);
}

template <class T>
bool shuffle_applies(Call<T>& c) {
  return c.have_isa && phase_handles(c.g) && kernels::phase::shuffle_applies(c.p) &&
         (c.shuffle_columns() || c.phase_finite());
}

template <class T>
bool grid_applies(Call<T>& c) {
  return c.vector_phase() && kernels::phase::grid_applies(c.p, c.grid_packed(), c.ks);
}

template <class T>
std::size_t grid_run(Call<T>& c) {
  const auto& pk = c.grid_packed();
  t_last_isa = c.isa;
  std::atomic<std::size_t> repacked{0};  // the other threads' copies (see run_grid)
  const std::function<kernels::phase::Packed<T>()> repack = [&c, &repacked] {
    auto copy = kernels::phase::pack_grid_only(c.g, c.p.w, c.p.w_strides, c.ks.finite);
    repacked += copy.bytes();
    return copy;
  };
  const std::size_t scratch =
      kernels::phase::run_grid(c.p, pk, c.ks, c.threads, c.grid_only ? &repack : nullptr);
  t_last_memory.packed_weight_bytes = pk.bytes() + repacked;
  return scratch;
}

template <class T>
bool phase_applies(Call<T>& c) {
  return c.vector_phase();
}

// The phase drivers on the packed weights (see kernels/phase.hpp).
template <class T, std::size_t (*Run)(const kernels::Problem<T>&, const kernels::phase::Packed<T>&,
                                      const kernels::KernelSet<T>&, int)>
std::size_t phase_run(Call<T>& c) {
  const auto& pk = c.phase_packed();
  t_last_isa = c.isa;
  t_last_memory.packed_weight_bytes = pk.bytes();
  return Run(c.p, pk, c.ks, c.threads);
}

template <class T>
std::size_t shuffle_run(Call<T>& c) {
  if (!c.shuffle_columns()) return phase_run<T, kernels::phase::run_shuffle<T>>(c);
  t_last_isa = c.isa;
  std::shared_ptr<const kernels::phase::ShuffleColumns<T>> columns;
  if (c.cache) {
    auto fits = [&](const auto& pk) { return pk.nr == c.ks.nr; };
    columns =
        c.cache->shuffle.get(fits, [&] { return kernels::phase::pack_shuffle_columns(c.p, c.ks); });
  }
  std::size_t blocks = 0;
  const std::size_t scratch =
      kernels::phase::run_shuffle_in_place(c.p, c.ks, c.threads, &blocks, columns.get());
  t_last_memory.packed_weight_bytes = columns ? columns->bytes() : blocks;
  return scratch;
}

// The direct driver (kernels/direct.hpp): the GEMM on the weights as passed, no pack.
template <class T>
bool direct_applies(Call<T>& c) {
  return c.have_isa && c.ks.nr <= 64 && kernels::direct::applies(c.p, c.ks);
}

// Where the pack is not repaid: a functional call (a plan packs once for all its calls) with
// large weights and few input cells to reuse them on. And where the phases path beats the packed
// panels, plans included: a few output channels per group.
template <class T>
bool direct_pays(Call<T>& c) {
  if (kernels::direct::narrow_phases(c.p, c.ks)) return true;
  if (c.cache) return false;
  const double weight_bytes = bytes_of(c.g.weight_shape(), sizeof(T));
  double cells = static_cast<double>(c.g.batch);
  for (auto e : c.g.input) cells *= static_cast<double>(e);
  if (cells > kDirectCells) return false;
  if (kernels::direct::by_phases(c.p, c.ks))
    return c.g.batch == 1 && weight_bytes >= kPhasesWeightBytes;
  return weight_bytes >= kDirectWeightBytes && c.g.in_channels / c.g.groups >= kDirectChannels;
}

template <class T>
std::size_t direct_run(Call<T>& c) {
  t_last_isa = c.isa;
  std::size_t blocks = 0;
  const std::size_t scratch = kernels::direct::run(c.p, c.ks, c.threads, &blocks);
  t_last_memory.packed_weight_bytes = blocks;
  return scratch;
}

template <class T>
bool always(Call<T>&) {
  return true;
}

template <class T>
std::size_t portable_run(Call<T>& c) {
  kernels::portable::conv_transpose(c.p);
  return 0;
}

template <class T>
struct Driver {
  const char* name;
  bool (*applies)(Call<T>&);
  std::size_t (*run)(Call<T>&);
  // Whether the dispatch sends a layer it applies to here (a forced driver skips this).
  bool (*pays)(Call<T>&) = always<T>;
};

template <class T>
constexpr Driver<T> kDrivers[] = {
    {"depthwise", depthwise_applies<T>, depthwise_run<T>},
    {"phase_shuffle", shuffle_applies<T>, shuffle_run<T>},
    {"direct", direct_applies<T>, direct_run<T>, direct_pays<T>},
    {"phase_grid", grid_applies<T>, grid_run<T>},
    {"phase", phase_applies<T>, phase_run<T, kernels::phase::run<T>>},
    {"portable", always<T>, portable_run<T>},
};

// Runs `d`; false (and the call's records cleared) when it declined.
template <class T>
bool run_driver(const Driver<T>& d, Call<T>& c) {
  const std::size_t scratch = d.run(c);
  if (scratch == kernels::phase::kDeclined) {
    t_last_isa = Isa::portable;
    t_last_memory = CallMemory{};
    return false;
  }
  t_last_memory.scratch_bytes = scratch;
  t_last_memory.output_streamed = runtime::noted_output_streamed();
  t_last_memory.input_copy_bytes = runtime::noted_input_copied();
  return true;
}

template <class T>
void run_forced(Call<T>& c) {
  for (const auto& d : kDrivers<T>) {
    if (c.options.driver != d.name) continue;
    if (!d.applies(c))
      throw std::invalid_argument("the driver '" + c.options.driver +
                                  "' does not take this layer (on " + isa_name(c.isa) + ")");
    if (!run_driver(d, c))
      throw std::invalid_argument("the driver '" + c.options.driver +
                                  "' declined this layer: its buffers would exceed the "
                                  "scratch budget");
    return;
  }
  std::string names;
  for (const auto& d : kDrivers<T>) names += std::string(names.empty() ? "" : ", ") + d.name;
  throw std::invalid_argument("unknown driver '" + c.options.driver + "'; the drivers are " +
                              names);
}

template <class T>
void run_layer(const Geometry& g, const T* x, const std::vector<std::int64_t>& x_strides,
               const T* weight, const std::vector<std::int64_t>& weight_strides, const T* bias,
               T* y, const std::vector<std::int64_t>& y_strides, const Options& options,
               PackCache<T>* cache);

// ---- functional calls in slices ----------------------------------------------------------------
//
// A call that packs for itself on several threads spends as long packing as on one thread (its
// copies land in lines the other core holds), and each thread's kernel then reads weights
// another core wrote. Where whole groups, or whole pairs of panels of output channels, give
// every thread a slice of the layer, each thread packs and runs its own slice instead, on the
// phase driver: the same products, each output summed in the same order as the whole layer
// would sum it (the phase driver's order for an output does not depend on the channels around
// it; tests/python/test_slices.py holds 1, 2 and 3 threads to the same bits).

// Weights from which a functional call on several threads is cut into slices (with the rule on
// the input's size in slices_of).
constexpr double kSliceWeightBytes = 256 << 10;

// The slices for c's threads, as (first, count) of groups (groups > 1) or of output channels;
// empty where the call runs whole.
template <class T>
std::vector<std::pair<std::int64_t, std::int64_t>> slices_of(Call<T>& c) {
  const Geometry& g = c.g;
  const double weight_bytes = bytes_of(g.weight_shape(), sizeof(T));
  const double input_bytes = bytes_of(g.input_shape(), sizeof(T));
  // A slice of whole groups reads its groups' input; one of output channels reads (and copies
  // rows of) the whole input, and each input row it loads feeds half the channels. Slices pay
  // where the weights are at least half the input's size (groups), or twice it (channels).
  const double least_weights = (g.groups > 1 ? 0.5 : 2.0) * input_bytes;
  if (c.cache || c.threads < 2 || !c.options.driver.empty() || !c.have_isa ||
      weight_bytes < kSliceWeightBytes || weight_bytes < least_weights || !phase_handles(g) ||
      kernels::phase::choose_algo(g) != kernels::phase::Algo::channel ||
      kernels::depthwise::applies(c.p, c.threads) || kernels::phase::shuffle_applies(c.p) ||
      (direct_applies(c) && direct_pays(c)))
    return {};
  const std::int64_t cout_g = g.out_channels / g.groups;
  const std::int64_t nr = kernels::phase::channel_kernel(c.ks, cout_g).nr;
  // Groups whole; a single group's channels in slices of at least two full panels, so that a
  // slice packs the same panels as the whole layer (one panel alone takes the joint layout).
  const std::int64_t unit = g.groups > 1 ? 1 : 2 * nr;
  const std::int64_t units = g.groups > 1 ? g.groups : cout_g / unit;
  // A slice for every thread, or the whole layer (fewer slices would leave threads idle).
  const std::int64_t n = c.threads;
  if (units < n) return {};
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t first = units * i / n * unit;
    // The last slice of one group's channels takes the channels past the last whole unit.
    const std::int64_t end =
        i + 1 == n ? units * unit + (g.groups > 1 ? 0 : cout_g % unit) : units * (i + 1) / n * unit;
    out.push_back({first, end - first});
  }
  return out;
}

// Runs c's layer as `slices` (see slices_of), one per thread; false where a slice's phase
// driver does not take it (Inf or NaN weights, the scratch bound) or its memory cannot be had:
// nothing is then known to be written and the caller runs the whole layer.
template <class T>
bool run_slices(Call<T>& c, const std::vector<std::pair<std::int64_t, std::int64_t>>& slices) {
  const Geometry& g = c.g;
  const kernels::Problem<T>& p = c.p;
  const bool first = g.data_format == DataFormat::channels_first;
  const int rank = g.rank;
  const std::size_t c_axis = first ? 1 : rank + 1;  // of x and y
  const std::size_t w_ci = first ? 0 : rank + 1, w_co = first ? 1 : rank;
  const std::int64_t cin_g = g.in_channels / g.groups, cout_g = g.out_channels / g.groups;
  std::atomic<bool> stop{false}, declined{false};
  // Each slice's records, made on the thread that ran it (the caller may have run none).
  std::vector<CallMemory> memory(slices.size());
  std::vector<const char*> kernel(slices.size());
  std::vector<Isa> isa(slices.size());
  auto body = [&](std::int64_t s, int slot) {
    const auto [at, count] = slices[static_cast<std::size_t>(s)];
    Geometry sub = g;
    std::int64_t ci0 = 0, co0 = 0, w_off = 0;
    if (g.groups > 1) {
      sub.groups = count;
      sub.in_channels = count * cin_g;
      sub.out_channels = count * cout_g;
      ci0 = at * cin_g;
      co0 = at * cout_g;
      w_off = ci0 * p.w_strides[w_ci];
    } else {
      co0 = at;
      sub.out_channels = count;
      w_off = co0 * p.w_strides[w_co];
    }
    Options o = c.options;
    o.num_threads = 1;
    o.driver = "phase";
    // The caller's poll stays on the caller's thread; the others stop when it has. (A caller
    // that lost its core while a worker took every slice is not asked until they end.)
    if (slot != 0) o.interrupt = [&stop] { return stop.load(std::memory_order_relaxed); };
    try {
      run_layer(sub, p.x + ci0 * p.x_strides[c_axis], p.x_strides, p.w + w_off, p.w_strides,
                p.bias ? p.bias + co0 : nullptr, p.y + co0 * p.y_strides[c_axis], p.y_strides, o,
                static_cast<PackCache<T>*>(nullptr));
      memory[static_cast<std::size_t>(s)] = t_last_memory;
      kernel[static_cast<std::size_t>(s)] = runtime::noted_kernel();
      isa[static_cast<std::size_t>(s)] = t_last_isa;
    } catch (const std::invalid_argument&) {
      declined.store(true);
    } catch (const std::bad_alloc&) {
      // The whole layer runs instead: it either fits or says how much the layer needs.
      declined.store(true);
    } catch (...) {
      stop.store(true);
      throw;
    }
  };
  detail::parallel_for(static_cast<std::int64_t>(slices.size()), c.threads, body);
  if (declined.load()) return false;
  CallMemory total = memory[0];
  for (std::size_t s = 1; s < memory.size(); ++s) {
    total.scratch_bytes += memory[s].scratch_bytes;
    total.packed_weight_bytes += memory[s].packed_weight_bytes;
    total.output_streamed = total.output_streamed || memory[s].output_streamed;
    total.input_copy_bytes += memory[s].input_copy_bytes;
  }
  total.slices = static_cast<int>(memory.size());
  t_last_memory = total;
  t_last_isa = isa[0];
  runtime::note_kernel(kernel[0]);
  return true;
}

template <class T>
void run_layer(const Geometry& g, const T* x, const std::vector<std::int64_t>& x_strides,
               const T* weight, const std::vector<std::int64_t>& weight_strides, const T* bias,
               T* y, const std::vector<std::int64_t>& y_strides, const Options& options,
               PackCache<T>* cache) {
  detail::validate_call(g, x, x_strides, weight, weight_strides, bias, y, y_strides, sizeof(T));
  kernels::Problem<T> p;
  p.g = &g;
  p.x = x;
  p.w = weight;
  p.bias = bias;
  p.y = y;
  p.x_strides = strides_or_default(x_strides, g.input_shape(), "x");
  p.w_strides = strides_or_default(weight_strides, g.weight_shape(), "weight");
  p.y_strides = strides_or_default(y_strides, g.output_shape(), "y");
  t_last_memory = CallMemory{};
  t_last_isa = Isa::portable;
  runtime::note_kernel("none");
  runtime::note_output_streamed(false);
  runtime::note_input_copied(0);
  const std::int64_t y_elems = checked_product(g.output_shape(), "the output size");
  if (y_elems == 0) return;
  if (g.in_channels == 0) {
    bias_only(g, bias, y, p.y_strides);
    return;
  }
  detail::InterruptScope interrupt(options.interrupt);
  Call<T> c(g, p, options, cache);
  c.isa = runtime::choose_isa(options);
  c.have_isa = phase_kernels<T>(c.isa, &c.ks);
  c.threads = threads_for(g, options);
  if (!options.driver.empty()) return run_forced(c);
  const auto slices = slices_of(c);
  if (!slices.empty() && run_slices(c, slices)) return;
  for (const auto& d : kDrivers<T>)
    if (d.applies(c) && d.pays(c) && run_driver(d, c)) return;
}

// run_layer on the layer's canonical form (see canonical.hpp), with any allocation that failed
// without saying what it was for named as the layer's working memory (the large buffers name
// themselves where they are allocated).
template <class T>
void run(const Geometry& g, const T* x, const std::vector<std::int64_t>& x_strides, const T* weight,
         const std::vector<std::int64_t>& weight_strides, const T* bias, T* y,
         const std::vector<std::int64_t>& y_strides, const Options& options, PackCache<T>* cache) {
  detail::validate_call(g, x, x_strides, weight, weight_strides, bias, y, y_strides, sizeof(T));
  detail::CanonicalLayer c;
  const bool reordered =
      detail::canonical_layer(g, strides_or_default(x_strides, g.input_shape(), "x"),
                              strides_or_default(weight_strides, g.weight_shape(), "weight"),
                              strides_or_default(y_strides, g.output_shape(), "y"), &c);
  try {
    if (reordered) {
      run_layer(c.g, x, c.x_strides, weight, c.w_strides, bias, y, c.y_strides, options, cache);
      t_last_memory.dims_reordered = true;
    } else {
      run_layer(g, x, x_strides, weight, weight_strides, bias, y, y_strides, options, cache);
    }
  } catch (const detail::OutOfMemory&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw detail::OutOfMemory(
        "tconv could not allocate the working memory (tap tables, row buffers) of a layer "
        "with output " +
        format_shape(g.output_shape()) + "; " + detail::kScratchAdvice);
  }
}

}  // namespace

CallMemory last_call_memory() { return t_last_memory; }
Isa last_call_isa() { return t_last_isa; }
const char* last_call_kernel() { return runtime::noted_kernel(); }

std::vector<std::string> drivers() {
  std::vector<std::string> names;
  for (const auto& d : kDrivers<float>) names.emplace_back(d.name);
  return names;
}

void conv_transpose(const Geometry& g, const float* x, const std::vector<std::int64_t>& x_strides,
                    const float* weight, const std::vector<std::int64_t>& weight_strides,
                    const float* bias, float* y, const std::vector<std::int64_t>& y_strides,
                    const Options& options) {
  run<float>(g, x, x_strides, weight, weight_strides, bias, y, y_strides, options, nullptr);
}

void conv_transpose(const Geometry& g, const double* x, const std::vector<std::int64_t>& x_strides,
                    const double* weight, const std::vector<std::int64_t>& weight_strides,
                    const double* bias, double* y, const std::vector<std::int64_t>& y_strides,
                    const Options& options) {
  run<double>(g, x, x_strides, weight, weight_strides, bias, y, y_strides, options, nullptr);
}

// ---- plan ------------------------------------------------------------------------------------

namespace {
// Copies the array (shape, strides in elements) into dst, C-contiguous, a run at a time (see
// each_run: a C-contiguous array is one copy).
template <class T>
void copy_dense(const std::vector<std::int64_t>& shape, const T* src,
                const std::vector<std::int64_t>& strides, T* dst) {
  each_run(shape, src, strides, [&dst](const T* row, std::int64_t len, std::int64_t step) {
    if (step == 1)
      std::copy(row, row + len, dst);
    else
      for (std::int64_t j = 0; j < len; ++j) dst[j] = row[j * step];
    dst += len;
    return true;
  });
}
}  // namespace

template <class T>
struct ConvTransposePlan<T>::Impl {
  LayerSpec spec;
  std::vector<std::int64_t> weight_shape;
  detail::Buffer<T> weight;  // C-contiguous copy, for the portable path and repacking
  std::vector<T> bias;
  bool has_bias = false;
  mutable PackCache<T> cache;
};

template <class T>
ConvTransposePlan<T>::ConvTransposePlan(const std::vector<std::int64_t>& weight_shape,
                                        const T* weight,
                                        const std::vector<std::int64_t>& weight_strides,
                                        const T* bias, const LayerSpec& spec)
    : impl_(std::make_unique<Impl>()) {
  impl_->spec = spec;
  impl_->weight_shape = weight_shape;
  // Validate the layer once against the smallest input whose output is not empty.
  if (static_cast<int>(weight_shape.size()) != spec.rank + 2)
    throw ShapeError("weight must have rank " + std::to_string(spec.rank + 2) + " for a " +
                     std::to_string(spec.rank) + "-D layer, got rank " +
                     std::to_string(weight_shape.size()));
  const bool cf = spec.data_format == DataFormat::channels_first;
  std::vector<std::int64_t> probe(static_cast<std::size_t>(spec.rank + 2), 1);
  probe[cf ? 1 : static_cast<std::size_t>(spec.rank) + 1] =
      cf ? weight_shape[0] : weight_shape.back();
  for (int d = 0; d < spec.rank; ++d) {
    std::int64_t lo = 0, hi = 0;
    if (spec.pad_mode == PadMode::explicit_pads) {
      lo = d < static_cast<int>(spec.pad_lo.size()) ? std::max<std::int64_t>(0, spec.pad_lo[d]) : 0;
      hi = d < static_cast<int>(spec.pad_hi.size()) ? std::max<std::int64_t>(0, spec.pad_hi[d]) : 0;
    }
    probe[static_cast<std::size_t>(cf ? d + 2 : d + 1)] =
        checked_add(checked_add(lo, hi, "padding"), 1, "padding");
  }
  Geometry g = resolve_geometry(probe, weight_shape, spec);
  const auto ws = strides_or_default(weight_strides, weight_shape, "weight");
  const std::int64_t n = checked_product(weight_shape, "the weight size");
  impl_->weight = detail::make_buffer<T>(static_cast<std::size_t>(n),
                                         "the plan's copy of the weights", detail::kWeightsAdvice);
  copy_dense(weight_shape, weight, ws, impl_->weight.get());
  if (bias) {
    impl_->has_bias = true;
    impl_->bias.assign(bias, bias + g.out_channels);
  }
  impl_->cache.weights_finite =
      all_finite(weight_shape, impl_->weight.get(), contiguous_strides(weight_shape));
}

namespace {
LayerSpec explicit_spec(const Geometry& g) {
  LayerSpec s;
  s.rank = g.rank;
  s.stride = g.stride;
  s.dilation = g.dilation;
  s.pad_lo = g.pad_lo;
  s.pad_hi = g.pad_hi;
  s.output_padding = g.output_padding;
  s.pad_mode = PadMode::explicit_pads;
  s.groups = g.groups;
  s.data_format = g.data_format;
  return s;
}
}  // namespace

template <class T>
ConvTransposePlan<T>::ConvTransposePlan(const Geometry& g, const T* weight,
                                        const std::vector<std::int64_t>& weight_strides,
                                        const T* bias)
    : ConvTransposePlan(g.weight_shape(), weight, weight_strides, bias, explicit_spec(g)) {}

template <class T>
ConvTransposePlan<T>::~ConvTransposePlan() = default;
template <class T>
ConvTransposePlan<T>::ConvTransposePlan(ConvTransposePlan&&) noexcept = default;
template <class T>
ConvTransposePlan<T>& ConvTransposePlan<T>::operator=(ConvTransposePlan&&) noexcept = default;

template <class T>
Geometry ConvTransposePlan<T>::geometry(const std::vector<std::int64_t>& x_shape) const {
  return resolve_geometry(x_shape, impl_->weight_shape, impl_->spec);
}

template <class T>
Geometry ConvTransposePlan<T>::geometry_for_size(const std::vector<std::int64_t>& x_shape,
                                                 const std::vector<std::int64_t>& wanted) const {
  LayerSpec spec = impl_->spec;
  spec.output_padding = output_padding_for_size(x_shape, impl_->weight_shape, spec, wanted);
  return resolve_geometry(x_shape, impl_->weight_shape, spec);
}

template <class T>
void ConvTransposePlan<T>::run(const Geometry& g, const T* x,
                               const std::vector<std::int64_t>& x_strides, T* y,
                               const std::vector<std::int64_t>& y_strides,
                               const Options& options) const {
  const LayerSpec& s = impl_->spec;
  if (g.weight_shape() != impl_->weight_shape || g.rank != s.rank || g.stride != s.stride ||
      g.dilation != s.dilation || g.groups != s.groups || g.data_format != s.data_format)
    throw std::invalid_argument(
        "the geometry was not made by this plan; call plan.geometry(x_shape) first");
  tconv::run<T>(g, x, x_strides, impl_->weight.get(), {},
                impl_->has_bias ? impl_->bias.data() : nullptr, y, y_strides, options,
                &impl_->cache);
}

template <class T>
const LayerSpec& ConvTransposePlan<T>::spec() const {
  return impl_->spec;
}

template <class T>
const std::vector<std::int64_t>& ConvTransposePlan<T>::weight_shape() const {
  return impl_->weight_shape;
}

template <class T>
const T* ConvTransposePlan<T>::weight() const {
  return impl_->weight.get();
}

template <class T>
std::size_t ConvTransposePlan<T>::packed_bytes() const {
  return impl_->cache.phase.bytes() + impl_->cache.depthwise.bytes() + impl_->cache.shuffle.bytes();
}

template class ConvTransposePlan<float>;
template class ConvTransposePlan<double>;

}  // namespace tconv
