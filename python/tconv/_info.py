"""What a bug report needs: `tconv.show_config()`, `tconv info` and `python -m tconv info`."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

__all__ = ["config", "format_config", "show_config"]


def _threadpoolctl_view() -> dict[str, Any] | None:
    """threadpoolctl's own report (tconv's pool first), or None when it is not installed."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    pools = threadpoolctl.threadpool_info()
    pools.sort(key=lambda p: p.get("user_api") != "tconv")
    return {"version": threadpoolctl.__version__, "pools": pools}


def config() -> dict[str, Any]:
    """Everything `show_config` prints, as nested dicts of str, int, list and None (JSON-ready)."""
    import numpy as np

    from . import __version__, _core

    build = _core.build_info()
    return {
        "tconv": {
            "version": __version__,
            "build_type": build["build_type"],
            "compiler": {"id": build["compiler_id"], "version": build["compiler_version"]},
            "pybind11": build["pybind11_version"],
            "extension": _core.__file__,
        },
        "isa": {
            "compiled": list(_core.compiled_isas()),
            "available": list(_core.available_isas()),
            "active": _core.active_isa(),
            "TCONV_MAX_ISA": os.environ.get("TCONV_MAX_ISA"),
        },
        "threads": {
            "num_threads": _core.get_num_threads(),
            "TCONV_NUM_THREADS": os.environ.get("TCONV_NUM_THREADS"),
            "cpu_count": os.cpu_count(),
        },
        "threadpoolctl": _threadpoolctl_view(),
        "numpy": np.__version__,
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": {"system": platform.platform(), "machine": platform.machine()},
    }


def _pool_line(pool: dict[str, Any]) -> str:
    name = pool.get("internal_api") or pool.get("user_api")
    return (
        f"{name} {pool.get('version') or ''} num_threads={pool.get('num_threads')} "
        f"({pool.get('filepath')})"
    ).replace("  ", " ")


def format_config(cfg: dict[str, Any]) -> str:
    """The text `tconv info` prints."""
    t, isa, th = cfg["tconv"], cfg["isa"], cfg["threads"]
    lines = [
        f"tconv:          {t['version']}",
        f"build type:     {t['build_type'] or '(none)'}",
        f"compiler:       {t['compiler']['id']} {t['compiler']['version']}",
        f"pybind11:       {t['pybind11']}",
        f"extension:      {t['extension']}",
        f"ISAs compiled:  {', '.join(isa['compiled'])}",
        f"ISAs available: {', '.join(isa['available'])}",
        f"ISA in use:     {isa['active']}"
        + (f" (TCONV_MAX_ISA={isa['TCONV_MAX_ISA']})" if isa["TCONV_MAX_ISA"] else ""),
        f"threads:        {th['num_threads']} of {th['cpu_count']} CPUs"
        + (f" (TCONV_NUM_THREADS={th['TCONV_NUM_THREADS']})" if th["TCONV_NUM_THREADS"] else ""),
    ]
    tpc = cfg["threadpoolctl"]
    if tpc is None:
        lines.append("threadpoolctl:  not installed")
    else:
        lines.append(f"threadpoolctl:  {tpc['version']}")
        lines += [f"  {_pool_line(p)}" for p in tpc["pools"]]
    py = cfg["python"]
    lines += [
        f"numpy:          {cfg['numpy']}",
        f"python:         {py['version']} ({py['implementation']}, {py['executable']})",
        f"platform:       {cfg['platform']['system']} ({cfg['platform']['machine']})",
    ]
    return "\n".join(lines)


def show_config(mode: str = "stdout") -> dict[str, Any] | None:
    """Print the build and runtime configuration a bug report needs, like numpy.show_config():
    version, build type and compiler, instruction sets compiled in, available and in use,
    threads (and threadpoolctl's view), numpy, Python and platform. mode='dicts' returns it as a
    dict instead (the same as `tconv info --json`)."""
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    cfg = config()
    if mode == "dicts":
        return cfg
    print(format_config(cfg))
    return None
