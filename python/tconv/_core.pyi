"""tconv's compiled core; use the tconv package, not this module.

Typed signatures of python/src; tests/python/test_core_stub.py keeps them equal to what
pybind11 reports at run time."""

from __future__ import annotations

import collections.abc
import typing

import numpy

__all__: list[str] = [
    "Geometry",
    "Plan",
    "active_isa",
    "available_isas",
    "build_info",
    "compiled_isas",
    "conv_length",
    "conv_transpose",
    "effective_kernel",
    "forget_repeats",
    "get_num_threads",
    "jax_resolve",
    "kept_result_buffers",
    "kept_weight_buffers",
    "keras_length",
    "last_call_isa",
    "last_call_kernel",
    "last_call_memory",
    "onnx_output_shape_range",
    "onnx_resolve",
    "output_padding_for_size",
    "remember",
    "repeat",
    "resolve_geometry",
    "resolve_keras_padding",
    "result_array",
    "set_max_isa",
    "set_num_threads",
    "set_shape_error",
    "tf_conv",
    "tf_transposed",
    "tf_transposed_range",
    "torch_length",
    "torch_output_size_range",
    "transposed_length",
]

class Geometry:
    def flops(self) -> float: ...
    def input_shape(self) -> list[int]: ...
    def output_shape(self) -> list[int]: ...
    def weight_shape(self) -> list[int]: ...
    @property
    def batch(self) -> int: ...
    @property
    def channels_last(self) -> bool: ...
    @property
    def dilation(self) -> list[int]: ...
    @property
    def groups(self) -> int: ...
    @property
    def in_channels(self) -> int: ...
    @property
    def input(self) -> list[int]: ...
    @property
    def kernel(self) -> list[int]: ...
    @property
    def out_channels(self) -> int: ...
    @property
    def output(self) -> list[int]: ...
    @property
    def output_padding(self) -> list[int]: ...
    @property
    def pad_hi(self) -> list[int]: ...
    @property
    def pad_lo(self) -> list[int]: ...
    @property
    def rank(self) -> int: ...
    @property
    def stride(self) -> list[int]: ...

class Plan:
    def __init__(
        self, geometry: Geometry, weight: numpy.ndarray, bias: numpy.ndarray | None
    ) -> None: ...
    def run(self, geometry: Geometry, x: numpy.ndarray, out: numpy.ndarray) -> None: ...
    @property
    def packed_bytes(self) -> int: ...
    @property
    def weight(self) -> numpy.ndarray:
        """
        The plan's own copy of the weights, read-only (C-contiguous).
        """

def _fma_peak(
    dtype: str = "float32",
    threads: typing.SupportsInt | typing.SupportsIndex = 1,
    seconds: typing.SupportsFloat | typing.SupportsIndex = 0.05,
) -> dict:
    """
    Measured floating-point throughput of `threads` threads, GFLOP/s: 12 independent FMA
    chains of the widest vectors the kernels use ('chains': 'avx512' or 'avx2'; 'fma': True),
    else a portable multiply-add loop ('chains': 'portable').
    """

def active_isa() -> str: ...
def available_isas() -> list[str]: ...
def build_info() -> dict:
    """
    How this extension was built: CMake build type, C++ compiler, pybind11.
    """

def compiled_isas() -> list[str]: ...
def conv_length(
    input: typing.SupportsInt | typing.SupportsIndex,
    kernel: typing.SupportsInt | typing.SupportsIndex,
    stride: typing.SupportsInt | typing.SupportsIndex,
    dilation: typing.SupportsInt | typing.SupportsIndex,
    pad_lo: typing.SupportsInt | typing.SupportsIndex,
    pad_hi: typing.SupportsInt | typing.SupportsIndex,
) -> int: ...
def conv_transpose(
    geometry: Geometry,
    x: numpy.ndarray,
    weight: numpy.ndarray,
    bias: numpy.ndarray | None,
    out: numpy.ndarray,
    num_threads: typing.SupportsInt | typing.SupportsIndex = 0,
    max_isa: str | None = None,
    driver: str | None = None,
) -> None: ...
def forget_repeats() -> None:
    """
    Drops every resolution remember() kept.
    """

