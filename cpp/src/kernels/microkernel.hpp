// The interface between the phase driver (baseline code) and the per-ISA micro-kernels.
//
// Plain structs and function pointers only: an ISA translation unit must not share any inline
// function or template instantiation with baseline code (see the build notes on ODR), so
// nothing here has a body.
//
// A call computes an M x N block of one output phase as a batch-reduce GEMM:
//
//   C[m][n] = bias[n] + sum over pairs p, over k < K of  A_p[k][m] * B_p[k][n]
//   A_p[k][m] = a[a_off[p] + k * a_ks + m * a_ms]      (a packed input row buffer)
//   B_p[k][n] = b[b_off[p] + k * b_ld + n]              (packed weights)
//   C[m][n] is stored at c[m * c_ms + n * c_ns]          (the output, any layout)
//
// Each C element is accumulated in registers from the bias and stored once; the summation
// order depends only on the pair list, never on the thread that runs the call.
#pragma once

#include <cstdint>

namespace tconv::kernels {

template <class T>
struct GemmCall {
  const T* a;
  const std::int64_t* a_off;
  const T* b;
  const std::int64_t* b_off;
  std::int64_t pairs, k, a_ks, a_ms, b_ld;
  T* c;
  std::int64_t c_ms, c_ns;
  std::int64_t m, n;  // rows to compute; valid columns (<= the kernel's width)
  const T* bias;      // n values, or null for zero
};

template <class T>
using GemmFn = void (*)(const GemmCall<T>&);

// The spatial-vector GEMM over several phases of the last dim at once (tiny C_out): one load
// of input positions feeds every phase with a tap at that shift.
//
//   C_ph[m][n] = bias[n] + sum over pairs p with b_off[p * phases + ph] >= 0, over k < K of
//                a[a_off[p] + k * a_ks + m] * b[b_off[p * phases + ph] + k * b_ld + n]
//   C_ph[m][n] is stored at c[ph * c_ps + m * c_ms + n * c_ns]
//
// partner[p] > p names a pair whose phases are exactly the ones pair p lacks: the kernel runs
// both in one pass over k, so every accumulator has a chain to advance (a pair feeding one
// phase alone leaves too few independent FMA chains to hide the latency). partner[p] == -2
// marks such a partner (already done), -1 a pair run alone. The summation order is fixed by
// the list and the partners, never by the thread that runs the call.
template <class T>
struct PhaseCall {
  const T* a;
  const std::int64_t* a_off;
  const T* b;
  const std::int64_t* b_off;  // pairs x phases; -1: that phase has no tap at this shift
  const std::int64_t* partner;  // pairs entries, or null: every pair alone
  std::int64_t pairs, k, a_ks, b_ld, phases;
  T* c;
  std::int64_t c_ms, c_ps, c_ns;
  std::int64_t m, n;
  const T* bias;
};

// Returns false (and computes nothing) when it has no kernel for this (phases, n).
template <class T>
using PhaseFn = bool (*)(const PhaseCall<T>&);

// A kernel family: the channel-vector GEMM (N = output channels, width nr) and the
// spatial-vector GEMM (M = output positions in vectors of `vl`, N <= 4 output channels,
// a_ms must be 1 and the row buffer readable `spatial_tile` elements past the last row).
// dst[j * dst_ld + i] = src[i * src_ld + j] for i < rows, j < cols (a strided 2-D transpose).
// dst_order: sweep dst rows to the end before the next band (the side in main memory streams
// through few rows at a time), else src rows.
template <class T>
using TransposeFn = void (*)(const T* src, std::int64_t src_ld, T* dst, std::int64_t dst_ld,
                             std::int64_t rows, std::int64_t cols, bool dst_order);

template <class T>
struct KernelSet {
  GemmFn<T> channel_gemm;
  std::int64_t nr;
  GemmFn<T> spatial_gemm;
  std::int64_t spatial_tile;
  TransposeFn<T> transpose;
  PhaseFn<T> phase_gemm;  // may be null
};

}  // namespace tconv::kernels
