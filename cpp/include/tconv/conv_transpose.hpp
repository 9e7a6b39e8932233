// The transposed convolution operator over raw pointers.
//
// Layouts (batch axis always present; a caller with unbatched data passes N = 1):
//   channels_first: x (N, C_in, *in), weight (C_in, C_out/groups, *k), y (N, C_out, *out)
//                   -- PyTorch / ONNX
//   channels_last:  x (N, *in, C_in), weight (*k, C_out/groups, C_in), y (N, *out, C_out)
//                   -- Keras / TensorFlow
//
// Strides are counted in ELEMENTS (not bytes), one per axis of the full shape, and may be zero
// or negative for x and weight. An empty stride vector means C-contiguous. The bias, when
// given, is C_out contiguous values. y must not overlap x, weight or bias.
//
// Every output element is written (bias or zero plus its contributions); y needs no
// initialisation. The result does not depend on the number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "tconv/shape.hpp"

namespace tconv {

// Instruction sets with their own kernels, ordered by capability. portable runs on any CPU;
// neon (AArch64) and avx2 (x86-64 with AVX2 and FMA) are the vector kernels of their
// architectures; a cap at either allows the vector kernels of whichever architecture the
// program runs on. avx512 (x86-64 with AVX-512F, AVX2 and FMA, and an OS that saves the
// 512-bit state) is above avx2.
enum class Isa { portable = 0, neon = 1, avx2 = 2, avx512 = 3 };

// Name as accepted by TCONV_MAX_ISA and set_max_isa ("avx512", "avx2", "neon", "portable").
const char* isa_name(Isa isa);
// Parse a name (case-insensitive); throws std::invalid_argument listing the valid names.
Isa isa_from_name(const std::string& name);
// The ISAs this CPU can run, best first (always ends with portable).
std::vector<Isa> available_isas();
// The ISAs this build has kernels for, whatever the CPU, best first (always ends with portable).
std::vector<Isa> compiled_isas();
// The best ISA allowed by the CPU, TCONV_MAX_ISA and set_max_isa.
Isa active_isa();
// Cap the ISA for later calls (process-wide). A cap above what the CPU supports is harmless.
void set_max_isa(Isa isa);

// Process-wide thread count for later calls; n <= 0 restores the default
// (TCONV_NUM_THREADS, else the number of CPUs available). A call runs on at most as many
// threads as the process has CPUs (its affinity mask), whatever the count asked for.
void set_num_threads(int n);
int get_num_threads();

// Thrown by a call that Options::interrupt stopped; y is then partly written.
class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("tconv: the call was interrupted") {}
};

struct Options {
  int num_threads = 0;   // <= 0: the process-wide setting
  bool cap_isa = false;  // true: use at most max_isa for this call
  Isa max_isa = Isa::portable;
  // Empty: the dispatch picks the driver. Else one of drivers(): the call runs on it, and
  // throws std::invalid_argument where it does not take the layer (tests and benchmarks).
  std::string driver;
  // Asked on the calling thread about every 20 ms while the call computes (a poll that takes
  // long is asked less often, still every 150 ms; never on another thread, never after the
  // call returns); returning true stops the call with Interrupted within a bounded piece of
  // work. Empty: the call runs to the end.
  std::function<bool()> interrupt;
};

// Checked on every call, in O(rank) time and before any memory is read or written:
//   - the Geometry is consistent: rank >= 1, every per-dimension vector has rank entries,
//     kernel/stride/dilation/input >= 1, pads and output_padding >= 0, groups divides both
//     channel counts, and each output length equals what the formula gives (ShapeError; build
//     geometries with resolve_geometry);
//   - element counts, byte sizes and the offsets the strides can reach fit in 64 bits
//     (SizeOverflowError);
//   - each stride vector is empty or has one entry per axis; x, weight and y are non-null
//     unless they have no elements (bias may be null: no bias); the strides do not run off the
//     address space; y's strides give every output element its own memory; y's memory span
//     does not intersect x's, weight's or bias's (std::invalid_argument).
// Not checkable and left to the caller: that the pointers really address that much memory.
void conv_transpose(const Geometry& g, const float* x, const std::vector<std::int64_t>& x_strides,
                    const float* weight, const std::vector<std::int64_t>& weight_strides,
                    const float* bias, float* y, const std::vector<std::int64_t>& y_strides,
                    const Options& options = {});
