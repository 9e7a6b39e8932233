"""Plans survive pickle, copy and deepcopy (dask, joblib and multiprocessing ship them), their
bias is read-only like their weight, and out= refuses array subclasses a raw write would fool."""

from __future__ import annotations

import copy
import multiprocessing
import pickle
import subprocess
import sys

import numpy as np
import pytest

import tconv

# (x shape, weight shape, layer arguments); channels_last weights are (*kernel, C_out/g, C_in)
LAYERS = [
    ((2, 6, 5, 4), (6, 2, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1}),
    (
        (2, 6, 9),
        (6, 1, 4),
        {
            "stride": 3,
            "padding": ((1, 2),),
            "dilation": 2,
            "groups": 3,
            "output_padding": 2,
        },
    ),
    (
        (1, 5, 4, 6),
        (3, 3, 4, 6),
        {"stride": 2, "padding": "same", "data_format": "channels_last"},
    ),
    (
        (1, 7, 6),
        (2, 3, 6),
        {
            "stride": 2,
            "padding": "valid",
            "output_padding": 1,
            "data_format": "channels_last",
        },
    ),
    ((1, 4, 3, 3, 3), (4, 2, 2, 2, 2), {"stride": (1, 2, 3), "dilation": (2, 1, 1)}),
    ((4, 5, 5), (4, 4, 3, 3), {"padding": (0, 1), "groups": 2}),  # unbatched x
]


def _plan(case: int, dtype, with_bias: bool):
    xs, ws, kw = LAYERS[case]
    rng = np.random.default_rng(case)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    cl = kw.get("data_format") == "channels_last"
    c_out = (ws[-2] if cl else ws[1]) * kw.get("groups", 1)
    b = rng.standard_normal(c_out).astype(dtype) if with_bias else None
    return tconv.ConvTranspose(w, b, **kw), x


COPIERS = {
    "pickle": lambda p: pickle.loads(pickle.dumps(p)),
    "pickle-0": lambda p: pickle.loads(pickle.dumps(p, protocol=0)),
    "deepcopy": copy.deepcopy,
    "copy": copy.copy,
}


@pytest.mark.parametrize("how", sorted(COPIERS))
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(LAYERS)))
def test_copied_plan_gives_identical_outputs(case, dtype, with_bias, how):
    plan, x = _plan(case, dtype, with_bias)
    want = plan(x)  # the original is packed before it is copied
    clone = COPIERS[how](plan)
    assert clone is not plan
    assert clone.dtype == plan.dtype and clone.data_format == plan.data_format
    assert np.array_equal(clone.weight, plan.weight)
    assert (clone.bias is None) == (plan.bias is None)
    assert not clone.weight.flags.writeable
    got = clone(x)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want)
    assert clone.output_shape(x.shape) == plan.output_shape(x.shape)
    assert repr(clone) == repr(plan)


def test_copied_plan_keeps_output_padding_rules():
    # An explicit output_padding forbids output_size; None with 'same' lets Keras infer it.
    w = np.ones((2, 3, 3), np.float32)
    fixed = copy.deepcopy(tconv.ConvTranspose(w, stride=2, output_padding=1))
    with pytest.raises(ValueError, match="explicit output_padding"):
        fixed.output_shape((1, 2, 4), output_size=(10,))
    free = pickle.loads(pickle.dumps(tconv.ConvTranspose(w, stride=2, padding=1)))
    assert free.output_shape((1, 2, 4), output_size=(8,)) == (1, 3, 8)
    same = pickle.loads(pickle.dumps(tconv.ConvTranspose(w, stride=2, padding="SAME")))
    assert same.output_shape((1, 2, 4)) == (1, 3, 8)


