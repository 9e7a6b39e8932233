"""Random, mostly invalid, argument combinations through the public API, in a child process.

The only allowed outcomes are a correct result (checked against tconv.reference) or one of the
documented exceptions (TypeError, ValueError and its subclass tconv.ShapeError, OverflowError,
MemoryError) with a message; refusing a layer that the reference computes is a failure too, and
a refused `out=` must be left untouched. The search runs in a
subprocess so that a crash (segfault, abort) fails this test instead of killing the runner.
Run this file directly (python test_random_args.py [examples]) to drive it by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import assert_close, examples

ALLOWED = (TypeError, ValueError, OverflowError, MemoryError)
EXAMPLES = 400  # a run by hand; under pytest the hypothesis profile scales it


@pytest.mark.hypothesis  # a hypothesis search (in the child): CI's thorough stage selects it
def test_random_arguments_never_crash_or_lie():
    count = int(os.environ.get("TCONV_RANDOM_ARGS_EXAMPLES", examples(EXAMPLES)))
    proc = subprocess.run(
        [sys.executable, __file__, str(count)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=os.path.dirname(__file__),
    )
    tail = proc.stdout[-3000:] + "\n" + proc.stderr[-3000:]
    assert proc.returncode == 0, f"child exited with {proc.returncode}:\n{tail}"
    assert f"checked {count} examples" in proc.stdout, tail


# ---- the child process -----------------------------------------------------------------------


def _strategies():
    """A valid layer (`base`), wild values for every field (`wild`), and which fields to
    take from `wild`: about half the examples are valid, the rest break one to three things."""
    from hypothesis import strategies as st

    small = st.integers(-1, 4)
    huge = st.sampled_from([2**62, 2**63 - 1, 2**63, 2**70, -(2**70), -(2**63)])
    odd = st.sampled_from(
        [None, 1.0, 2.5, "2", True, (), (1, 2, 3, 4, 5), np.int64(2), np.float32(1)]
    )
    scalar = st.one_of(small, huge, odd)
    per_dim = st.one_of(scalar, st.lists(st.one_of(small, huge), min_size=1, max_size=4).map(tuple))
    pads = st.one_of(
        st.integers(0, 1),
        st.sampled_from(["same", "valid"]),
        st.tuples(st.integers(0, 1), st.integers(0, 1)).map(lambda p: (p,)),
    )
    base = dict(
        rank=st.integers(1, 3),
        x_extra=st.sampled_from([0, -1]),
        batch=st.integers(0, 2),
        cin_g=st.integers(1, 3),
        c_out_g=st.integers(1, 3),
        w_cin_delta=st.just(0),
        spatial=st.lists(st.integers(1, 4), min_size=3, max_size=3),
        kernel=st.lists(st.integers(1, 3), min_size=3, max_size=3),
        dtype=st.sampled_from(["f4", "f8"]),
        x_layout=st.sampled_from(["c", "f", "neg", "bcast", "unaligned", "readonly", "list"]),
        w_layout=st.sampled_from(["c", "f", "neg", "bcast", "unaligned", "readonly", "list"]),
        bias=st.sampled_from([None, "ok", "list"]),
        stride=st.integers(1, 3),
        dilation=st.integers(1, 2),
        padding=pads,
        output_padding=st.one_of(st.none(), st.integers(0, 1)),
        groups=st.integers(1, 2),
        output_size=st.none(),
        data_format=st.sampled_from(["channels_first", "channels_last"]),
        use_out=st.booleans(),
        rank_fn=st.just(None),
    )
    wild = dict(
        rank=st.integers(1, 3),
        x_extra=st.sampled_from([1, -2, -3, -9]),
        batch=st.integers(0, 2),
        cin_g=st.integers(0, 3),
        c_out_g=st.integers(0, 3),
        w_cin_delta=st.sampled_from([1, -1]),
        spatial=st.lists(st.integers(0, 4), min_size=3, max_size=3),
        kernel=st.lists(st.integers(0, 3), min_size=3, max_size=3),
        dtype=st.sampled_from([">f8", "f2", "i4", "?", "c8", "O", "f4/f8", "f8/f4"]),
        x_layout=st.sampled_from(["list", "bcast"]),
        w_layout=st.sampled_from(["list", "bcast"]),
        bias=st.sampled_from(["long", "2d", "f8", "list"]),
        stride=per_dim,
        dilation=per_dim,
        padding=st.one_of(
            per_dim,
            st.sampled_from(["SAME", "full"]),
            st.lists(st.tuples(small, small), min_size=1, max_size=3).map(tuple),
        ),
        output_padding=per_dim,
        groups=scalar,
        output_size=st.lists(st.one_of(st.integers(0, 12), huge), min_size=1, max_size=4).map(
            tuple
        ),
        data_format=st.sampled_from(["NHWC", "channels_middle", None]),
        use_out=st.booleans(),
        rank_fn=st.sampled_from([1, 2, 3]),
    )
    fields = sorted(base)
    broken = st.one_of(st.just([]), st.lists(st.sampled_from(fields), min_size=1, max_size=3))
    return st.fixed_dictionaries(base), st.fixed_dictionaries(wild), broken


def _array(shape, dtype, layout, rng):
    a = rng.standard_normal(shape).astype(np.float64)
    if dtype == "O":
        a = a.astype(object)
    else:
        a = a.astype(dtype)
    if layout == "f":
        return np.asfortranarray(a)
    if layout == "neg":
        return a[(slice(None, None, -1),) * a.ndim].copy()[(slice(None, None, -1),) * a.ndim]
    if layout == "bcast" and a.ndim:
        return np.broadcast_to(a[:1], a.shape) if a.shape[0] else a
    if layout == "unaligned" and a.dtype != object and a.size:
        raw = bytearray(a.nbytes + 1)
        u = np.frombuffer(raw, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
        u[...] = a
        return u
    if layout == "readonly":
        a.flags.writeable = False
        return a
    if layout == "list" and a.dtype != object:
        return a.tolist()
    return a


def _check_one(case, tconv, reference, seed):
    rng = np.random.default_rng(seed)
    rank = case["rank"]
    cl = case["data_format"] == "channels_last"
    sp = case["spatial"][:rank]
    k = case["kernel"][:rank]
    groups_guess = (
        case["groups"] if isinstance(case["groups"], int) and 1 <= case["groups"] <= 3 else 1
    )
    c_in, c_out_g = case["cin_g"] * groups_guess, case["c_out_g"]
    x_dtype, _, w_dtype = case["dtype"].partition("/")
    w_dtype = w_dtype or x_dtype  # "f4/f8": mixed precision
    x_shape = [case["batch"], *sp, c_in] if cl else [case["batch"], c_in, *sp]
    extra = case["x_extra"]
    if extra < 0:
        x_shape = x_shape[-extra:] if -extra <= len(x_shape) else []
    elif extra > 0:
        x_shape = [2] + x_shape
    w_cin = max(0, c_in + case["w_cin_delta"])
    w_shape = [*k, c_out_g, w_cin] if cl else [w_cin, c_out_g, *k]
    x = _array(tuple(x_shape), x_dtype, case["x_layout"], rng)
    w = _array(tuple(w_shape), w_dtype, case["w_layout"], rng)
    c_out = c_out_g * groups_guess
    bias = {
        None: None,
        "ok": rng.standard_normal(c_out).astype(np.float32 if x_dtype == "f4" else np.float64),
        "long": np.ones(c_out + 1),
        "list": [0.5] * c_out,
        "2d": np.ones((c_out, 1)),
        "f8": np.ones(c_out),
    }[case["bias"]]
    kw = dict(
        stride=case["stride"],
        padding=case["padding"],
        output_padding=case["output_padding"],
        dilation=case["dilation"],
        groups=case["groups"],
    )
    fn = {
        None: tconv.conv_transpose,
        1: tconv.conv_transpose1d,
        2: tconv.conv_transpose2d,
        3: tconv.conv_transpose3d,
    }[case["rank_fn"]]
    call = dict(output_size=case["output_size"], data_format=case["data_format"])
    try:
        y = fn(x, w, bias, **kw, **call)
    except ALLOWED as exc:
        assert str(exc), f"{type(exc).__name__} without a message"
        mixed = (
            len(
                {
                    a.dtype.newbyteorder("=")
                    for a in (x, w, bias)
                    if isinstance(a, np.ndarray) and a.ndim
                }
            )
            > 1
        )
        if case["rank_fn"] is None and not mixed:
            # Refusing what the definition computes would be a false alarm (mixed precisions
            # are refused by design; the reference computes them in float64).
            try:
                reference.conv_transpose(x, w, bias, **kw, **call)
            except Exception:
                pass
            else:
                raise AssertionError(f"refused a layer the reference computes: {exc!r}")
        return "refused"
    # A result: it must be right.
    assert isinstance(y, np.ndarray) and y.flags.c_contiguous
    assert y.dtype in (np.float32, np.float64)

    def f64(a):
        return None if a is None else np.array(a, dtype=np.float64)

    expected = reference.conv_transpose(f64(x), f64(w), f64(bias), **kw, **call)
    assert y.shape == expected.shape, (y.shape, expected.shape)
    assert_close(y, expected)
    if case["use_out"]:
        out = np.full(y.shape, np.nan, y.dtype)
        assert fn(x, w, bias, **kw, **call, out=out) is out
        np.testing.assert_array_equal(out, y)
        wrong = np.full(y.shape + (1,), 7.0, y.dtype)
        try:
            fn(x, w, bias, **kw, **call, out=wrong)
        except ValueError:
            pass
        else:
            raise AssertionError("an out of the wrong shape was accepted")
        assert (wrong == 7.0).all(), "a refused out was written to"
    return "computed"


def _main(examples):
    import warnings

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    import tconv
    from tconv import reference

    warnings.simplefilter("error")  # as the test suite runs: a warning is a failure
    counts = {"refused": 0, "computed": 0}

    base, wild, broken = _strategies()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(base, wild, broken, st.integers(0, 2**32 - 1))
    def check(good, bad, fields, seed):
        case = {**good, **{f: bad[f] for f in fields}}
        print(case, seed, file=sys.stderr, flush=True)  # the last line names a crash's input
        counts[_check_one(case, tconv, reference, seed)] += 1

    check()
    total = counts["refused"] + counts["computed"]
    print(
        f"checked {examples} examples ({counts['computed']} computed, "
        f"{counts['refused']} refused; {total} calls)"
    )


if __name__ == "__main__":
    _main(int(sys.argv[1]) if len(sys.argv) > 1 else EXAMPLES)
