"""The delicate kernels against slow, hand-written definitions (numpy loops on tiny inputs)."""
import math

import numpy as np
import pytest
import torch

from models import ops

torch.set_num_threads(1)


def naive_upfirdn2d(x, f, up, down, pad, gain):
    """Per-pixel definition: zero-insert, pad (px0, px1, py0, py1), true 2-D convolution, keep every down-th."""
    n, c, h, w = x.shape
    px0, px1, py0, py1 = pad
    u = np.zeros((n, c, h * up, w * up))
    u[:, :, ::up, ::up] = x
    # Pad by the positive parts, then crop the negative ones.
    a0, a1, b0, b1 = (max(v, 0) for v in pad)
    p = np.zeros((n, c, h * up + b0 + b1, w * up + a0 + a1))
    p[:, :, b0:b0 + h * up, a0:a0 + w * up] = u
    p = p[:, :, max(-py0, 0):p.shape[2] - max(-py1, 0), max(-px0, 0):p.shape[3] - max(-px1, 0)]
    fh, fw = f.shape
    oh, ow = p.shape[2] - fh + 1, p.shape[3] - fw + 1
    out = np.zeros((n, c, oh, ow))
    for y in range(oh):
        for xx in range(ow):
            # true convolution: the window meets the filter reversed
            out[:, :, y, xx] = (p[:, :, y:y + fh, xx:xx + fw] * f[::-1, ::-1]).sum(axis=(2, 3))
    return out[:, :, ::down, ::down] * gain


def naive_conv_transpose(x, w):
    """conv_transpose2d stride 2 by its definition: out[o, 2i+a, 2j+b] += x[i, i_y, i_x] * w[o, i, a, b]."""
    n, ci, h, wd = x.shape
    co, _, k, _ = w.shape
    out = np.zeros((n, co, 2 * (h - 1) + k, 2 * (wd - 1) + k))
    for i in range(h):
        for j in range(wd):
            out[:, :, 2 * i:2 * i + k, 2 * j:2 * j + k] += np.einsum("ni,oiab->noab", x[:, :, i, j], w)
    return out


def test_setup_filter_is_normalised_outer_product():
    f = ops.setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4)
    assert torch.allclose(f, torch.tensor([1., 3, 3, 1]).outer(torch.tensor([1., 3, 3, 1])) / 64)
    assert f.sum().item() == pytest.approx(1.0)
    assert ops.setup_filter([1, 3, 3, 1], gain=4).sum().item() == pytest.approx(4.0)


def test_bias_act_hand_values():
    x = torch.tensor([[-1.0, 2.0]])
    b = torch.tensor([0.5, -0.5])
    # -0.5 → lrelu → -0.1 → ×√2 ; 1.5 → ×√2
    out = ops.bias_act(x, b, act="lrelu")
    assert torch.allclose(out, torch.tensor([[-0.1 * math.sqrt(2), 1.5 * math.sqrt(2)]]))
    assert torch.equal(ops.bias_act(x, b), torch.tensor([[-0.5, 1.5]]))  # linear, gain 1
    assert torch.allclose(ops.bias_act(x, b, act="lrelu", gain=1.0), torch.tensor([[-0.1, 1.5]]))
    clamped = ops.bias_act(torch.tensor([[-300.0, 5.0, 300.0]]), act="linear", gain=2.0, clamp=256.0)
    assert torch.equal(clamped, torch.tensor([[-256.0, 10.0, 256.0]]))  # gain first, then clamp


def test_bias_act_broadcasts_on_dim1_of_images():
    x = torch.zeros(2, 3, 4, 4)
    out = ops.bias_act(x, torch.tensor([1.0, 2.0, 3.0]))
    assert torch.equal(out[1, :, 2, 2], torch.tensor([1.0, 2.0, 3.0]))


def test_unknown_activation_names_the_choices():
    with pytest.raises(ValueError, match="lrelu"):
        ops.bias_act(torch.zeros(1, 1), act="swish")


@pytest.mark.parametrize("up,down,pad,gain", [(1, 1, (1, 1, 1, 1), 1), (2, 1, (2, 1, 2, 1), 4),
                                              (1, 2, (1, 1, 1, 1), 1), (2, 1, (1, 1, 0, 2), 4),
                                              (1, 1, (-1, 0, 2, -1), 1)])
def test_upfirdn2d_matches_definition(up, down, pad, gain):
    rng = np.random.RandomState(0)
    x = rng.randn(2, 3, 5, 6)
    f = rng.rand(4, 4)  # asymmetric filter: catches a missing flip
    expected = naive_upfirdn2d(x, f, up, down, pad, gain)
    got = ops.upfirdn2d(torch.from_numpy(x).float(), torch.from_numpy(f).float(), up=up, down=down, padding=pad,
                        gain=gain)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)


def test_upsample2d_doubles_size_and_keeps_constant_images_constant_inside():
    x = torch.ones(1, 3, 8, 8)
    y = ops.upsample2d(x, ops.setup_filter())
    assert y.shape == (1, 3, 16, 16)
    assert torch.allclose(y[:, :, 2:-2, 2:-2], torch.ones(1, 3, 12, 12))