def remember(
    x: typing.Any,
    weight: typing.Any,
    bias: typing.Any,
    args: tuple,
    geometry: Geometry,
    y_shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
    batched: bool,
) -> None:
    """
    Keeps a completed functional call's resolution for repeat() (plain calls only).
    """

def repeat(x: typing.Any, weight: typing.Any, bias: typing.Any, args: tuple) -> object:
    """
    The functional call's result where remember() kept its layer's resolution, else None.
    """

def drivers() -> list[str]:
    """
    The drivers, in the order the dispatch tries them.
    """

def effective_kernel(
    kernel: typing.SupportsInt | typing.SupportsIndex,
    dilation: typing.SupportsInt | typing.SupportsIndex,
) -> int: ...
def get_num_threads() -> int: ...
def jax_resolve(
    input: typing.SupportsInt | typing.SupportsIndex,
    kernel: typing.SupportsInt | typing.SupportsIndex,
    stride: typing.SupportsInt | typing.SupportsIndex,
    dilation: typing.SupportsInt | typing.SupportsIndex,
    mode: str,
    lo: typing.SupportsInt | typing.SupportsIndex = 0,
    hi: typing.SupportsInt | typing.SupportsIndex = 0,
) -> tuple[int, int, int, int, int, int]:
    """
    (output, pad_lo, pad_hi, padded_input, before, after) of jax.lax.conv_transpose.
    """

def keras_length(
    input: typing.SupportsInt | typing.SupportsIndex,
    mode: str,
    kernel: typing.SupportsInt | typing.SupportsIndex,
    stride: typing.SupportsInt | typing.SupportsIndex,
    dilation: typing.SupportsInt | typing.SupportsIndex,
    output_padding: typing.SupportsInt | typing.SupportsIndex | None = None,
) -> int: ...
def kept_result_buffers() -> int:
    """
    Freed large result buffers kept for reuse (for tests).
    """

def kept_weight_buffers() -> int:
    """
    Freed buffers of packed or copied weights kept for reuse (for tests).
    """

def last_call_isa() -> str:
    """
    The instruction set whose kernels ran this thread's last core call.
    """

def last_call_kernel() -> str:
    """
    The driver (and its variant) that ran this thread's last core call.
    """

def last_call_memory() -> dict:
    """
    Working memory of this thread's last core call, beyond x, weight, bias and y.
    """

def output_padding_limit(
    stride: typing.SupportsInt | typing.SupportsIndex,
    dilation: typing.SupportsInt | typing.SupportsIndex,
) -> int: ...
def onnx_output_shape_range(
    input: typing.SupportsInt | typing.SupportsIndex,
    kernel: typing.SupportsInt | typing.SupportsIndex,
    stride: typing.SupportsInt | typing.SupportsIndex,
    dilation: typing.SupportsInt | typing.SupportsIndex,
) -> tuple: ...
def onnx_resolve(
    input: typing.SupportsInt | typing.SupportsIndex,
    kernel: typing.SupportsInt | typing.SupportsIndex,
    stride: typing.SupportsInt | typing.SupportsIndex,
    dilation: typing.SupportsInt | typing.SupportsIndex,
    output_padding: typing.SupportsInt | typing.SupportsIndex,
    auto_pad: str,
    pad_lo: typing.SupportsInt | typing.SupportsIndex,
    pad_hi: typing.SupportsInt | typing.SupportsIndex,
    output_shape: typing.SupportsInt | typing.SupportsIndex | None = None,
) -> tuple:
    """
    (output, pad_lo, pad_hi, output_padding) as onnxruntime resolves ConvTranspose.
    """

def output_padding_for_size(
    x_shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
    weight_shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
    rank: typing.SupportsInt | typing.SupportsIndex,
    stride: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
    dilation: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
    pad_lo: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
    pad_hi: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
    mode: str,
    groups: typing.SupportsInt | typing.SupportsIndex,
    channels_last: bool,
    wanted: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
) -> list[int]: ...
def resolve_geometry(
    x_shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
    weight_shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
    rank: typing.SupportsInt | typing.SupportsIndex,
    stride: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
    dilation: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
    pad_lo: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
    pad_hi: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex],
    output_padding: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex] | None,
    mode: str,
    groups: typing.SupportsInt | typing.SupportsIndex,
    channels_last: bool,
) -> Geometry: ...
def resolve_keras_padding(
    mode: str,
    kernel: typing.SupportsInt | typing.SupportsIndex,
    stride: typing.SupportsInt | typing.SupportsIndex,
    dilation: typing.SupportsInt | typing.SupportsIndex,
    output_padding: typing.SupportsInt | typing.SupportsIndex | None = None,
) -> tuple[int, int, int]:
    """
    Keras 'same'/'valid' as (pad_lo, pad_hi, output_padding) of the scatter form.
    """

