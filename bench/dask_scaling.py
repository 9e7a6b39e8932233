"""A 3-D volume through a V-Net up layer: in memory vs tconv.dask on 1 and 2 worker processes.

    python bench/dask_scaling.py [--size 96] [--chunk 32] [--workers 1 2] [--repeats 2]
                                 [--kernel 2 --padding 0]

The layer is V-Net's up-convolution (32 -> 16 channels, kernel 2, stride 2, float32) on a
(1, 32, size, size, size) volume; --kernel 4 --padding 1 gives a layer whose blocks need a halo
of their neighbours' cells. Rows:
  in memory      tconv.conv_transpose on numpy arrays, 1 and 2 tconv threads
  numpy -> none  tconv.dask on the same array in blocks, dask's synchronous scheduler in this
                 process (one thread), each block computed and dropped: the cost of blocking
  zarr -> none   tconv.dask from zarr on disk, each block computed on its worker and dropped
                 (one cell of each is gathered: no output I/O)
  zarr -> zarr   tconv.dask from zarr to zarr (uncompressed), the out-of-core pipeline
on a dask.distributed LocalCluster of 1 or 2 worker processes with 1 thread each (tconv's
threads per task: 1). Times are the best of --repeats runs. Memory is the resident set of the
process doing the work (the largest over the workers; Linux /proc/self/status): "idle" before
the run (the bench process before x exists; each worker after a warm-up block), "peak" the
most it held during the runs (VmHWM, reset before them).
Needs the dask extra: pip install "tconv[dask]".
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np

import tconv

MiB = 2**20
C_IN, C_OUT, STRIDE = 32, 16, 2


def _reset_peak_rss() -> int:
    """Restart the peak resident set from the current one (Linux); returns the current."""
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


def _best(f, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def in_memory(x: np.ndarray, w: np.ndarray, kw: dict, repeats: int, idle: int) -> list[tuple]:
    rows = []
    before = tconv.get_num_threads()
    try:
        for threads in (1, 2):
            _reset_peak_rss()
            tconv.set_num_threads(threads)
            seconds = _best(lambda: tconv.conv_transpose(x, w, **kw), repeats)
            rows.append(
                ("in memory", f"{threads} thread{'s' * (threads > 1)}", seconds, idle, _peak_rss())
            )
    finally:
        tconv.set_num_threads(before)
    return rows


def in_blocks(x: np.ndarray, w: np.ndarray, kw: dict, chunk: int, repeats: int, idle: int) -> tuple:
    import dask
    import dask.array as da

    import tconv.dask as tdask

    xd = da.from_array(x, chunks=(1, C_IN, chunk, chunk, chunk))

    def run():
        y = tdask.conv_transpose(xd, w, **kw)
        corners = tuple(slice(None, None, size[0]) for size in y.chunks[2:])
        dask.compute(y[(slice(None), slice(None), *corners)], scheduler="sync")

    tdask.conv_transpose(xd[..., :chunk, :chunk, :chunk], w, **kw).compute(scheduler="sync")
    _reset_peak_rss()
    seconds = _best(run, repeats)
    return ("numpy -> none", "1 thread", seconds, idle, _peak_rss())


def on_cluster(
    workers: int,
    x_path: str,
    out_dir: str,
    w: np.ndarray,
    kw: dict,
    chunk: int,
    memory_limit: str,
    repeats: int,
    plain: dict,
) -> list[tuple]:
    import dask.array as da
    import distributed

    import tconv.dask as tdask

    rows = []
    with distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        memory_limit=memory_limit,
        dashboard_address=None,
    ) as cluster:
        with distributed.Client(cluster) as client:
            xz = da.from_zarr(x_path)
            # Warm-up: imports and first allocations on every worker.
            warm = tdask.conv_transpose(xz[..., :chunk, :chunk, : 2 * chunk * workers], w, **kw)
            client.compute(warm[..., :1, :1, :1]).result()
            label = f"{workers} worker{'s' * (workers > 1)}"

            def to_none():
                y = tdask.conv_transpose(xz, w, **kw)
                corners = tuple(slice(None, None, size[0]) for size in y.chunks[2:])
                client.compute(y[(slice(None), slice(None), *corners)]).result()

            def to_zarr():
                y = tdask.conv_transpose(xz, w, **kw)
                y.to_zarr(os.path.join(out_dir, "y.zarr"), overwrite=True, **plain)

            for name, f in (("zarr -> none", to_none), ("zarr -> zarr", to_zarr)):
                idle = max(client.run(_reset_peak_rss).values())
                seconds = _best(f, repeats)
                rows.append((name, label, seconds, idle, max(client.run(_peak_rss).values())))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=96, help="spatial size of the input cube")
    ap.add_argument("--chunk", type=int, default=32, help="input chunk edge (spatial)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--memory-limit", default="1GiB", help="per worker")
    ap.add_argument("--kernel", type=int, default=2, help="kernel edge (V-Net: 2)")
    ap.add_argument("--padding", type=int, default=0, help="padding (V-Net: 0)")
    args = ap.parse_args()
    import dask.array as da
    import zarr

    # Uncompressed chunks: the figures are about the convolution, not about a codec.
    plain = (
        {"compressors": None} if int(zarr.__version__.split(".")[0]) >= 3 else {"compressor": None}
    )
    n, c = args.size, args.chunk
    idle = _reset_peak_rss()
    rng = np.random.default_rng(0)
    x = rng.random((1, C_IN, n, n, n), dtype=np.float32)
    k = args.kernel
    kw = dict(stride=STRIDE, padding=args.padding)
    w = (rng.standard_normal((C_IN, C_OUT, k, k, k)) / 16).astype(np.float32)
    flops = 2 * C_IN * C_OUT * k**3 * n**3
    m = (n - 1) * STRIDE + k - 2 * args.padding  # output edge
    y_bytes = C_OUT * m**3 * 4
    print(
        f"tconv {tconv.__version__} | ISA {tconv._core.active_isa()} | float32 | "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} | zarr {zarr.__version__}"
    )
    print(
        f"up layer {C_IN} -> {C_OUT} channels, kernel {k}, stride {STRIDE}, padding "
        f"{args.padding}: x "
        f"(1, {C_IN}, {n}, {n}, {n}) {x.nbytes / MiB:.0f} MiB -> y {y_bytes / MiB:.0f} MiB, "
        f"{flops / 1e9:.1f} GFLOP; chunks {c}^3 (blocks {C_IN * c**3 * 4 / MiB:.1f} MiB in, "
        f"{C_OUT * (STRIDE * c) ** 3 * 4 / MiB:.1f} MiB out); worker memory limit "
        f"{args.memory_limit}; best of {args.repeats}"
    )
    rows = in_memory(x, w, kw, args.repeats, idle)
    rows.append(in_blocks(x, w, kw, c, args.repeats, idle))
    tmp = tempfile.mkdtemp(prefix="tconv-dask-bench-")
    try:
        x_path = os.path.join(tmp, "x.zarr")
        da.from_array(x, chunks=(1, C_IN, c, c, c)).to_zarr(x_path, **plain)
        del x
        for workers in args.workers:
            rows += on_cluster(
                workers, x_path, tmp, w, kw, c, args.memory_limit, args.repeats, plain
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"{'pipeline':<14} {'parallelism':<12} {'seconds':>8} {'GFLOP/s':>8} "
        f"{'Mvoxel/s':>9} {'idle MiB':>9} {'peak MiB':>9}"
    )
    for name, label, seconds, idle_rss, peak in rows:
        print(
            f"{name:<14} {label:<12} {seconds:8.2f} {flops / seconds / 1e9:8.1f} "
            f"{m**3 / seconds / 1e6:9.1f} {idle_rss / MiB:9.0f} {peak / MiB:9.0f}"
        )


if __name__ == "__main__":
    main()
