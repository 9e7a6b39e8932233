"""translate: equivalent layers give equal arrays, and the refusals' recipes are exact."""

import numpy as np
import pytest

import tconv

from conftest import assert_close


def _keras_numbers(x, w, k, s, op):
    # Keras layout: x (N, L, C_in), w (k, C_out, C_in)
    return tconv.conv_transpose(
        x.transpose(0, 2, 1),
        w.transpose(2, 1, 0),
        stride=s,
        padding="same",
        output_padding=op,
        data_format="channels_last",
    ).transpose(0, 2, 1)


@pytest.mark.parametrize("i, k, s", [(6, 3, 2), (5, 4, 2), (5, 2, 1), (7, 5, 3), (4, 6, 2)])
def test_keras_same_translations_compute_the_same_numbers(i, k, s):
    rng = np.random.default_rng(i * 100 + k * 10 + s)
    x = rng.standard_normal((1, 3, i))
    w = rng.standard_normal((3, 2, k))
    src = tconv.solve(i, i * s, kernel_size=k, stride=s, convention="keras")
    src = next(
        x_ for x_ in src if x_.params["padding"] == "same" and x_.params["output_padding"] is None
    )
    ref = _keras_numbers(x, w, k, s, None)
    tr = tconv.translate(src)
    onnx = tr["onnx"].solution
    assert onnx is not None  # ONNX pads express every crop window
    pads = onnx.params["pads"]
    y = tconv.conv_transpose(
        x, w, stride=s, padding=[(pads[0], pads[1])], output_padding=onnx.params["output_padding"]
    )
    assert_close(y, ref)
    t = tr["torch"]
    if t.exact:
        p = t.solution.params
        y = tconv.conv_transpose(
            x, w, stride=s, padding=p["padding"], output_padding=p["output_padding"]
        )
        assert_close(y, ref)
    else:
        # the recipe (run in PyTorch by test_advice_torch): a layer, then a crop
        lo, _hi, _op = src.crop[0]
        assert t.recipe.startswith("layer = nn.ConvTranspose1d(") and "y = layer(x)[" in t.recipe
        full = tconv.conv_transpose(x, w, stride=s, padding=lo)
        assert_close(full[..., : ref.shape[-1]], ref)
        assert "asymmetric" in t.reason or "same number" in t.reason
    for conv in ("tf_nn", "jax"):
        sol = tr[conv].solution
        assert sol is not None and sol.crop == src.crop
        assert sol.output_size == src.output_size


def test_translate_rejects_non_solutions():
    with pytest.raises(TypeError, match=r"tconv\.solve or tconv\.mirror"):
        tconv.translate("keras")
