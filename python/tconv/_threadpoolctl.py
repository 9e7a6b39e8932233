"""threadpoolctl support: `threadpool_limits(1)` caps tconv's pool like BLAS and OpenMP ones.

threadpoolctl is optional; without it this module does nothing.
"""

from __future__ import annotations

import ctypes
from typing import Any


def register() -> None:
    try:
        import threadpoolctl
    except ImportError:
        return
    base: Any = getattr(threadpoolctl, "LibController", None)
    if base is None or not hasattr(threadpoolctl, "register"):
        return  # threadpoolctl < 3.5 has no public controller API

    class TconvController(base):
        user_api = "tconv"
        internal_api = "tconv"
        filename_prefixes = ("_core",)
        check_symbols = (
            "tconv_threadpoolctl_get_num_threads",
            "tconv_threadpoolctl_set_num_threads",
        )

        def get_num_threads(self):
            return self.dynlib.tconv_threadpoolctl_get_num_threads()

        def set_num_threads(self, num_threads):
            fn = self.dynlib.tconv_threadpoolctl_set_num_threads
            fn.argtypes = [ctypes.c_int]
            fn(int(num_threads))

        def get_version(self):
            from . import __version__

            return __version__

    threadpoolctl.register(TconvController)