void conv_transpose(const Geometry& g, const double* x, const std::vector<std::int64_t>& x_strides,
                    const double* weight, const std::vector<std::int64_t>& weight_strides,
                    const double* bias, double* y, const std::vector<std::int64_t>& y_strides,
                    const Options& options = {});

// Working memory of the last conv_transpose (or plan run) made on the calling thread, beyond
// x, weight, bias and y: the driver's own scratch (row buffers and index lists, all threads),
// and the packed weights it ran on (made for the call, or held by the plan).
struct CallMemory {
  std::size_t scratch_bytes = 0;
  std::size_t packed_weight_bytes = 0;
  // Whether the kernels ran an equivalent reordering of the layer's axes: spatial dims with one
  // input cell, one tap and one output cell dropped, a narrow last dim swapped with a long one,
  // or a channels_last layer of one input and one output channel taken as channels_first.
  bool dims_reordered = false;
  // Whether y was written with streaming (non-temporal) stores, which skip reading each line
  // before writing it: float32 channels_first outputs of 8 MiB or more on x86 (AVX2 and up).
  bool output_streamed = false;
  // The slices the call ran in: 1, or one per thread where a call that packs its own weights
  // (no plan) ran each thread's share of the groups or output channels as a layer of its own,
  // packing only its weights (the bytes above are then the slices' sums).
  int slices = 1;
  // Bytes of the input the phase driver copied into its row buffers (input rows in the
  // kernels' order): about the input's size where each row is copied once per block of the
  // last dim, 0 where the kernels read the input in place or another driver ran (the slices'
  // sum).
  std::size_t input_copy_bytes = 0;
};
CallMemory last_call_memory();

// The instruction set whose kernels ran the last conv_transpose (or plan run) made on the
// calling thread: portable when the layer went to the portable kernel or computed nothing.
Isa last_call_isa();

// The driver that ran that call and its variant, for tests and benchmarks: "portable",
// "depthwise", "phase_shuffle", "phase_shuffle_in_place" / "phase_shuffle_columns" (one input
// position: the weights read in the output's column order, copied a block at a time or, by a
// channels_first plan, once), "phase_grid", "phase_channel", "phase_channel_blocks" (short
// rows in blocks, panel by panel), "phase_channel_joint", "phase_channel_groups" /
// "phase_channel_joint_groups" (every group of a row in one pass), "phase_positions",
// "phase_positions_in_place"; "none" when the call computed nothing (an empty output) or only
// the bias (no input channels).
const char* last_call_kernel();

// The drivers, in the order the dispatch tries them: a layer runs on the first that takes it
// ("depthwise", "phase_shuffle", "phase_grid", "phase", "portable"). last_call_kernel() names
// the driver and its variant: it starts with the driver's name.
std::vector<std::string> drivers();

// Convenience form for C-contiguous buffers: validates the layer and runs it.
// Returns the geometry (y must hold prod(geometry.output_shape()) elements: call
// resolve_geometry first to size it).
template <class T>
Geometry conv_transpose(const std::vector<std::int64_t>& x_shape, const T* x,
                        const std::vector<std::int64_t>& weight_shape, const T* weight,
                        const T* bias, T* y, const LayerSpec& spec, const Options& options = {}) {
  Geometry g = resolve_geometry(x_shape, weight_shape, spec);
  conv_transpose(g, x, {}, weight, {}, bias, y, {}, options);
  return g;
}

}  // namespace tconv
