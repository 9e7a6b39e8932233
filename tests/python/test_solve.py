"""solve and mirror: every listed layer verifies through tconv.shapes; mirrors round-trip."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tconv
from tconv import reference, shapes

from conftest import examples


def forward_length(i, k, s, d, lo, hi):
    """Outputs of a forward convolution, by counting the window starts that fit in the padded
    input (independent of the closed form the core uses)."""
    span = d * (k - 1) + 1
    return len(range(0, i + lo + hi - span + 1, s))


def reference_length(i, k, s, d, padding, op):
    """Output length of the reference scatter loop; 0 when it would be empty."""
    try:
        y = reference.conv_transpose(
            np.ones((1, 1, i)), np.ones((1, 1, k)), None, s, padding, op, d
        )
    except tconv.ShapeError as exc:
        assert "the output would have size" in str(exc)
        return 0
    return y.shape[-1]


def tf_forward_length(i, k, s, pad):
    """TensorFlow's forward length: 'SAME' one output per stride started, 'VALID' the windows
    that fit."""
    return -(-i // s) if pad == "SAME" else forward_length(i, k, s, 1, 0, 0)


CONVENTIONS = ["torch", "keras", "onnx", "tf_nn", "jax"]


def shape_of(sol):
    """Feed a Solution's own parameters back through tconv.shapes; the spatial output."""
    p, n, i = sol.params, sol.rank, sol.input_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tconv.BackendWarning)
        if sol.convention == "torch":
            out = shapes.torch(
                (2, 4, *i),
                4,
                3,
                p["kernel_size"],
                p["stride"],
                p["padding"],
                p["output_padding"],
                1,
                p["dilation"],
                dims=n,
            )
            return out[2:]
        if sol.convention == "keras":
            out = shapes.keras(
                (2, *i, 4),
                3,
                p["kernel_size"],
                p["strides"],
                p["padding"],
                p["output_padding"],
                dilation_rate=p["dilation_rate"],
                dims=n,
            )
            return out[1:-1]
        if sol.convention == "onnx":
            out = shapes.onnx(
                (2, 4, *i),
                (4, 3, *p["kernel_shape"]),
                strides=p["strides"],
                pads=p["pads"],
                dilations=p["dilations"],
                output_padding=p["output_padding"],
            )
            return out[2:]
        if sol.convention == "tf_nn":
            out = shapes.tf_nn(
                (2, *i, 4),
                (*p["kernel_size"], 3, 4),
                (2, *p["output_shape"], 3),
                p["strides"],
                p["padding"],
                dilations=p["dilations"],
            )
            return out[1:-1]
        out = shapes.jax(
            (2, *i, 4),
            (*p["kernel_size"], 4, 3),
            p["strides"],
            p["padding"],
            rhs_dilation=p["rhs_dilation"],
            use_consistent_padding=p["use_consistent_padding"],
        )
        return out[1:-1]


@settings(max_examples=examples(40), deadline=None)
@given(
    conv=st.sampled_from(CONVENTIONS),
    i=st.integers(1, 12),
    t=st.integers(1, 40),
    d=st.integers(1, 2),
)
def test_every_solution_verifies(conv, i, t, d):
    sols = tconv.solve(i, t, convention=conv, dilation=d, max_kernel=5, max_stride=3)
    for sol in sols:
        assert tuple(shape_of(sol)) == (t,)
        assert sol.output_size == (t,)
    if not sols:
        assert str(t) in sols.why


@settings(max_examples=examples(15), deadline=None)
@given(
    conv=st.sampled_from(CONVENTIONS),
    i=st.tuples(st.integers(1, 8), st.integers(1, 8)),
    s=st.integers(1, 3),
    k=st.integers(1, 4),
)
def test_per_dimension_sizes_verify(conv, i, s, k):
    t = (i[0] * s, i[1] * s + 1)
    for sol in tconv.solve(i, t, kernel_size=k, convention=conv)[:50]:
        assert tuple(shape_of(sol)) == t


