"""Command line: ``tconv <command> ...`` (also ``python -m tconv``)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    import numpy as np

    import tconv
    from tconv import reference

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 8, 5, 5)).astype(np.float32)
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    print("ConvTranspose2d(8, 4, kernel_size=3, stride=2, padding=1, output_padding=1) on x of shape (1, 8, 5, 5)")
    print("  output length per spatial dim = (in - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1")
    print("                                = (5 - 1)*2 - 2*1 + 1*(3 - 1) + 1 + 1 = 10")
    y = tconv.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)
    print(f"  tconv.conv_transpose2d -> shape {y.shape}, dtype {y.dtype}")
    ref = reference.conv_transpose(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                                   stride=2, padding=1, output_padding=1)
    err = float(np.max(np.abs(y - ref)))
    print(f"  max |tconv - naive reference| = {err:.2e}")
    print()
    print("Keras Conv2DTranspose(4, 3, strides=2, padding='same') on a 5x5 input (channels_last)")
    xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    wl = np.ascontiguousarray(w.transpose(2, 3, 1, 0))
    for op in (None, 0, 1):
        yl = tconv.conv_transpose2d(xl, wl, stride=2, padding="same", output_padding=op,
                                    data_format="channels_last")
        print(f"  output_padding={op!s:<4} -> {yl.shape[1]}x{yl.shape[2]}")
    return 0 if err < 1e-4 else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tconv",
        description="Transposed convolution: shapes in every framework's dialect, and the op itself.",
    )
    sub = parser.add_subparsers(dest="command", metavar="command")
    demo = sub.add_parser("demo", help="compute a transposed convolution and show its shape arithmetic")
    demo.set_defaults(func=_demo)
    bench = sub.add_parser("bench", help="time the suite of real layers against every installed peer",
                           add_help=False)
    bench.set_defaults(func=None, bench=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:
        from ._bench import main as bench_main  # its own options, parsed there

        return bench_main(argv[1:])
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return int(args.func(args) or 0)
