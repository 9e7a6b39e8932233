"""Threads, fork and Ctrl-C.

- Many Python threads calling tconv at once get the serial results (the GIL is released only
  around the core call; nothing else is shared).
- The GIL really is released: another Python thread runs during a long call.
- set_num_threads from another thread while calls run changes nothing in the numbers.
- A fork()ed child computes (also when the parent was computing in another thread at fork, or
  packing a plan's weights there).
- A call at a thread count above the CPUs leaves no more threads behind than the CPUs.
- Ctrl-C: a long call stops with KeyboardInterrupt within a bounded piece of work, whatever its
  shape (batched or one image, functional or plan, vector or portable kernels).
"""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import tconv

f32 = np.float32


def problem(seed, dtype=f32):
    rng = np.random.default_rng(seed)
    c_in, c_out = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    x = rng.standard_normal((int(rng.integers(1, 4)), c_in, 7, 6)).astype(dtype)
    w = rng.standard_normal((c_in, c_out, 3, 2)).astype(dtype)
    kw = dict(stride=int(rng.integers(1, 4)), padding=int(rng.integers(0, 2)))
    return x, w, kw


def long_call(target_seconds):
    """A single-image call (so never chunked) that takes about target_seconds here."""
    size = 32
    while True:
        x = np.ones((1, 16, size, size), f32)
        w = np.ones((16, 16, 3, 3), f32)
        t0 = time.perf_counter()
        tconv.conv_transpose(x, w)
        took = time.perf_counter() - t0
        if took >= target_seconds or size >= 2048:
            return x, w, took
        size = int(size * min(2.0, 1.2 * (target_seconds / max(took, 1e-4)) ** 0.5)) + 1


def test_many_threads_give_the_serial_results():
    problems = [problem(s, f32 if s % 2 else np.float64) for s in range(24)]
    serial = [tconv.conv_transpose(x, w, **kw) for x, w, kw in problems]
    results = {}
    errors = []

    def worker(tid):
        try:
            for rep in range(5):
                for i in range(tid, len(problems), 3):
                    x, w, kw = problems[i]
                    results[(tid, rep, i)] = tconv.conv_transpose(x, w, **kw)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t % 3,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 3 * 5 * 8  # (tid, rep, i) keys; 8 threads share 3 tids
    for (_, _, i), y in results.items():
        np.testing.assert_array_equal(y, serial[i])


