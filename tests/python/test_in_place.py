"""Small inputs are read in place: the kernels skip the taps that fall past the input's borders
instead of reading a zero-haloed copy. Skipping must be exact (results equal the reference) and
must never touch memory outside x: here x fills whole pages with inaccessible pages on both
sides, so a single read past either end kills the process (run in a child, so that it fails
the test instead of the test run).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from conftest import RTOL

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="uses mmap and mprotect through ctypes"
)

RTOL_BY_NAME = {dt.name: tol for dt, tol in RTOL.items()}  # the table, for the child
CHILD = textwrap.dedent(r"""
    import ctypes, mmap, sys
    import numpy as np
    import tconv
    from tconv import _core, reference

    PAGE = mmap.PAGESIZE
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    keep = []

    def fenced(a):
        # A copy of `a` that fills whole pages, between two pages that cannot be read.
        assert a.nbytes % PAGE == 0, a.nbytes
        m = mmap.mmap(-1, a.nbytes + 2 * PAGE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(m))
        for off in (0, a.nbytes + PAGE):
            if libc.mprotect(base + off, PAGE, 0) != 0:
                raise OSError(ctypes.get_errno(), "mprotect")
        out = np.frombuffer(m, dtype=a.dtype, count=a.size, offset=PAGE).reshape(a.shape)
        out[...] = a
        keep.append(m)
        return out

    failures = []
    rng = np.random.default_rng(0)
    cases = [
        # (N, C_in, spatial, C_out, kernel, stride, padding, dilation, output_padding)
        (1, 16, (8, 8), 40, 4, 2, 1, 1, 0),      # DCGAN-like: one tap off each border
        (1, 16, (8, 8), 24, 5, 1, 4, 1, 0),      # every row has taps off both borders
        (1, 64, (4, 4), 33, 3, 3, 0, 2, 1),      # dilation, output padding
        (2, 32, (4, 8), 17, (3, 4), 2, (2, 1), 1, 1),
        (1, 16, (8, 8), 1, 9, 3, 4, 1, 2),       # FSRCNN-like: tiny C_out
        (1, 32, (8, 4), 3, 4, 2, 1, 1, 0),       # RGB head
        (1, 128, (8,), 64, 16, 8, 4, 1, 0),      # 1-D, HiFi-GAN-like
        (1, 256, (4,), 2, 7, 2, 6, 1, 1),
    ]
    for case in cases:
        n, cin, sp, cout, k, s, p, d, op = case
        # The reference loop is the costly part: once per case, for every ISA, dtype, layout.
        x = rng.standard_normal((n, cin, *sp))
        w = rng.standard_normal((cin, cout, *([k] * len(sp) if isinstance(k, int) else k)))
        b = rng.standard_normal(cout)
        kw = dict(stride=s, padding=p, dilation=d, output_padding=op)
        want = reference.conv_transpose(x, w, b, **kw)
        for isa in tconv.available_isas():
            tconv.set_max_isa(isa)
            for dtype in (np.float32, np.float64):
                cl_options = (False, True) if cout > 4 else (False,)
                for channels_last in cl_options:
                    if channels_last:
                        xc = fenced(np.ascontiguousarray(np.moveaxis(x, 1, -1)).astype(dtype))
                        wc = np.ascontiguousarray(
                            np.moveaxis(w, (0, 1), (-1, -2))).astype(dtype)
                        got = np.moveaxis(tconv.conv_transpose(
                            xc, wc, b.astype(dtype), data_format="channels_last", **kw), -1, 1)
                    else:
                        xf = fenced(x.astype(dtype))
                        got = tconv.conv_transpose(xf, w.astype(dtype), b.astype(dtype), **kw)
                    tol = RTOL[np.dtype(dtype).name]
                    err = np.abs(got - want).max() / np.abs(want).max()
                    scratch = _core.last_call_memory()["scratch_bytes"]
                    if not err < tol:
                        failures.append((isa, dtype.__name__, case, channels_last, err))
                    print(isa, dtype.__name__, case, channels_last, err, scratch)
    print("FAILURES", failures)
    sys.exit(1 if failures else 0)
""")


def test_small_inputs_read_in_place_exactly_and_within_bounds():
    proc = subprocess.run(
        [sys.executable, "-c", f"RTOL = {RTOL_BY_NAME!r}\n" + CHILD],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    assert "FAILURES []" in proc.stdout
