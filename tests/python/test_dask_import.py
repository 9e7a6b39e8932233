"""dask stays optional: `import tconv` never loads it, and tconv.dask says what to install."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import tconv


def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # The child imports the same tconv as this process.
    package_root = os.path.dirname(os.path.dirname(tconv.__file__))
    env["PYTHONPATH"] = os.pathsep.join([package_root, env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_tconv_loads_no_dask_distributed_or_zarr():
    proc = _run("""
        import sys
        import numpy as np
        import tconv
        tconv.conv_transpose(np.ones((1, 2, 3)), np.ones((2, 1, 2)), stride=2)
        loaded = sorted(m for m in sys.modules
                        if m.split(".")[0] in ("dask", "distributed", "zarr"))
        assert "tconv" in sys.modules
        print("LOADED", loaded)
        """)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout, proc.stdout


def test_tconv_dask_without_dask_says_how_to_install_it():
    # A None entry in sys.modules makes `import dask` fail as if it were not installed.
    proc = _run("""
        import sys
        sys.modules["dask"] = None
        import tconv
        try:
            import tconv.dask
        except ImportError as exc:
            print("MESSAGE", exc)
        else:
            raise SystemExit("tconv.dask imported without dask")
        """)
    assert proc.returncode == 0, proc.stderr
    assert 'pip install "tconv[dask]"' in proc.stdout, proc.stdout
