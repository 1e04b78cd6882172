"""Numerically delicate primitives of the StyleGAN2 generator, kept apart from the architecture.

Semantics follow stylegan2-ada-pytorch (reference §2.2, §2.6, §2.7) so that official weights render the same
pixels. Each fast path has a slow, obviously correct twin (`*_reference`) that tests compare against.

Conventions:
- tensors are NCHW;
- `padding` for `upfirdn2d` is (x_before, x_after, y_before, y_after); negative values crop;
- a "true convolution" flips the kernel; `torch.nn.functional.conv2d` is a correlation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

LRELU_ALPHA = 0.2


# ---------------------------------------------------------------------------------------------------------------
# bias + activation + gain + clamp


@dataclass(frozen=True)
class Activation:
    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    default_gain: float


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation("linear", lambda x: x, 1.0),
    "relu": Activation("relu", F.relu, math.sqrt(2)),
    # The alpha 0.2 and gain sqrt(2) are fixed by the trained weights: other values change every pixel.
    "lrelu": Activation("lrelu", lambda x: F.leaky_relu(x, LRELU_ALPHA), math.sqrt(2)),
    "tanh": Activation("tanh", torch.tanh, 1.0),
    "sigmoid": Activation("sigmoid", torch.sigmoid, 1.0),
}


def activation_spec(name: str) -> Activation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; use one of {sorted(ACTIVATIONS)}") from None


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, dim: int = 1, act: str = "linear",
             gain: float | None = None, clamp: float | None = None) -> torch.Tensor:
    """x + b (broadcast along `dim`) → activation → × gain → clamp to ±clamp.

    Half inputs are computed in float32 and rounded once at the end, as NVIDIA's CUDA kernel does (its pure-PyTorch
    fallback rounds after every step instead; the kernel is what GPU users of official code get).
    """
    if x.dtype == torch.float16:
        b = None if b is None else b.float()
        return bias_act(x.float(), b, dim=dim, act=act, gain=gain, clamp=clamp).half()
    spec = activation_spec(act)
    if b is not None:
        assert b.ndim == 1 and b.shape[0] == x.shape[dim], (tuple(b.shape), tuple(x.shape), dim)
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.reshape(shape)
    x = spec.fn(x)
    gain = spec.default_gain if gain is None else float(gain)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


# ---------------------------------------------------------------------------------------------------------------
# FIR resampling


def setup_filter(taps: Sequence[float] = (1, 3, 3, 1), gain: float = 1.0, device=None) -> torch.Tensor:
    """Normalised 2-D FIR filter: outer product of the 1-D taps, divided by its sum, times `gain`.

    ADA-PT keeps filters with fewer than 8 taps non-separable (a 2-D buffer), which is what its files store.
    """
    f = torch.as_tensor(list(taps), dtype=torch.float32, device=device)
    assert f.ndim == 1 and f.numel() > 0, "filter taps must be a non-empty 1-D sequence"
    f = torch.outer(f, f)
    f = f / f.sum()
    return f * gain


def _parse_padding(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = tuple(int(p) for p in padding)
    if len(padding) == 2:
        px, py = padding
        return px, px, py, py
    assert len(padding) == 4, f"padding must be an int, (px, py) or (px0, px1, py0, py1), got {padding}"
    return padding  # type: ignore[return-value]


def zero_insert(x: torch.Tensor, up: int) -> torch.Tensor:
    """Upsample by inserting (up-1) zeros after every sample along H and W: [N,C,H,W] → [N,C,H·up,W·up]."""
    if up == 1:
        return x
    n, c, h, w = x.shape
    x = x.reshape(n, c, h, 1, w, 1)
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
    return x.reshape(n, c, h * up, w * up)


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int = 1, down: int = 1, padding: int | Sequence[int] = 0,
              flip_filter: bool = False, gain: float = 1.0) -> torch.Tensor:
    """Upsample (zero insertion), pad, FIR-filter (true convolution), downsample. Per channel.

    The output size along x is (W·up + px0 + px1 − fw) // down + 1.
    """
    assert x.ndim == 4 and f.ndim == 2, (tuple(x.shape), tuple(f.shape))
    px0, px1, py0, py1 = _parse_padding(padding)
    x = zero_insert(x, up)
    # F.pad crops on negative values, which is what a negative padding means here.
    x = F.pad(x, [px0, px1, py0, py1])
    # 2-D filter gain scales as gain^(ndim/2) = gain for a 2-D filter.
    f = (f * gain).to(x.dtype)
    if not flip_filter:
        f = f.flip([0, 1])
    channels = x.shape[1]
    x = F.conv2d(x, f[None, None].repeat(channels, 1, 1, 1), groups=channels)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """FIR upsampling of the skip-architecture image: [N,C,H,W] → [N,C,H·up,W·up], DC gain preserved."""
    fh, fw = f.shape
    pad_x = ((fw + up - 1) // 2, (fw - up) // 2)
    pad_y = ((fh + up - 1) // 2, (fh - up) // 2)
    return upfirdn2d(x, f, up=up, padding=(*pad_x, *pad_y), gain=up * up)


# ---------------------------------------------------------------------------------------------------------------
# 2x up-sampling 3x3 convolution (every conv0 of the synthesis network)


def _transpose_grouped_weight(w: torch.Tensor, groups: int) -> torch.Tensor:
    """[G·O, I, k, k] (conv2d layout) → [G·I, O, k, k] (conv_transpose2d layout), per group, no spatial flip."""
    go, i, kh, kw = w.shape
    o = go // groups
    w = w.reshape(groups, o, i, kh, kw).transpose(1, 2)
    return w.reshape(groups * i, o, kh, kw)


def conv_up2d(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """Fast 2× up-conv: stride-2 transposed convolution, then FIR blur (pad 1, gain 4). [N,I,H,W] → [N,O,2H,2W].

    For a 3×3 kernel the transposed conv gives (2H+1)×(2W+1); the 4-tap blur with padding 1 brings it to 2H×2W.
    The padding below is derived for any odd kernel k and filter size fw: ADA-PT's (k−1)/(k−up) bookkeeping.
    """
    kh, kw = w.shape[2], w.shape[3]
    fh, fw = f.shape
    up = 2
    # The reference's padding (see conv_up2d_reference) minus the k−1 before / k−up after the transpose produces.
    px0 = (fw + up - 1) // 2 + kw // 2 - (kw - 1)
    px1 = (fw - up) // 2 + kw // 2 - (kw - up)
    py0 = (fh + up - 1) // 2 + kh // 2 - (kh - 1)
    py1 = (fh - up) // 2 + kh // 2 - (kh - up)
    x = F.conv_transpose2d(x, _transpose_grouped_weight(w, groups), stride=up, groups=groups)
    return upfirdn2d(x, f, padding=(px0, px1, py0, py1), gain=up * up)


def conv_up2d_reference(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """Slow twin of `conv_up2d`: zero-insert, pad once, then two 'valid' true convolutions (w, then the blur).

    The combined kernel has k + fw − 1 taps, so a 2H output needs k + fw − 2 zeros of padding: ADA-PT puts
    (fw+1)//2 + k//2 before and (fw−2)//2 + k//2 after (3 and 2 for k=3, fw=4).
    """
    kh, kw = w.shape[2], w.shape[3]
    fh, fw = f.shape
    x = zero_insert(x, 2)
    x = F.pad(x, [(fw + 1) // 2 + kw // 2, (fw - 2) // 2 + kw // 2, (fh + 1) // 2 + kh // 2, (fh - 2) // 2 + kh // 2])
    x = F.conv2d(x, w.flip([2, 3]), groups=groups)  # correlation with the flipped kernel = true convolution
    return upfirdn2d(x, f, gain=4)


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1,
                    down: int = 1, padding: int = 0, groups: int = 1) -> torch.Tensor:
    """Convolution with optional 2× FIR up- or down-sampling: the subset of ADA-PT's conv2d_resample that the
    generator (up) and the training discriminator (down) use.

    up=down=1: plain correlation with w and symmetric `padding` (ADA-PT flip_weight=True).
    up=2, k>1: `conv_up2d` (padding must be k//2). up=2, k=1: 1×1 conv, then `upsample2d` (resnet skip).
    down=2: FIR blur padded so that the stride-2 'valid' conv lands on exactly half the size (`padding` unused).
    """
    w = w.to(x.dtype)
    if down == 2:
        assert up == 1 and f is not None, "2× down-sampling needs a FIR filter and no up-sampling"
        pad = (f.shape[-1] - down) + (w.shape[-1] - 1)
        x = upfirdn2d(x, f, padding=((pad + 1) // 2, pad // 2, (pad + 1) // 2, pad // 2))
        return F.conv2d(x, w, stride=down, groups=groups)
    assert down == 1, f"down-sampling by {down} is not supported"
    if up == 1:
        return F.conv2d(x, w, padding=padding, groups=groups)
    assert up == 2 and f is not None, "only 2× up-sampling with a FIR filter is supported"
    k = w.shape[-1]
    if k == 1:
        return upsample2d(F.conv2d(x, w, groups=groups), f)
    assert padding == k // 2, f"up-conv expects padding k//2={k // 2}, got {padding}"
    return conv_up2d(x, w, f, groups=groups)


# ---------------------------------------------------------------------------------------------------------------
# Modulated convolution


def fp16_prenormalize(weight: torch.Tensor, styles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rescale weight and styles so the fp16 per-sample weights cannot overflow.

    Harmless because demodulation divides the scale out again (up to the 1e-8 epsilon).
    """
    o, i, kh, kw = weight.shape
    weight = weight * (1 / math.sqrt(i * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
    styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    return weight, styles


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, noise: torch.Tensor | None = None,
                     up: int = 1, padding: int = 0, resample_filter: torch.Tensor | None = None,
                     demodulate: bool = True, fused_modconv: bool = True) -> torch.Tensor:
    """StyleGAN2 modulated convolution (reference §2.6).

    x [N,I,H,W] (fp32 or fp16), weight [O,I,k,k] fp32, styles [N,I] fp32, noise broadcastable to the output.
    The fused path bakes styles and demodulation into per-sample weights (one grouped conv); the non-fused path
    scales activations instead and shares one weight across the batch. Same maths, different last bits.
    """
    n = x.shape[0]
    o, i, kh, kw = weight.shape
    assert x.ndim == 4 and x.shape[1] == i, f"x {tuple(x.shape)} does not match weight {tuple(weight.shape)}"
    assert styles.shape == (n, i), f"styles {tuple(styles.shape)} should be {(n, i)}"

    if x.dtype == torch.float16 and demodulate:
        weight, styles = fp16_prenormalize(weight, styles)

    w = weight.unsqueeze(0) * styles.reshape(n, 1, i, 1, 1)  # [N,O,I,k,k]
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt() if demodulate else None  # [N,O]

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, i, 1, 1)
        x = conv2d_resample(x, weight, f=resample_filter, up=up, padding=padding)
        if demodulate and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(n, o, 1, 1))
        if demodulate:
            x = x * dcoefs.to(x.dtype).reshape(n, o, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    if demodulate:
        w = w * dcoefs.reshape(n, o, 1, 1, 1)
    x = x.reshape(1, n * i, *x.shape[2:])
    x = conv2d_resample(x, w.reshape(n * o, i, kh, kw), f=resample_filter, up=up, padding=padding, groups=n)
    x = x.reshape(n, o, *x.shape[2:])
    if noise is not None:
        # In place with fp32 noise: one rounding to x's dtype, like ADA-PT's fused path.
        x = x.add_(noise)
    return x


def modulated_conv2d_reference(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                               noise: torch.Tensor | None = None, up: int = 1, padding: int = 0,
                               resample_filter: torch.Tensor | None = None,
                               demodulate: bool = True) -> torch.Tensor:
    """Slow twin: one sample at a time, per-sample weight built explicitly, up-conv via zero insertion. fp32 only."""
    outs = []
    for s, xs in zip(styles, x):
        w = weight * s.reshape(1, -1, 1, 1)
        if demodulate:
            w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        xs = xs[None]
        if up == 1:
            y = F.conv2d(xs, w, padding=padding)
        elif w.shape[-1] == 1:
            y = upsample2d(F.conv2d(xs, w), resample_filter)
        else:
            y = conv_up2d_reference(xs, w, resample_filter)
        outs.append(y)
    x = torch.cat(outs)
    if noise is not None:
        x = x + noise
    return x