def result_array(
    shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], dtype: numpy.dtype
) -> numpy.ndarray:
    """
    An uninitialised C-contiguous array on a 64-byte line; large ones reuse freed buffers.
    """

def set_max_isa(arg0: str) -> None: ...
def set_num_threads(n: typing.SupportsInt | typing.SupportsIndex) -> None: ...
def set_shape_error(arg0: typing.Any) -> None: ...
def tf_conv(
    input: typing.SupportsInt | typing.SupportsIndex,
    kernel: typing.SupportsInt | typing.SupportsIndex,
    stride: typing.SupportsInt | typing.SupportsIndex,
    dilation: typing.SupportsInt | typing.SupportsIndex,
    mode: str,
    pad_lo: typing.SupportsInt | typing.SupportsIndex = 0,
    pad_hi: typing.SupportsInt | typing.SupportsIndex = 0,
) -> tuple[int, int, int]:
    """
    TensorFlow's forward convolution: (output, pad_lo, pad_hi).
    """

def tf_transposed(
    input: typing.SupportsInt | typing.SupportsIndex,
    output: typing.SupportsInt | typing.SupportsIndex,
    kernel: typing.SupportsInt | typing.SupportsIndex,
    stride: typing.SupportsInt | typing.SupportsIndex,
    dilation: typing.SupportsInt | typing.SupportsIndex,
    mode: str,
    pad_lo: typing.SupportsInt | typing.SupportsIndex = 0,
    pad_hi: typing.SupportsInt | typing.SupportsIndex = 0,
) -> tuple:
    """
    (output, pad_lo, pad_hi, output_padding) of an accepted tf.nn output length.
    """

def tf_transposed_range(
    input: typing.SupportsInt | typing.SupportsIndex,
    kernel: typing.SupportsInt | typing.SupportsIndex,
    stride: typing.SupportsInt | typing.SupportsIndex,
    dilation: typing.SupportsInt | typing.SupportsIndex,
    mode: str,
    pad_lo: typing.SupportsInt | typing.SupportsIndex = 0,
    pad_hi: typing.SupportsInt | typing.SupportsIndex = 0,
) -> tuple:
    """
    (lo, hi) of the output lengths tf.nn.conv_transpose accepts for `input`.
    """

def torch_length(
    input: typing.SupportsInt | typing.SupportsIndex,
    kernel: typing.SupportsInt | typing.SupportsIndex,
    stride: typing.SupportsInt | typing.SupportsIndex,
    dilation: typing.SupportsInt | typing.SupportsIndex,
    padding: typing.SupportsInt | typing.SupportsIndex,
    output_padding: typing.SupportsInt | typing.SupportsIndex,
) -> int: ...
def torch_output_size_range(
    input: typing.SupportsInt | typing.SupportsIndex,
    kernel: typing.SupportsInt | typing.SupportsIndex,
    stride: typing.SupportsInt | typing.SupportsIndex,
    dilation: typing.SupportsInt | typing.SupportsIndex,
    padding: typing.SupportsInt | typing.SupportsIndex,
) -> tuple:
    """
    (lo, hi) of the sizes output_size= accepts.
    """

def transposed_length(
    input: typing.SupportsInt | typing.SupportsIndex,
    kernel: typing.SupportsInt | typing.SupportsIndex,
    stride: typing.SupportsInt | typing.SupportsIndex,
    dilation: typing.SupportsInt | typing.SupportsIndex,
    pad_lo: typing.SupportsInt | typing.SupportsIndex,
    pad_hi: typing.SupportsInt | typing.SupportsIndex,
    output_padding: typing.SupportsInt | typing.SupportsIndex,
) -> int: ...

RESULT_REUSE_BYTES: int
__version__: str