@settings(max_examples=examples(60), deadline=None)
@given(
    i=st.integers(1, 15),
    k=st.integers(1, 6),
    s=st.integers(1, 4),
    d=st.integers(1, 2),
    data=st.data(),
)
def test_known_torch_layer_is_found(i, k, s, d, data):
    p = data.draw(st.integers(0, d * (k - 1)))
    op = data.draw(st.integers(0, max(s, d) - 1))
    t = reference_length(i, k, s, d, p, op)
    if t < 1:
        return
    free = tconv.solve(i, t, dilation=d, max_kernel=6, max_stride=4)
    fixed = tconv.solve(i, t, kernel_size=k, stride=s, dilation=d)
    for sols in (free, fixed):
        assert any(
            x.kernel_size == (k,)
            and x.stride == (s,)
            and x.params["padding"] == p
            and x.params["output_padding"] == op
            for x in sols
        )
        # simplest first: a layer without output_padding comes before any with it
        ops = [x.params["output_padding"] != 0 for x in sols]
        assert ops == sorted(ops)


@settings(max_examples=examples(40), deadline=None)
@given(
    i=st.integers(1, 15),
    k=st.integers(1, 6),
    s=st.integers(1, 4),
    mode=st.sampled_from(["same", "valid"]),
    data=st.data(),
)
def test_known_keras_layer_is_found(i, k, s, mode, data):
    op = data.draw(st.sampled_from([None, *range(s)]))
    t = reference_length(i, k, s, 1, mode, op)
    if t < 1:
        return
    sols = tconv.solve(i, t, kernel_size=k, stride=s, convention="keras")
    assert any(x.params["padding"] == mode and x.params["output_padding"] == op for x in sols)


def test_simplest_solutions_come_first():
    torch_first = tconv.solve(6, 12, in_channels=32, out_channels=3)[0]
    assert torch_first.code() == "nn.ConvTranspose1d(32, 3, kernel_size=2, stride=2)"
    with_kernel = tconv.solve(
        (5, 5), (10, 10), kernel_size=3, stride=2, in_channels=32, out_channels=3
    )
    assert with_kernel[0].code() == (
        "nn.ConvTranspose2d(32, 3, kernel_size=3, stride=2, padding=1, output_padding=1)"
    )
    assert with_kernel[0].output_shape == (None, 3, 10, 10)
    keras = tconv.solve(
        (6, 6), (12, 12), kernel_size=3, stride=2, convention="keras", out_channels=3
    )
    assert keras[0].code() == "layers.Conv2DTranspose(3, 3, strides=2, padding='same')"
    keras11 = tconv.solve(
        (5, 5), (11, 11), kernel_size=3, stride=2, convention="keras", out_channels=3
    )
    assert keras11[0].code() == "layers.Conv2DTranspose(3, 3, strides=2, padding='valid')"
    assert (
        any(
            x.code() == "layers.Conv2DTranspose(3, 3, strides=2, padding='same', output_padding=0)"
            for x in keras11
        )
        is False
    )  # that gives 9, not 11
    assert any(
        x.params["output_padding"] == 1 and x.params["padding"] == "same"
        for x in tconv.solve(5, 10, kernel_size=3, stride=2, convention="keras")
    )


def test_code_in_each_syntax():
    sol = {
        c: tconv.solve(
            (5, 5), (10, 10), kernel_size=3, stride=2, convention=c, in_channels=8, out_channels=4
        )[0]
        for c in CONVENTIONS
    }
    assert (
        sol["onnx"]
        .code()
        .startswith(
            "helper.make_node('ConvTranspose', ['X', 'W'], ['Y'], "
            "kernel_shape=[3, 3], strides=[2, 2]"
        )
    )
    assert (
        "tf.nn.conv2d_transpose(x, filters, output_shape=[tf.shape(x)[0], 10, 10, 4], "
        "strides=2, padding='SAME')" in sol["tf_nn"].code()
    )
    assert (
        sol["jax"]
        .code()
        .startswith("lax.conv_transpose(x, jnp.flip(w, (0, 1)), strides=(2, 2), padding='SAME')")
    )


