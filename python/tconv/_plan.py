"""tconv.ConvTranspose: a layer whose weights are validated and packed once."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._api import (
    aligned,
    check_bias,
    convert,
    layer_args,
    operands,
    rank_error,
    resolve_call,
    result_shape,
    run,
    unbatched_error,
)
from ._args import int_list, parse_data_format
from ._errors import ShapeError

__all__ = ["ConvTranspose"]


class ConvTranspose:
    """A transposed-convolution layer with its weights packed once for repeated calls.

    ``plan(x)`` gives the numbers of ``tconv.conv_transpose(x, weight, bias, ...)`` with the
    same arguments, without re-validating and re-packing the weights on every call (which
    costs about as much as a small layer itself).

    Parameters
    ----------
    weight, bias, stride, padding, output_padding, dilation, groups, data_format
        As for :func:`tconv.conv_transpose`. The weight and bias are copied: later changes to
        the caller's arrays do not affect the plan. ``plan.weight`` and ``plan.bias`` are
        those copies, read-only (the weight is the one copy the compiled plan reads from).

    Examples
    --------
    >>> plan = tconv.ConvTranspose(w, b, stride=2, padding=1)
    >>> y = plan(x)                       # == tconv.conv_transpose(x, w, b, 2, 1)
    >>> plan.output_shape(x.shape)
    """

    def __init__(
        self,
        weight: Any,
        bias: Any = None,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = None,
        dilation: Any = 1,
        groups: int = 1,
        data_format: str = "channels_first",
    ) -> None:
        self._channels_last = parse_data_format(data_format)
        self.data_format = data_format
        # The dtype rules of the functional API (x is not known yet).
        _, w, b = operands(None, weight, bias, has_x=False)
        cl = self._channels_last
        if w.ndim < 3:
            layout = "(*kernel, C_out/groups, C_in)" if cl else "(C_in, C_out/groups, *kernel)"
            raise ShapeError(
                f"weight must have rank >= 3 {layout} (rank 3 for 1-D, 4 for 2-D, 5 for 3-D), "
                f"got shape {w.shape}"
            )
        rank = w.ndim - 2
        self.rank = rank
        self._layer = layer = layer_args(
            rank, stride, padding, output_padding, dilation, groups, None
        )
        self._output_padding_given = output_padding is not None
        self._last_resolved: tuple[tuple, tuple[Any, Any, bool]] | None = None
        self.dtype = w.dtype
        c_in = w.shape[-1] if cl else w.shape[0]
        # Validate the layer once, on the smallest input whose output is not empty.
        probe_sp = [max(0, a) + max(0, b_) + 1 for a, b_ in zip(layer.pad_lo, layer.pad_hi)]
        for d, size in enumerate(probe_sp):
            if size > 2**62:
                raise ShapeError(
                    f"padding crops {layer.pad_lo[d]} + {layer.pad_hi[d]} cells of the result in "
                    f"spatial dimension {d}: only an input of about {size} cells along it would "
                    f"leave any output, more than any array holds; pass the padding you meant "
                    f"(cells cropped per side, e.g. (kernel_size - 1) // 2)"
                )
        probe = (1, *probe_sp, c_in) if cl else (1, c_in, *probe_sp)
        geometry, _ = resolve_call(probe, w.shape, True, layer, cl, None)
        self.out_channels = geometry.out_channels
        self.in_channels = geometry.in_channels
        if b is not None:
            check_bias(b, geometry.out_channels, w.shape, layer.groups)
            b = np.array(b, dtype=self.dtype, copy=True)
            b.setflags(write=False)  # the packed plan holds its own copy: writes would be lost
        self.bias = b
        self._plan = _core.Plan(geometry, aligned(w), b)
        # The core's copy of the weights, read-only: the plan keeps no other.
        self.weight = self._plan.weight
        # What pickle and copy rebuild the plan from (the packed weights are not portable).
        self._init_args = (
            self.weight,
            self.bias,
            layer.stride,
            self._padding_arg(),
            tuple(layer.output_padding)
            if self._output_padding_given and layer.output_padding
            else None,
            layer.dilation,
            layer.groups,
            data_format,
        )

    def _padding_arg(self) -> Any:
        """The padding in a form the constructor takes back: 'same'/'valid' or (lo, hi) pairs."""
        if self._layer.mode != "explicit":
            return self._layer.mode
        return tuple(zip(self._layer.pad_lo, self._layer.pad_hi))

    def __reduce__(self) -> tuple:
        # Rebuilt from the constructor's arguments: the packed weights live in the core and
        # depend on the machine's ISA, so they are packed again where the plan is unpickled.
        return (type(self), self._init_args)

    def _resolve(self, x_shape: tuple, output_size: Any) -> tuple[Any, Any, bool]:
        """(geometry of the batched input, its empty-output marker, whether x was batched)."""
        # The answer depends on the shape alone: the last one is kept for repeated calls.
        last = self._last_resolved
        if output_size is None and last is not None and last[0] == x_shape:
            return last[1]
        resolved = self._resolve_shape(x_shape, output_size)
        if output_size is None:
            self._last_resolved = (tuple(x_shape), resolved)
        return resolved

    def _resolve_shape(self, x_shape: tuple, output_size: Any) -> tuple[Any, Any, bool]:
        rank = self.rank
        if len(x_shape) == rank + 1:
            batched, xb = False, (1, *x_shape)
        elif len(x_shape) == rank + 2:
            batched, xb = True, tuple(x_shape)
        else:
            raise rank_error(tuple(x_shape), self.weight.shape, rank, self._channels_last)
        if output_size is not None and self._output_padding_given:
            raise ValueError(
                "this plan was made with an explicit output_padding; output_size would "
                "choose another one. Make the plan without output_padding to use output_size"
            )
        try:
            geometry, empty = resolve_call(
                xb, self.weight.shape, batched, self._layer, self._channels_last, output_size
            )
        except ShapeError as exc:
            if batched:
                raise
            raise unbatched_error(exc, xb, tuple(x_shape), self._channels_last) from None
        return geometry, empty, batched

    def output_shape(self, x_shape: Any, output_size: Any = None) -> tuple[int, ...]:
        """The shape ``plan(x)`` returns for an input of shape `x_shape` (or ShapeError)."""
        shape = tuple(int_list(x_shape, "x_shape"))
        geometry, empty, batched = self._resolve(shape, output_size)
        y = result_shape(geometry, empty, self._channels_last)
        return y if batched else y[1:]

    def _convert(self, x: Any) -> np.ndarray:
        """x under the dtype rules, in the plan's dtype."""
        x, adopts = convert(x, "x")
        if not adopts and x.dtype.type != self.dtype.type:
            raise TypeError(
                f"x is {x.dtype} but this plan's weights are {self.dtype}; convert it, e.g. "
                f"x.astype(np.{self.dtype.name}), or make a plan with weight.astype(x.dtype)"
            )
        if x.dtype != self.dtype:  # a list, or another byte order: same values
            x = x.astype(self.dtype)
        return x

    def __call__(
        self, x: Any, out: np.ndarray | None = None, output_size: Any = None
    ) -> np.ndarray:
        """Run the layer on `x` (batched or not); `out` as in :func:`tconv.conv_transpose`."""
        x_in = x
        if not (type(x) is np.ndarray and x.dtype is self.dtype and x.ndim):  # else: used as is
            x = self._convert(x)
        geometry, empty, batched = self._resolve(x.shape, output_size)
        converted = () if x is x_in else (("x", x),)
        inputs = (("x", x_in), *converted, ("weight", self.weight), ("bias", self.bias))

        def compute(xa: np.ndarray, y: np.ndarray) -> None:
            self._plan.run(geometry, xa, y)

        xb = x if batched else x[np.newaxis]
        return run(geometry, empty, xb, out, batched, self._channels_last, inputs, compute)

    @property
    def packed_bytes(self) -> int:
        """Bytes of packed weights held for the fast kernels (0 before the first call)."""
        return self._plan.packed_bytes

    def __repr__(self) -> str:
        return (
            f"ConvTranspose(weight shape {self.weight.shape}, {self.dtype}, "
            f"stride={self._layer.stride}, dilation={self._layer.dilation}, "
            f"groups={self._layer.groups}, data_format={self.data_format!r})"
        )
