"""Threads and instruction sets of the compiled core."""

from __future__ import annotations

from . import _core
from ._args import as_int

__all__ = ["available_isas", "get_num_threads", "set_max_isa", "set_num_threads"]


def set_num_threads(n: int) -> None:
    """Use `n` threads for later calls (n <= 0: the default, TCONV_NUM_THREADS or all CPUs).

    A call never runs on more threads than the CPUs this process may use
    (``os.sched_getaffinity``): a larger `n` is accepted and means all of them."""
    _core.set_num_threads(max(-1, min(as_int(n, "n"), 1024)))


def get_num_threads() -> int:
    """The number of threads later calls will use."""
    return _core.get_num_threads()


def available_isas() -> list[str]:
    """Instruction sets with kernels this CPU can run, best first (always ends with 'portable')."""
    return list(_core.available_isas())


def set_max_isa(name: str) -> None:
    """Use at most this instruction set from now on ('avx512', 'avx2', 'neon', 'portable');
    TCONV_MAX_ISA in the environment caps it the same way at start-up. 'avx2' and 'neon' both
    name the vector kernels of whichever CPU this is (x86-64 or AArch64); 'avx512' is above
    them."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str such as 'portable', got {type(name).__name__}")
    _core.set_max_isa(name)