def test_nothing_reachable_says_why():
    sols = tconv.solve(5, 40, kernel_size=3, stride=2)
    assert sols == []
    assert "7..12" in sols.why and "not 40" in sols.why and "larger stride" in sols.why
    small = tconv.solve(5, 2, kernel_size=3, stride=2)
    assert small == [] and "smaller stride" in small.why


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"convention": "caffe"}, "convention must be one of"),
        ({"kernel_size": 0}, "kernel_size must be >= 1"),
        ({"stride": (1, 2, 3)}, "give one int or 2 ints"),
        ({"max_kernel": 0}, "max_kernel must be an int >= 1"),
    ],
)
def test_bad_arguments_name_the_fix(kwargs, words):
    with pytest.raises((ValueError, TypeError), match=words):
        tconv.solve((5, 5), (10, 10), **kwargs)


# ---- mirror ---------------------------------------------------------------------------------


@settings(max_examples=examples(80), deadline=None)
@given(
    i=st.integers(1, 30),
    k=st.integers(1, 7),
    s=st.integers(1, 4),
    d=st.integers(1, 3),
    data=st.data(),
)
def test_torch_mirror_round_trips(i, k, s, d, data):
    p = data.draw(st.integers(0, 3))
    m = forward_length(i, k, s, d, p, p)
    if m < 1:
        with pytest.raises(tconv.ShapeError, match="more padding"):
            tconv.mirror(i, k, s, p, d)
        return
    sol = tconv.mirror(i, k, s, p, d)
    assert sol.output_size == (i,) and sol.input_size == (m,)
    assert sol.params["padding"] == p and sol.kernel_size == (k,)
    assert tuple(shape_of(sol)) == (i,)


@settings(max_examples=examples(60), deadline=None)
@given(
    conv=st.sampled_from(["keras", "tf_nn", "jax"]),
    i=st.integers(1, 30),
    k=st.integers(1, 7),
    s=st.integers(1, 4),
    same=st.booleans(),
)
def test_string_padding_mirrors_round_trip(conv, i, k, s, same):
    pad = "same" if same else "valid"
    pad = pad if conv == "keras" else pad.upper()
    m = tf_forward_length(i, k, s, pad.upper())
    if m < 1:
        with pytest.raises(tconv.ShapeError):
            tconv.mirror(i, k, s, pad, convention=conv)
        return
    sol = tconv.mirror(i, k, s, pad, convention=conv)
    assert sol.output_size == (i,) and sol.input_size == (m,)
    assert tuple(shape_of(sol)) == (i,)


@settings(max_examples=examples(40), deadline=None)
@given(
    i=st.tuples(st.integers(2, 20), st.integers(2, 20)),
    k=st.integers(1, 5),
    s=st.integers(1, 3),
    lo=st.integers(0, 2),
    hi=st.integers(0, 2),
)
def test_onnx_and_jax_mirrors_with_asymmetric_pads(i, k, s, lo, hi):
    m = [forward_length(v, k, s, 1, lo, hi) for v in i]
    if min(m) < 1:
        return
    onnx = tconv.mirror(i, k, s, [lo, lo, hi, hi], convention="onnx")
    jax = tconv.mirror(i, k, s, [(lo, hi), (lo, hi)], convention="jax")
    for sol in (onnx, jax):
        assert sol.output_size == i and tuple(shape_of(sol)) == i
        # the adjoint of the forward convolution crops what it padded
        assert all(c[0] == lo for c in sol.crop)


def test_mirror_matches_real_torch():
    torch = pytest.importorskip("torch")
    for i, k, s, p, d in [
        (11, 3, 2, 1, 1),
        (28, 4, 2, 1, 1),
        (7, 5, 3, 2, 2),
        (64, 7, 4, 3, 1),
        (13, 2, 3, 0, 3),
    ]:
        x = torch.zeros(1, 2, i)
        y = torch.nn.Conv1d(2, 3, k, s, p, d)(x)
        sol = tconv.mirror(i, k, s, p, d)
        back = torch.nn.ConvTranspose1d(3, 2, k, s, p, sol.params["output_padding"], 1, True, d)(y)
        assert back.shape[-1] == i


def test_mirror_errors_name_the_fix():
    with pytest.raises(ValueError, match="'same' or 'valid'"):
        tconv.mirror(10, 3, 2, "SAME", convention="keras")
    with pytest.raises(ValueError, match="use convention='onnx' or 'jax'"):
        tconv.mirror(10, 3, 2, [(1, 2)], convention="torch")
    with pytest.raises(tconv.ShapeError, match="smaller kernel or more padding"):
        tconv.mirror(2, 5, 1, 0)


