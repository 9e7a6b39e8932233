"""Shape functions, solve, mirror, explain, doctor and the command line do bounded work for any
input: huge sizes (2**62, 10**20), zero, negative numbers, bools, odd containers and strings
either answer or raise TypeError/ValueError (ShapeError is one) -- never hang, never anything
else.

The bound is on CPU time (time.process_time, through an ITIMER_PROF alarm that also interrupts
a runaway call): other processes on a loaded machine do not count, unbounded work does. Every
call here takes milliseconds; the bound is generous on purpose.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pathlib
import re
import signal
import time
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tconv
from tconv import shapes
from tconv.cli import main as cli_main

# Seconds of CPU per call: runaway work takes minutes or more. Under the sanitizers
# (tests/sanitize.sh sets ASAN_OPTIONS) the core's instrumented calls run several times slower.
CPU_BOUND = 2.0 * (8 if "ASAN_OPTIONS" in os.environ else 1)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
BIG = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))


class _Runaway(BaseException):
    """Raised by the CPU alarm; a BaseException so no `except Exception` in tconv swallows it."""


def _alarm(signum, frame):
    raise _Runaway(f"more than {CPU_BOUND} s of CPU")


@contextlib.contextmanager
def bounded_cpu(what: str):
    """Fail if the body uses more than CPU_BOUND seconds of CPU (and stop it there)."""
    old = signal.signal(signal.SIGPROF, _alarm)
    signal.setitimer(signal.ITIMER_PROF, CPU_BOUND)
    start = time.process_time()
    try:
        yield
    except _Runaway:
        pytest.fail(f"unbounded work: {what} used more than {CPU_BOUND} s of CPU")
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)
    used = time.process_time() - start
    assert used < CPU_BOUND, f"{what} used {used:.2f} s of CPU"


def call_bounded(fn, *args, **kwargs):
    """fn(*args, **kwargs) within the CPU bound; its result, or the TypeError/ValueError it
    raised (anything else fails the test)."""
    what = f"{getattr(fn, '__name__', fn)}(*{args!r:.200}, **{kwargs!r:.200})"
    with bounded_cpu(what), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            assert str(exc), f"{what} raised {type(exc).__name__} without a message"
            return exc


def run_cli(argv: list[str]) -> tuple[int, str]:
    """tconv's command line in this process: (exit status, stdout + stderr)."""
    out = io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
        bounded_cpu(f"tconv {' '.join(argv)[:300]}"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        try:
            code = cli_main(argv)
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue()


# ---- the reported cases ---------------------------------------------------------------------

KERAS_RANK = (
    'Input 0 of layer "conv2d_transpose" is incompatible with the layer: expected '
    "min_ndim=4, found ndim=2. Full shape received: (None, 99999999999999999999)"
)


@pytest.mark.parametrize(
    ("argv", "status", "words"),
    [
        (["doctor", KERAS_RANK], 0, ["Reshape((", "99999999999999999999"]),
        (
            [
                "explain",
                "torch",
                "--input",
                "5",
                "--kernel",
                "3",
                "--dilation",
                "100000",
            ],
            0,
            ["200005"],
        ),
        (
            [
                "explain",
                "torch",
                "--input",
                "5",
                "--kernel",
                "1001",
                "--stride",
                "1000",
            ],
            0,
            ["5001"],
        ),
        (
            [
                "mirror",
                "2147483647",
                "--kernel",
                "2147483647",
                "--stride",
                "2147483647",
                "--padding",
                "2147483647",
            ],
            0,
            ["nn.ConvTranspose1d", "padding=2147483647"],
        ),
        (
            [
                "solve",
                "2147483647",
                "2147483647",
                "--kernel",
                "2147483647",
                "--stride",
                "2147483647",
                "--dilation",
                "2147483647",
            ],
            None,
            [],
        ),
        (
            [
                "explain",
                "onnx",
                "--input",
                "5",
                "--kernel",
                "2147483647",
                "--strides",
                "2147483647",
                "--dilations",
                "2147483647",
            ],
            None,
            [],
        ),
        (
            [
                "explain",
                "jax",
                "--input",
                "2147483647",
                "--kernel",
                "2147483647",
                "--strides",
                "2147483647",
                "--padding",
                "SAME",
            ],
            None,
            [],
        ),
    ],
)
def test_reported_commands_answer_at_once(argv, status, words):
    code, text = run_cli(argv)
    assert code in (0, 1, 2)
    if status is not None:
        assert code == status, text
    for w in words:
        assert w in text, text


def test_shapes_torch_groups_with_huge_channels():
    err = call_bounded(shapes.torch, (1, 2**62, 5, 5), 2**62, 8, 3, groups=3)
    assert isinstance(err, tconv.ShapeError)
    assert "use groups in [1, 2, 4, 8]" in str(err)  # the common divisors of 2**62 and 8


def test_divisor_advice_for_huge_counts_is_partial_and_says_so():
    err = call_bounded(shapes.torch, (1, 2**62, 5, 5), 2**62, 2**62, 3, groups=3)
    assert "e.g." in str(err) and "quick to find" in str(err)
    d = call_bounded(
        tconv.doctor,
        f"Input channels is not divisible by group. num_input_channels: {10**20} group: 3",
    )
    assert d.recognised and "e.g. one of" in d.fix


@pytest.mark.parametrize("convention", ["torch", "keras", "onnx", "tf_nn", "jax"])
def test_solve_and_mirror_with_huge_layers(convention):
    big = 2**31 - 1
    pad = {"keras": "same", "tf_nn": "SAME", "jax": "SAME"}.get(convention, big)
    sol = call_bounded(tconv.mirror, big, big, big, pad, convention=convention)
    if not isinstance(sol, Exception):
        assert sol.output_size == (big,)
    sols = call_bounded(tconv.solve, 5, 5000, kernel_size=1001, stride=1000, convention=convention)
    assert isinstance(sols, list)
    for s in sols:
        assert s.output_size == (5000,)


def test_solve_bounds_the_search_and_the_list():
    err = call_bounded(tconv.solve, 5, 11, max_kernel=10**6, max_stride=10**6)
    assert isinstance(err, ValueError) and "max_kernel" in str(err)
    sols = call_bounded(
        tconv.solve,
        (5, 6, 7),
        (11, 12, 13),
        convention="onnx",
        max_kernel=32,
        max_stride=32,
    )
    assert 0 < len(sols) <= 1024
    assert all(s.output_size == (11, 12, 13) for s in sols)


@pytest.mark.parametrize("convention", ["torch", "keras", "onnx", "tf_nn", "jax"])
def test_unreachable_size_with_a_wide_dilation_is_explained_at_once(convention):
    # The "why" lists every size each kernel reaches: with dilation 1000 a pad can be any of
    # 999 * (k - 1) + 1 values, which the explanation must not enumerate in pairs.
    sols = call_bounded(tconv.solve, 1, 2**31 - 1, stride=1, dilation=1000, convention=convention)
    assert len(sols) == 0 and "2147483647" in sols.why


def test_translate_finds_the_crop_of_a_huge_layer():
    # The enumerations are pinned to the wanted crop instead of listing every padding.
    src = tconv.solve(5, 4995, kernel_size=1001, stride=1000, convention="torch")[0]
    out = call_bounded(tconv.translate, src)
    assert out["onnx"].exact and out["onnx"].solution.crop == src.crop
    assert out["jax"].exact and out["jax"].solution.crop == src.crop


def test_huge_ints_are_value_errors_in_the_shape_functions():
    # Beyond int64 the shape functions raise an error that is both OverflowError (as the
    # compute API documents) and ValueError (as every other bad argument is).
    for fn, args in [
        (shapes.torch, ((1, 1, 2**62), 1, 1, 3)),
        (shapes.torch, ((1, 1, 5), 1, 1, 2**70)),
    ]:
        with pytest.raises(ValueError) as info:
            fn(*args, stride=4)
        assert isinstance(info.value, OverflowError)


# ---- fuzzing --------------------------------------------------------------------------------

HUGE = [
    0,
    1,
    2,
    3,
    -1,
    -(2**31),
    2**31 - 1,
    2**31,
    2**62,
    2**63 - 1,
    2**63,
    -(2**63),
    2**64,
    10**20,
    -(10**20),
    10**400,
    True,
    False,
]
ints = st.one_of(st.sampled_from(HUGE), st.integers(-3, 40))
odd = st.sampled_from(
    [
        None,
        1.5,
        float("nan"),
        float("inf"),
        "2",
        "same",
        "SAME",
        b"1",
        (),
        [],
        {},
        {1, 2},
        frozenset({3}),
        {0: 1},
        object(),
        range(3),
        2 + 1j,
    ]
)
per_dim = st.one_of(
    ints,
    st.lists(ints, min_size=0, max_size=4).map(tuple),
    st.lists(ints, min_size=1, max_size=3),
    odd,
)
shape = st.one_of(st.lists(st.one_of(ints, st.none()), min_size=0, max_size=6).map(tuple), odd)
pairs = st.lists(st.tuples(ints, ints), min_size=0, max_size=3).map(tuple)
padding = st.one_of(per_dim, pairs, st.sampled_from(["same", "valid", "SAME", "VALID", "bogus"]))
conventions = st.sampled_from(["torch", "keras", "onnx", "tf_nn", "jax", "caffe", 3])


def _kwargs(draw, names, values=per_dim):
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
    return {n: draw(values) for n in chosen}


@st.composite
def shape_calls(draw):
    which = draw(st.sampled_from(["torch", "keras", "onnx", "tf_nn", "jax"]))
    if which == "torch":
        args = (draw(shape), draw(ints), draw(ints), draw(per_dim))
        kw = _kwargs(
            draw,
            [
                "stride",
                "padding",
                "output_padding",
                "groups",
                "dilation",
                "output_size",
                "dims",
            ],
        )
    elif which == "keras":
        args = (draw(shape), draw(ints), draw(per_dim))
        kw = _kwargs(draw, ["strides", "output_padding", "dilation_rate", "dims"])
        kw["padding"] = draw(padding)
    elif which == "onnx":
        args = (draw(shape), draw(shape))
        kw = _kwargs(
            draw,
            ["strides", "pads", "dilations", "output_padding", "output_shape", "group"],
        )
    elif which == "tf_nn":
        args = (draw(shape), draw(shape), draw(shape), draw(per_dim))
        kw = {"padding": draw(padding), **_kwargs(draw, ["dilations"])}
    else:
        args = (draw(shape), draw(shape), draw(per_dim), draw(padding))
        kw = _kwargs(draw, ["rhs_dilation"])
    return getattr(shapes, which), args, kw


@st.composite
def solver_calls(draw):
    which = draw(st.sampled_from(["solve", "mirror", "explain"]))
    if which == "solve":
        kw = _kwargs(draw, ["kernel_size", "stride", "dilation"])
        small = st.one_of(st.integers(-2, 16), st.sampled_from(HUGE))
        kw.update(_kwargs(draw, ["max_kernel", "max_stride"], small))
        kw["convention"] = draw(conventions)
        return tconv.solve, (draw(per_dim), draw(per_dim)), kw
    if which == "mirror":
        kw = {"convention": draw(conventions)}
        return (
            tconv.mirror,
            (draw(per_dim), draw(per_dim), draw(per_dim), draw(padding), draw(per_dim)),
            kw,
        )
    conv = draw(conventions)
    names = {
        "torch": [
            "in_channels",
            "out_channels",
            "kernel_size",
            "stride",
            "padding",
            "output_padding",
            "groups",
            "dilation",
            "output_size",
            "dims",
        ],
        "keras": [
            "filters",
            "kernel_size",
            "strides",
            "padding",
            "output_padding",
            "dilation_rate",
            "dims",
        ],
        "onnx": [
            "weight_shape",
            "kernel_shape",
            "strides",
            "pads",
            "dilations",
            "output_padding",
            "output_shape",
            "group",
        ],
        "tf_nn": [
            "filters_shape",
            "kernel_size",
            "output_shape",
            "strides",
            "padding",
            "dilations",
        ],
        "jax": ["rhs_shape", "kernel_size", "strides", "padding", "rhs_dilation"],
    }
    kw = _kwargs(draw, names.get(conv, ["kernel_size"]))
    return tconv.explain, (conv, draw(shape)), kw


MESSAGES = [
    r["message"]
    for r in json.loads(
        (pathlib.Path(__file__).resolve().parents[1] / "doctor" / "messages.json").read_text()
    )
]
number_text = st.one_of(
    st.sampled_from([str(v) for v in HUGE if not isinstance(v, bool)]),
    st.integers(0, 99).map(str),
    st.just("9" * 5000),
)


@st.composite
def doctor_messages(draw):
    """A real framework message with every number replaced by a drawn one."""
    msg = draw(st.sampled_from(MESSAGES))
    return re.sub(r"\d+", lambda m: draw(number_text), msg)


def _check(call):
    fn, args, kw = call
    result = call_bounded(fn, *args, **kw)
    if fn is tconv.explain and not isinstance(result, Exception):
        assert isinstance(result, str) and len(result) < 100_000
    return result


@FAST
@given(shape_calls())
def test_fuzz_shape_functions(call):
    _check(call)


@FAST
@given(solver_calls())
def test_fuzz_solve_mirror_explain(call):
    _check(call)


@FAST
@given(doctor_messages())
def test_fuzz_doctor(message):
    d = call_bounded(tconv.doctor, message)
    assert not isinstance(d, Exception), d
    assert isinstance(d.recognised, bool) and len(str(d)) < 20_000


def test_doctor_shows_a_number_of_thousands_of_digits_by_its_ends():
    # ONNX Runtime's groups message with a 3000-digit channel count: the diagnosis quotes it
    # in its numbers and its cause; printed, each is its ends and its length.
    huge = "1" + "0" * 2998 + "7"
    message = (
        "[ONNXRuntimeError] : 0 : INVALID_ARGUMENT : Non-zero status code returned while running "
        "ConvTranspose node. Name:'' Status Message: Input channels is not divisible by group. "
        f"num_input_channels: {huge} group: 0"
    )
    d = tconv.doctor(message)
    assert d.recognised and d.numbers["input_channels"] == int(huge)
    text = str(d)
    assert huge not in text and len(text) < 2_000
    assert text.count("10000000...00000007 (3000 digits)") >= 2


NUMBERS = [
    "0",
    "1",
    "3",
    "-1",
    "2147483647",
    "2147483648",
    "99999999999999999999",
    "None",
    "x",
    "5x7",
    "1,2",
    "same",
    "VALID",
]
CLI_OPTIONS = {
    "torch": [
        "--in-channels",
        "--out-channels",
        "--kernel",
        "--stride",
        "--padding",
        "--output-padding",
        "--groups",
        "--dilation",
        "--output-size",
        "--dims",
    ],
    "keras": [
        "--filters",
        "--kernel",
        "--strides",
        "--padding",
        "--output-padding",
        "--dilation-rate",
        "--dims",
    ],
    "onnx": [
        "--weight",
        "--kernel",
        "--strides",
        "--pads",
        "--dilations",
        "--output-padding",
        "--output-shape",
        "--group",
    ],
    "tf_nn": [
        "--filters",
        "--kernel",
        "--output-shape",
        "--strides",
        "--padding",
        "--dilations",
    ],
    "jax": ["--rhs", "--kernel", "--strides", "--padding", "--rhs-dilation"],
}


@st.composite
def cli_argvs(draw):
    numbers = st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=3)
    command = draw(st.sampled_from(["shape", "explain", "solve", "mirror", "doctor"]))
    if command == "doctor":
        return ["doctor", draw(doctor_messages())]
    if command in ("solve", "mirror"):
        argv = [command, *draw(numbers)[: 1 if command == "mirror" else 2]]
        opts = [
            "--kernel",
            "--stride",
            "--dilation",
            "--convention",
            "--padding",
            "--max-kernel",
            "--max-stride",
        ]
        for opt in draw(st.lists(st.sampled_from(opts), unique=True, max_size=4)):
            value = (
                draw(st.sampled_from(["torch", "keras", "onnx", "tf_nn", "jax"]))
                if opt == "--convention"
                else draw(st.sampled_from(NUMBERS))
            )
            if command == "solve" and opt == "--padding":
                continue
            argv += [opt, value]
        return argv
    conv = draw(st.sampled_from(sorted(CLI_OPTIONS)))
    argv = [command, conv, "--input", *draw(numbers)]
    for opt in draw(st.lists(st.sampled_from(CLI_OPTIONS[conv]), unique=True, max_size=5)):
        argv += [opt, *draw(numbers)]
    return argv


@FAST
@given(cli_argvs())
def test_fuzz_command_line(argv):
    code, _ = run_cli(argv)
    assert code in (0, 1, 2), (argv, code)


@pytest.mark.slow
@BIG
@given(st.one_of(shape_calls(), solver_calls()))
def test_fuzz_functions_long(call):
    _check(call)


@pytest.mark.slow
@BIG
@given(cli_argvs())
def test_fuzz_command_line_long(argv):
    code, _ = run_cli(argv)
    assert code in (0, 1, 2), (argv, code)


def test_size_overflow_is_exported_and_is_both_overflow_and_value_error():
    import tconv

    with pytest.raises(tconv.SizeOverflowError) as info:
        tconv.solve(4, 8, kernel_size=3, stride=2**70)
    assert isinstance(info.value, OverflowError) and isinstance(info.value, ValueError)
    assert "does not fit in a 64-bit integer" in str(info.value)
