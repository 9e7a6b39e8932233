"""One object per framework convention: the facts about it that several modules consult.

The shape rules themselves live in the C++ core and tconv.shapes; what is here is how each
framework spells a layer (names, default layout, padding words), so that no module keeps its
own copy or branches on the convention's name to recall them. Modules with per-framework code
(explain's call builders, solve's candidate generators) keep it in tables keyed by `name`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Dialect:
    name: str  # the convention= value
    framework: str  # the framework, as messages and reports name it
    layer: str  # its transposed convolution, as the port report names it
    cli_help: str  # the same, as `tconv <command> <convention> --help` shows it
    channels_first: bool  # default activation layout (N, C, *spatial)
    modes: tuple[str, ...]  # how it spells padding="same"/"valid" ((): numbers only)
    default_padding: Any  # a forward layer's padding when none is given
    list_args: bool  # per-dimension arguments are lists (ONNX attributes) rather than tuples

    def is_channels_first(self, data_format: Any = None) -> bool:
        """The layout of a call with this data_format= (None: the framework's default)."""
        if data_format is None:
            return self.channels_first
        return data_format == "channels_first" or str(data_format).upper().startswith("NC")

    def spatial(self, shape: tuple) -> tuple:
        """The spatial sizes of a full activation shape in the default layout."""
        return tuple(shape[2:]) if self.channels_first else tuple(shape[1:-1])

    def mode_word(self, word: str) -> str:
        """'same'/'valid' in this framework's case (Keras lower, the others upper)."""
        return word.lower() if self.modes == ("same", "valid") else word.upper()


DIALECTS: dict[str, Dialect] = {
    d.name: d
    for d in (
        Dialect(
            "torch",
            "PyTorch",
            "nn.ConvTransposeNd",
            "nn.ConvTranspose1d/2d/3d",
            channels_first=True,
            modes=(),
            default_padding=0,
            list_args=False,
        ),
        Dialect(
            "keras",
            "Keras",
            "layers.ConvNDTranspose",
            "Conv1D/2D/3DTranspose",
            channels_first=False,
            modes=("same", "valid"),
            default_padding="valid",
            list_args=False,
        ),
        Dialect(
            "onnx",
            "ONNX (onnxruntime)",
            "ConvTranspose",
            "ConvTranspose (onnxruntime)",
            channels_first=True,
            modes=(),
            default_padding=0,
            list_args=True,
        ),
        Dialect(
            "tf_nn",
            "tf.nn",
            "tf.nn.conv_transpose",
            "tf.nn.conv_transpose",
            channels_first=False,
            modes=("SAME", "VALID"),
            default_padding="VALID",
            list_args=False,
        ),
        Dialect(
            "jax",
            "JAX",
            "lax.conv_transpose",
            "lax.conv_transpose",
            channels_first=False,
            modes=("SAME", "VALID"),
            default_padding="VALID",
            list_args=False,
        ),
    )
}

CONVENTIONS = tuple(DIALECTS)


def dialect(convention: Any) -> Dialect:
    """The Dialect named by convention=, or a ValueError listing them."""
    if convention not in CONVENTIONS:
        raise ValueError(
            f"convention must be one of {', '.join(map(repr, CONVENTIONS))}, got {convention!r}"
        )
    return DIALECTS[convention]