def test_threads_writing_into_their_own_out():
    x, w, kw = problem(1)
    expected = tconv.conv_transpose(x, w, **kw)
    outs = [np.full(expected.shape, np.nan, f32) for _ in range(6)]
    threads = [
        threading.Thread(target=tconv.conv_transpose, args=(x, w), kwargs=dict(out=o, **kw))
        for o in outs
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for o in outs:
        np.testing.assert_array_equal(o, expected)


def test_many_threads_share_one_plan():
    rng = np.random.default_rng(11)
    w = rng.standard_normal((4, 3, 3, 3)).astype(f32)
    b = rng.standard_normal(3).astype(f32)
    plan = tconv.ConvTranspose(w, b, stride=2, padding=1)  # packs lazily on first use
    inputs = [
        rng.standard_normal((int(rng.integers(1, 4)), 4, 9, 7)).astype(f32) for _ in range(12)
    ]
    serial = [tconv.conv_transpose(x, w, b, stride=2, padding=1) for x in inputs]
    results, errors = [], []
    start = threading.Barrier(6)

    def worker(tid):
        try:
            start.wait()
            for _rep in range(4):
                for i in range(tid % 3, len(inputs), 3):
                    results.append((i, plan(inputs[i])))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert len(results) == 6 * 4 * 4
    for i, y in results:
        np.testing.assert_array_equal(y, serial[i])


def test_the_gil_is_released_during_the_core_call():
    x, w, took = long_call(0.3)
    if took < 0.05:
        pytest.skip("the machine is too fast for a measurable single call")
    span = {}

    def compute():
        span["start"] = time.perf_counter()
        tconv.conv_transpose(x, w)
        span["end"] = time.perf_counter()

    ticks = []
    t = threading.Thread(target=compute)
    t.start()
    while t.is_alive():
        ticks.append(time.perf_counter())
    t.join()
    lo = span["start"] + 0.2 * (span["end"] - span["start"])
    hi = span["end"] - 0.2 * (span["end"] - span["start"])
    inside = sum(lo < s < hi for s in ticks)
    # With the GIL held for the whole call the main thread could not tick inside it at all.
    assert inside > 100, (inside, len(ticks), span)


def test_set_num_threads_from_another_thread_mid_run():
    problems = [problem(s) for s in range(6)]
    expected = [tconv.conv_transpose(x, w, **kw) for x, w, kw in problems]
    stop = threading.Event()
    errors = []

    def toggler():
        n = 0
        while not stop.is_set():
            tconv.set_num_threads(1 + n % 4)
            n += 1
            time.sleep(0.0005)

    def worker():
        try:
            for _ in range(20):
                for (x, w, kw), e in zip(problems, expected):
                    np.testing.assert_array_equal(tconv.conv_transpose(x, w, **kw), e)
        except BaseException as exc:
            errors.append(exc)

    tog = threading.Thread(target=toggler)
    workers = [threading.Thread(target=worker) for _ in range(3)]
    tog.start()
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    tog.join()
    tconv.set_num_threads(0)
    assert not errors, errors[0]


def run_script(code, timeout=120, **kw):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_computes():
    proc = run_script(
        """
        import os, threading, numpy as np, tconv
        rng = np.random.default_rng(0)
        x = rng.standard_normal((4, 8, 40, 40)).astype(np.float32)
        w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
        tconv.set_num_threads(2)
        expected = tconv.conv_transpose(x, w, stride=2)   # the parent has used its threads

        plan = tconv.ConvTranspose(w, stride=2)
        assert np.array_equal(plan(x), expected)   # the plan has packed its weights

        def child():
            ok = np.array_equal(tconv.conv_transpose(x, w, stride=2), expected)
            ok = ok and np.array_equal(plan(x), expected)
            os._exit(0 if ok else 3)

        # 1. fork from an idle parent
        pid = os.fork()
        if pid == 0:
            child()
        assert os.waitpid(pid, 0)[1] == 0, "child 1"

        # 2. fork while another thread of the parent is inside a call
        big = np.ones((16, 16, 96, 96), np.float32)
        wb = np.ones((16, 16, 3, 3), np.float32)
        t = threading.Thread(target=lambda: [tconv.conv_transpose(big, wb) for _ in range(3)])
        t.start()
        pid = os.fork()
        if pid == 0:
            child()
        status = os.waitpid(pid, 0)[1]
        t.join()
        assert status == 0, "child 2: %d" % status
        print("forks ok")
    """,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "forks ok" in proc.stdout


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_runs_a_plan_another_thread_was_packing():
    # Each plan packs its weights on its first call, here in a background thread; the main
    # thread forks meanwhile and the child calls that same plan. A lock held across the
    # packing would be held for good in the child. A hung child is killed by its alarm.
    proc = run_script(
        """
        import os, signal, threading, time, numpy as np, tconv
        rng = np.random.default_rng(0)
        w = rng.standard_normal((256, 256, 2, 2)).astype(np.float32)
        x = rng.standard_normal((1, 256, 3, 3)).astype(np.float32)
        expected = tconv.conv_transpose(x, w, stride=2)
        t0 = time.perf_counter()
        tconv.ConvTranspose(w, stride=2)(x)
        first_call = time.perf_counter() - t0   # packing included
        statuses = []
        for rep in range(64):
            plan = tconv.ConvTranspose(w, stride=2)
            t = threading.Thread(target=plan, args=(x,))
            t.start()
            time.sleep(first_call * (rep % 16) / 32)   # forks spread over the first call
            pid = os.fork()
            if pid == 0:
                signal.alarm(5)
                os._exit(0 if np.array_equal(plan(x), expected) else 3)
            statuses.append(os.waitpid(pid, 0)[1])
            t.join()
            if statuses[-1]:
                break
        print("statuses", statuses)
    """,
        timeout=200,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # 0: the child finished with the right numbers; SIGALRM: it hung.
    assert "statuses [" + ", ".join(["0"] * 64) + "]" in proc.stdout, proc.stdout


@pytest.mark.skipif(
    not os.path.isdir("/proc/self/task") or not hasattr(os, "sched_getaffinity"),
    reason="counts threads in Linux's /proc",
)
def test_a_call_at_64_threads_leaves_at_most_one_thread_per_cpu():
    proc = run_script("""
        import os, numpy as np, tconv
        def threads():
            return len(os.listdir("/proc/self/task"))
        x = np.ones((1, 64, 64, 64), np.float32)
        w = np.ones((64, 64, 3, 3), np.float32)   # 0.3 GFLOP: work enough for 64 threads
        before = threads()
        tconv.set_num_threads(64)
        tconv.conv_transpose(x, w)
        tconv.set_num_threads(0)
        tconv.conv_transpose(x, w)
        print("cpus", len(os.sched_getaffinity(0)), "added", threads() - before)
    """)
    assert proc.returncode == 0, proc.stderr
    words = proc.stdout.split()
    cpus, added = int(words[1]), int(words[3])
    # The caller is one of the threads that compute: at most cpus - 1 workers.
    assert added <= cpus - 1, proc.stdout


SIGINT_SCRIPT = """
    import signal, sys, time, numpy as np, tconv
    # A process started in the background by a non-interactive shell (as CI jobs often are)
    # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tconv.set_num_threads(1)
    batch, scale = int(sys.argv[1]), float(sys.argv[2])
    x1 = np.ones((1, 64, 64, 64), np.float32)
    w = np.ones((64, 64, 5, 5), np.float32)
    t0 = time.perf_counter()
    tconv.conv_transpose(x1, w)
    per_item = time.perf_counter() - t0
    if batch == 0:   # as many items as make the call last about 8 s (times scale)
        batch = max(8, int(scale * 8.0 / per_item))
        x = np.ones((batch, 64, 64, 64), np.float32)
    else:            # one image, about 4 s (times scale): make it bigger
        x = np.ones((1, 64, 64, int(64 * max(1.0, scale * 4.0 / per_item))), np.float32)
    print("per_item", per_item, "ready", flush=True)
    t0 = time.perf_counter()
    try:
        tconv.conv_transpose(x, w)
        print("finished", time.perf_counter() - t0, time.perf_counter(), flush=True)
    except KeyboardInterrupt:
        print("interrupted", time.perf_counter() - t0, time.perf_counter(), flush=True)
    print("after", flush=True)
"""


def run_and_interrupt(arg, delay):
    """Runs the script and sends SIGINT `delay` s into its call. On a loaded machine the signal
    can reach the child only after its call has returned, which tests nothing: then the call is
    made longer and run again. Returns per_item, the child's output, its stderr, its exit code
    and how long after the signal the child reported (perf_counter is one clock system-wide)."""
    scale = 1.0
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(SIGINT_SCRIPT), str(arg), str(scale)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            line = proc.stdout.readline()
            assert "ready" in line, line + proc.stderr.read()
            per_item = float(line.split()[1])
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            sent = time.perf_counter()
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        words = out.split()
        ended = (
            float(words[2])
            if len(words) > 2 and words[0] in ("finished", "interrupted")
            else float("inf")
        )
        if ended > sent:
            return per_item, out, err, proc.returncode, ended - sent
        scale *= 4
    pytest.fail(
        "the call ended before SIGINT reached it, three times over (a loaded machine): " + out
    )


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_a_long_batched_call():
    per_item, out, err, rc, after_signal = run_and_interrupt(0, 0.5)
    assert rc == 0, err
    assert "interrupted" in out, out
    # The call was sized to take ~8 s; the core asks for Ctrl-C every 20 ms of its work.
    assert after_signal < 1.0, (after_signal, per_item)
    assert "after" in out


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_a_single_long_image():
    per_item, out, err, rc, after_signal = run_and_interrupt(1, 0.3)
    assert rc == 0, err
    assert "interrupted" in out and "finished" not in out, out
    # The core asks for Ctrl-C every 20 ms of its work: 1 s leaves room for a loaded machine.
    assert after_signal < 1.0, (after_signal, per_item)


SHAPE_SIGINT_SCRIPT = """
    import signal, sys, time, numpy as np, tconv
    signal.signal(signal.SIGINT, signal.default_int_handler)
    xs, ws, how = eval(sys.argv[1]), eval(sys.argv[2]), sys.argv[3]
    if how == "portable":
        tconv.set_max_isa("portable")
    rng = np.random.default_rng(0)
    w = rng.standard_normal(ws).astype(np.float32)
    if how == "nan_weight":
        w.reshape(-1)[0] = np.nan
    run = tconv.ConvTranspose(w) if how == "plan" else (lambda x: tconv.conv_transpose(x, w))
    scale = float(sys.argv[4])
    # Made long enough to take ~5 s (times scale): grow the batch, or one image's last axis.
    t0 = time.perf_counter()
    run(rng.standard_normal(xs).astype(np.float32))
    grow = max(1, int(scale * 5.0 / (time.perf_counter() - t0)))
    xs = (xs[0] * grow,) + xs[1:] if xs[0] > 1 else xs[:-1] + (xs[-1] * grow,)
    x = rng.standard_normal(xs).astype(np.float32)
    print("shape", "x".join(map(str, xs)), "ready", flush=True)
    t0 = time.perf_counter()
    try:
        run(x)
        print("finished", time.perf_counter() - t0, time.perf_counter(), flush=True)
    except KeyboardInterrupt:
        print("interrupted", time.perf_counter() - t0, time.perf_counter(), flush=True)
    print("after", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(
    "xs, ws, how",
    [
        # A few images, each little work for its time: a tall kernel over a long column. The
        # others are one image, made to last seconds.
        pytest.param((4, 2, 40000, 1), (2, 1, 512, 1), "functional", id="tall_kernel"),
        pytest.param((4, 2, 40000, 1), (2, 1, 512, 1), "plan", id="tall_kernel_plan"),
        pytest.param((1, 32, 128, 128), (32, 32, 3, 3), "portable", id="portable_kernel"),
        pytest.param((1, 32, 128, 128), (32, 32, 3, 3), "nan_weight", id="nan_weight"),
        pytest.param((1, 256, 4000), (256, 256, 64), "functional", id="long_1d_row"),
    ],
)
def test_ctrl_c_is_honoured_within_a_second_whatever_the_shape(xs, ws, how):
    scale = 1.0
    for _ in range(3):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(SHAPE_SIGINT_SCRIPT),
                repr(xs),
                repr(ws),
                how,
                str(scale),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            line = proc.stdout.readline()
            assert "ready" in line, line + proc.stderr.read()
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            sent = time.perf_counter()
            out, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
        words = out.split()
        ended = float(words[2]) if len(words) > 2 else float("inf")
        if ended > sent:
            break
        scale *= 8  # the call ended before the signal arrived: more images
    else:
        pytest.fail("the call ended before SIGINT reached it, three times over: " + out)
    assert proc.returncode == 0, err
    assert "interrupted" in out and "after" in out, out
    assert ended - sent < 1.0, (ended - sent, line)
