"""Number helpers for advice in messages, with bounded work for any input size.

Error messages suggest divisors and factorisations (groups that divide the channels, reshapes of
a flat feature count). The counts come from user input and can be as large as 10**20, so every
helper here does a bounded amount of work and returns examples, not a complete answer, when the
number is too large to factor at once.
"""

from __future__ import annotations

# Trial division stops here: about 5 ms of Python, and exact below 2**32.
TRIAL_LIMIT = 2**16


def iroot(n: int, k: int) -> int:
    """The integer k-th root of n >= 0 (the largest r with r**k <= n)."""
    if n < 2:
        return n
    lo, hi = 1, 1 << (n.bit_length() // k + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if mid**k <= n else (lo, mid)
    return lo


def divisors(n: int) -> list[int]:
    """The divisors of n >= 1, ascending: all of them for n < 2**32, else those below
    TRIAL_LIMIT and their cofactors (the ones a user would pick are among them)."""
    if n < 1:
        return []
    small = [d for d in range(1, min(iroot(n, 2), TRIAL_LIMIT) + 1) if n % d == 0]
    return sorted({*small, *(n // d for d in small)})


def complete(n: int) -> bool:
    """Whether divisors(n) lists every divisor."""
    return iroot(n, 2) <= TRIAL_LIMIT


def near_root_divisor(n: int, k: int, tries: int = 10_000) -> int:
    """A divisor of n near its k-th root (1 if none within `tries` steps below the root)."""
    if n < 2:
        return 1
    root = iroot(n, k)
    for d in range(root, max(root - tries, 1), -1):
        if n % d == 0:
            return d
    return 1