def test_copies_are_independent():
    plan, _x = _plan(0, np.float32, True)
    clone = copy.deepcopy(plan)
    assert not np.shares_memory(clone.weight, plan.weight)
    assert not np.shares_memory(clone.bias, plan.bias)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plan_maps_over_a_spawn_pool(dtype):
    plan, _ = _plan(2, dtype, True)
    rng = np.random.default_rng(7)
    xs = [rng.standard_normal((1, 5, 4, 6)).astype(dtype) for _ in range(3)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        got = pool.map(plan, xs)
    for x, y in zip(xs, got):
        assert np.array_equal(y, plan(x))


@pytest.mark.parametrize("with_bias", [False, True])
def test_plan_weight_and_bias_are_read_only(with_bias):
    w = np.ones((2, 3, 3), np.float32)
    b = np.arange(3, dtype=np.float32)
    plan = tconv.ConvTranspose(w, b if with_bias else None)
    arrays = [plan.weight] + ([plan.bias] if with_bias else [])
    for a in arrays:
        assert not a.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            a[0] = 5
    if with_bias:
        assert plan.bias.dtype == plan.dtype and plan.bias.shape == (3,)
        # The caller's bias stays theirs: writeable, and its later changes do not reach the plan.
        assert b.flags.writeable and not np.shares_memory(b, plan.bias)
        y = plan(np.ones((1, 2, 4), np.float32))
        b[:] = 100
        assert np.array_equal(plan(np.ones((1, 2, 4), np.float32)), y)


def _masked(shape, dtype):
    return np.ma.masked_array(np.zeros(shape, dtype), mask=np.zeros(shape, bool))


class _Tagged(np.ndarray):
    """A user's subclass with meaning attached to its data."""


OUT_KINDS = {
    "masked": (_masked, "masked array"),
    "subclass": (lambda s, d: np.zeros(s, d).view(_Tagged), "_Tagged"),
}


@pytest.mark.parametrize("kind", sorted(OUT_KINDS))
@pytest.mark.parametrize("via", ["function", "plan", "unbatched"])
def test_out_refuses_masked_and_subclassed_arrays(kind, via):
    make, word = OUT_KINDS[kind]
    x = np.ones((1, 2, 4), np.float32)
    w = np.ones((2, 3, 3), np.float32)
    if via == "unbatched":
        x = x[0]
    shape = tconv.ConvTranspose(w).output_shape(x.shape)
    out = make(shape, np.float32)
    before = np.array(out)
    with pytest.raises(TypeError, match=word) as info:
        if via == "plan":
            tconv.ConvTranspose(w)(x, out=out)
        else:
            tconv.conv_transpose(x, w, out=out)
    assert "out" in str(info.value) and "drop out=" in str(info.value)
    assert np.array_equal(np.asarray(out), before)  # untouched


def test_out_refuses_matrix():
    x = np.ones((1, 1, 1), np.float64)[0]  # unbatched 1-D: the result is (C_out, L), 2-D
    w = np.ones((1, 2, 3), np.float64)
    with pytest.warns(PendingDeprecationWarning):
        out = np.asmatrix(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="matrix"):
        tconv.conv_transpose(x, w, out=out)


def test_out_accepts_memmap_and_plain_views(tmp_path):
    x = np.ones((1, 2, 4), np.float32)
    w = np.ones((2, 3, 3), np.float32)
    want = tconv.conv_transpose(x, w)
    mm = np.memmap(tmp_path / "y.bin", dtype=np.float32, mode="w+", shape=want.shape)
    assert tconv.conv_transpose(x, w, out=mm) is mm
    assert np.array_equal(np.asarray(mm), want)
    masked = _masked(want.shape, np.float32)
    tconv.conv_transpose(x, w, out=masked.data)  # the plain view the message suggests
    assert np.array_equal(masked.data, want)


CORE_OBJECTS = """
import copy, pickle, sys
import numpy as np, tconv
plan = tconv.ConvTranspose(np.ones((2, 3, 3), np.float32))
objects = {"Plan": plan._plan, "Geometry": plan._resolve((1, 2, 5), None)[0]}
for name, obj in objects.items():
    for how in [*(lambda o, p=p: pickle.dumps(o, protocol=p) for p in range(6)), copy.copy]:
        try:
            how(obj)
        except TypeError as exc:
            assert f"tconv._core.{name} cannot be pickled" in str(exc), exc
        else:
            sys.exit(f"{name} was pickled or copied")
print("refused")
"""


def test_core_objects_refuse_pickle_and_copy_with_a_type_error():
    # Pickle protocols 0 and 1 used to abort the interpreter inside pybind11: a child process.
    run = subprocess.run(
        [sys.executable, "-c", CORE_OBJECTS], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "refused"