@pytest.mark.parametrize("groups", [1, 3])
def test_conv_up2d_fast_and_reference_agree_with_transposed_conv_definition(groups):
    rng = np.random.RandomState(1)
    x = rng.randn(2, 2 * groups, 5, 4)
    w = rng.randn(4 * groups, 2, 3, 3)
    f = ops.setup_filter()
    xt, wt = torch.from_numpy(x).float(), torch.from_numpy(w).float()
    fast = ops.conv_up2d(xt, wt, f, groups=groups)
    ref = ops.conv_up2d_reference(xt, wt, f, groups=groups)
    assert fast.shape == (2, 4 * groups, 10, 8)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)

    # Independent definition: per-group transposed conv (no weight flip), then blur with padding 1, gain 4.
    parts = []
    for g in range(groups):
        xs = x[:, 2 * g:2 * g + 2]
        ws = w[4 * g:4 * g + 4]
        parts.append(naive_conv_transpose(xs, ws))
    t = np.concatenate(parts, axis=1)
    expected = naive_upfirdn2d(t, f.numpy().astype(np.float64), 1, 1, (1, 1, 1, 1), 4)
    np.testing.assert_allclose(fast.numpy(), expected, atol=1e-4)


def _modconv_inputs(n=3, i=8, o=16, k=3, res=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, i, res, res, generator=g), torch.randn(o, i, k, k, generator=g),
            torch.randn(n, i, generator=g), torch.randn(n, 1, res, res, generator=g))


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv2d_fused_nonfused_and_reference_agree(up, demodulate):
    x, w, s, _ = _modconv_inputs()
    noise = torch.randn(3, 1, 8 * up, 8 * up)
    f = ops.setup_filter()
    kw = dict(noise=noise, up=up, padding=1, resample_filter=f, demodulate=demodulate)
    fused = ops.modulated_conv2d(x, w, s, fused_modconv=True, **kw)
    nonfused = ops.modulated_conv2d(x, w, s, fused_modconv=False, **kw)
    ref = ops.modulated_conv2d_reference(x, w, s, **kw)
    assert fused.shape == (3, 16, 8 * up, 8 * up)
    scale = ref.abs().max()
    assert (fused - nonfused).abs().max() / scale < 1e-5
    assert (fused - ref).abs().max() / scale < 1e-5


def test_demodulation_gives_unit_variance_weights_per_output():
    x, w, s, _ = _modconv_inputs(n=1, res=4)
    # A delta input at the centre reads one kernel per output; its squared norm over (i, k, k) is 1 after demod.
    n_in = w.shape[1]
    out_sq = torch.zeros(w.shape[0])
    for i in range(n_in):
        delta = torch.zeros(1, n_in, 5, 5)
        delta[0, i, 2, 2] = 1
        y = ops.modulated_conv2d(delta, w, s, padding=1)
        out_sq += y[0, :, 1:4, 1:4].square().sum(dim=[1, 2])
    torch.testing.assert_close(out_sq, torch.ones_like(out_sq), atol=1e-5, rtol=1e-5)


def test_fp16_prenormalisation_is_invisible_after_demodulation():
    x, w, s, _ = _modconv_inputs()
    w2, s2 = ops.fp16_prenormalize(w, s)
    assert w2.abs().amax(dim=[1, 2, 3]).mul(math.sqrt(8 * 9)).allclose(torch.ones(16))
    assert s2.abs().amax(dim=1).allclose(torch.ones(3))
    a = ops.modulated_conv2d(x, w, s, padding=1)
    b = ops.modulated_conv2d(x, w2, s2, padding=1)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_conv2d_resample_1x1_up_is_conv_then_upsample():
    x = torch.randn(2, 4, 6, 6)
    w = torch.randn(5, 4, 1, 1)
    f = ops.setup_filter()
    got = ops.conv2d_resample(x, w, f=f, up=2)
    expected = ops.upsample2d(torch.nn.functional.conv2d(x, w), f)
    torch.testing.assert_close(got, expected)


def test_bias_act_half_rounds_once_from_float32():
    x = torch.randn(2, 5, 3, 3).half()
    b = torch.randn(5)
    got = ops.bias_act(x, b, act="lrelu", clamp=1.0)
    assert got.dtype == torch.float16
    expected = ops.bias_act(x.float(), b, act="lrelu", clamp=1.0).half()
    assert torch.equal(got, expected)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("up", [1, 2])
def test_modulated_conv2d_half_stays_half_and_close_to_float(fused, up):
    x, w, s, _ = _modconv_inputs(n=2)
    noise = torch.randn(2, 1, 8 * up, 8 * up)
    f = ops.setup_filter()
    kw = dict(noise=noise, up=up, padding=1, resample_filter=f)
    half = ops.modulated_conv2d(x.half(), w, s, fused_modconv=fused, **kw)
    full = ops.modulated_conv2d(x, w, s, **kw)
    assert half.dtype == torch.float16
    assert (half.float() - full).abs().max() / full.abs().max() < 2e-3


def test_down_conv_halves_the_size_and_blurs_before_striding():
    import torch
    from models import ops

    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8)
    f = ops.setup_filter([1, 3, 3, 1])
    for k in (1, 3):
        w = torch.randn(4, 3, k, k)
        y = ops.conv2d_resample(x, w, f=f, down=2)
        assert y.shape == (2, 4, 4, 4)
        pad = (4 - 2) + (k - 1)
        blurred = ops.upfirdn2d(x, f, padding=((pad + 1) // 2, pad // 2, (pad + 1) // 2, pad // 2))
        assert blurred.shape[-1] == 8 + pad - 3
        torch.testing.assert_close(y, torch.nn.functional.conv2d(blurred, w, stride=2))
    # A constant image stays constant through the (normalised) blur: the 1×1 down-conv just scales it.
    ones = torch.ones(1, 1, 8, 8)
    interior = ops.conv2d_resample(ones, torch.full((1, 1, 1, 1), 2.0), f=f, down=2)[0, 0, 1:-1, 1:-1]
    torch.testing.assert_close(interior, torch.full_like(interior, 2.0))