@settings(max_examples=examples(30), deadline=None)
@given(
    i=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    t=st.tuples(st.integers(1, 25), st.integers(1, 25)),
    k=st.integers(1, 5),
    s=st.integers(1, 3),
    d=st.integers(1, 2),
)
def test_jax_consistent_padding_solutions_are_the_same_layers(i, t, k, s, d):
    """use_consistent_padding=True spells the same layers: pairs (lo, hi) of the forward
    padding, lo the cells cropped at the start, hi = lo - output_padding for PyTorch's."""
    plain = tconv.solve(i, t, kernel_size=k, stride=s, dilation=d, convention="jax")
    cons = tconv.solve(
        i, t, kernel_size=k, stride=s, dilation=d, convention="jax", use_consistent_padding=True
    )
    assert [c.crop for c in cons] == [c.crop for c in plain]
    for a, b in zip(plain, cons):
        assert b.params["use_consistent_padding"] and not a.params["use_consistent_padding"]
        assert tuple(shape_of(b)) == t
        assert b.code().endswith(a.code().split(")  #")[1])
        assert "use_consistent_padding=True" in b.code()
        assert "use_consistent_padding" not in a.code()
        if isinstance(b.params["padding"], str):
            assert b.params["padding"] == a.params["padding"]
            continue
        span = d * (k - 1)
        for (lo, hi), (before, after), crop in zip(
            b.params["padding"], a.params["padding"], b.crop
        ):
            assert (lo, hi) == (span - before, span - after)
            assert lo == crop[0]
    torch_sols = tconv.solve(i, t, kernel_size=k, stride=s, dilation=d)
    for ts in torch_sols:  # every PyTorch layer has its consistent JAX twin
        p, op = ts.params["padding"], ts.params["output_padding"]
        p, op = (p, p) if isinstance(p, int) else p, (op, op) if isinstance(op, int) else op
        twin = tconv.translate(ts, use_consistent_padding=True)["jax"]
        # the same window: the same start and length (JAX writes an output_padding as a
        # smaller crop at the end)
        assert twin.exact and twin.solution.output_size == ts.output_size
        assert [c[0] for c in twin.solution.crop] == [c[0] for c in ts.crop]
        if not isinstance(twin.solution.params["padding"], str):
            assert tuple(twin.solution.params["padding"]) == tuple(
                (a, a - b) for a, b in zip(p, op)
            )


def test_jax_consistent_padding_in_mirror_and_translate():
    cons = tconv.mirror(10, 3, 2, [(1, 1)], convention="jax", use_consistent_padding=True)
    plain = tconv.mirror(10, 3, 2, [(1, 1)], convention="jax")
    assert cons.params["padding"] == [(1, 0)] and plain.params["padding"] == [(1, 2)]
    assert cons.crop == plain.crop and cons.output_size == (10,)
    # translate follows the source's spelling unless told otherwise
    assert tconv.translate(cons)["jax"].solution is cons
    assert (
        tconv.translate(cons, use_consistent_padding=False)["jax"].solution.params == plain.params
    )
    assert tconv.translate(plain)["jax"].solution is plain
    assert tconv.translate(plain, use_consistent_padding=True)["jax"].solution.params == cons.params


@pytest.mark.parametrize(
    "call",
    [
        lambda: tconv.solve(5, 10, use_consistent_padding=True),
        lambda: tconv.mirror(10, 3, 2, 1, convention="onnx", use_consistent_padding=True),
    ],
)
def test_use_consistent_padding_is_jax_only(call):
    with pytest.raises(ValueError, match=r"argument of JAX's lax\.conv_transpose"):
        call()


def test_use_consistent_padding_must_be_a_bool():
    with pytest.raises(TypeError, match="True or False"):
        tconv.solve(5, 10, convention="jax", use_consistent_padding="yes")
    src = tconv.solve(5, 10)[0]
    with pytest.raises(TypeError, match="True or False"):
        tconv.translate(src, use_consistent_padding=1)
