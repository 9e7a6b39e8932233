"""tconv.dask on dask.distributed: worker processes with a memory limit, and out of core.

One LocalCluster (2 worker processes, 1 thread each) serves both tests: starting it takes
several seconds, hence the `slow` marks.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import assume, given, settings

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import tconv  # noqa: E402
import tconv.dask as tdask  # noqa: E402

from _dask_cases import chunked_layers  # noqa: E402
from conftest import RTOL, assert_close_in_norm  # noqa: E402

MiB = 2**20
MEMORY_LIMIT = 256 * MiB


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit=MEMORY_LIMIT,
        dashboard_address=None,
    ) as cluster:
        with distributed.Client(cluster) as c:
            yield c


def _reset_peak_rss() -> int:
    """Restart this process's peak resident set from the current one; returns the current.

    (getrusage's ru_maxrss cannot do: Linux carries it over from the parent across exec, so a
    worker spawned by a large process starts with that process's peak.)"""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_bytes("VmRSS")


def _peak_rss() -> int:
    return _status_bytes("VmHWM")


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(field)


@pytest.mark.slow
@settings(max_examples=15)
@given(chunked_layers(max_macs=2000))
def test_chunked_call_on_worker_processes_matches_the_in_memory_call(client, case):
    x, w, b, kw = case["x"], case["weight"], case["bias"], case["kwargs"]
    try:
        expected = tconv.conv_transpose(x, w, b, **kw)
    except tconv.ShapeError:
        assume(False)  # refusals are checked on the threaded scheduler
    y = tdask.conv_transpose(da.from_array(x, chunks=case["chunks"]), w, b, **kw)
    assert_close_in_norm(client.compute(y).result(), expected, msg=f"{case['chunks']} {kw}")


@pytest.mark.slow
def test_zarr_to_zarr_through_workers_with_memory_bounded_by_a_few_blocks(client, tmp_path):
    """A V-Net up layer (32 -> 16 channels, kernel 2, stride 2) over a volume 3.3 times the
    memory limit of a worker, from zarr to zarr: each worker's peak resident memory during the
    run exceeds its idle one by a few blocks at most."""
    zarr = pytest.importorskip("zarr")
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux's /proc/self/clear_refs to measure each worker's peak memory")
    n, c = 112, 28
    w = (np.random.default_rng(0).standard_normal((32, 16, 2, 2, 2)) / 16).astype(np.float32)
    x_path, y_path = str(tmp_path / "x.zarr"), str(tmp_path / "y.zarr")
    plain = (
        {"compressors": None} if int(zarr.__version__.split(".")[0]) >= 3 else {"compressor": None}
    )
    x = da.random.default_rng(1).random((1, 32, n, n, n), chunks=(1, 32, c, c, c), dtype=np.float32)
    x.to_zarr(x_path, **plain)
    xz = da.from_zarr(x_path)
    # Warm-up on one block (imports, first allocations), then the baseline of each worker.
    tdask.conv_transpose(xz[..., :c, :c, :c], w, stride=2).to_zarr(
        str(tmp_path / "warm.zarr"), **plain
    )
    pids = client.run(os.getpid)
    before = client.run(_reset_peak_rss)

    y = tdask.conv_transpose(xz, w, stride=2)
    in_block, out_block = 32 * c**3 * 4, 16 * (2 * c) ** 3 * 4
    assert x.nbytes + y.nbytes > 3 * MEMORY_LIMIT
    y.to_zarr(y_path, **plain)

    assert client.run(os.getpid) == pids, "a worker was restarted (out of memory?)"
    after = client.run(_peak_rss)
    bound = 4 * (in_block + out_block) + 64 * MiB
    growth = {addr: after[addr] - before[addr] for addr in pids}
    print(
        f"peak memory per worker: {', '.join(f'{after[a] / MiB:.0f} MiB' for a in pids)}; "
        f"growth {', '.join(f'{g / MiB:.0f} MiB' for g in growth.values())} (bound "
        f"{bound / MiB:.0f} MiB, blocks {in_block / MiB:.1f} + {out_block / MiB:.1f} MiB, "
        f"volume {(x.nbytes + y.nbytes) / MiB:.0f} MiB, limit {MEMORY_LIMIT / MiB:.0f} MiB)"
    )
    assert all(g <= bound for g in growth.values()), (growth, bound)
    assert all(a < MEMORY_LIMIT for a in after.values()), after

    # Right numbers: every output channel's total is sum_c (total of x_c) * (taps of w[c, o]),
    # since kernel 2, stride 2 crops nothing; and one interior block against the in-memory call.
    yz = da.from_zarr(y_path)
    assert yz.shape == (1, 16, 2 * n, 2 * n, 2 * n)
    totals = client.compute(yz.sum(axis=(0, 2, 3, 4), dtype=np.float64)).result()
    x_totals = client.compute(xz.sum(axis=(0, 2, 3, 4), dtype=np.float64)).result()
    want = x_totals @ w.astype(np.float64).sum(axis=(2, 3, 4))
    np.testing.assert_allclose(totals, want, rtol=RTOL[np.dtype(np.float32)])
    region = (slice(None), slice(None), *(slice(c, 2 * c),) * 3)
    out_region = (slice(None), slice(None), *(slice(2 * c, 4 * c),) * 3)
    x_part = np.asarray(zarr.open(x_path, mode="r")[region])
    y_part = np.asarray(zarr.open(y_path, mode="r")[out_region])
    assert_close_in_norm(y_part, tconv.conv_transpose(x_part, w, stride=2))
