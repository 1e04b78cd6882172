"""StyleGAN2 generator (mapping + synthesis), parameter layout identical to stylegan2-ada-pytorch.

State-dict names and shapes match NVIDIA's `training/networks.py` one to one (reference §2.1), so official weights
load without renaming. The arithmetic follows reference §2.2-§2.9; the delicate kernels live in `models.ops`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from models import ops

NOISE_MODES = ("const", "random", "none")
ARCHITECTURES = ("orig", "skip", "resnet")


# ---------------------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything needed to rebuild a Generator. Defaults are ADA-PT's class defaults."""

    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    mapping_layer_features: int | None = None  # None → w_dim
    mapping_embed_features: int | None = None  # None → w_dim (only used when c_dim > 0)
    mapping_activation: str = "lrelu"
    normalize_latents: bool = True
    w_avg_beta: float | None = 0.995
    channel_base: int = 32768
    channel_max: int = 512
    architecture: str = "skip"
    conv_clamp: float | None = None
    num_fp16_res: int = 0
    use_noise: bool = True
    activation: str = "lrelu"
    resample_filter: tuple[float, ...] = (1, 3, 3, 1)

    def __post_init__(self) -> None:
        # Lists arrive from JSON; a tuple keeps the config hashable and comparable.
        object.__setattr__(self, "resample_filter", tuple(self.resample_filter))
        res = self.img_resolution
        if res < 4 or res & (res - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {res}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        if self.mapping_layers < 1:
            raise ValueError(f"mapping_layers must be >= 1, got {self.mapping_layers}")
        if self.z_dim < 0 or self.c_dim < 0 or self.w_dim < 1 or self.img_channels < 1:
            raise ValueError("z_dim and c_dim must be >= 0, w_dim and img_channels >= 1")
        if self.z_dim == 0 and self.c_dim == 0:
            raise ValueError("a generator needs z_dim > 0 or c_dim > 0")
        if self.channels(res) < 1:
            raise ValueError(f"channel_base {self.channel_base} leaves no channels at {res} px; "
                             f"use channel_base >= {res}")
        if self.num_fp16_res < 0:
            raise ValueError(f"num_fp16_res must be >= 0, got {self.num_fp16_res}")
        ops.activation_spec(self.activation)
        ops.activation_spec(self.mapping_activation)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GeneratorConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown GeneratorConfig key(s): {', '.join(unknown)}; known keys: {sorted(known)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["resample_filter"] = list(self.resample_filter)
        return d

    # Derived quantities, shared by the network and by tools that only read metadata.
    @property
    def block_resolutions(self) -> list[int]:
        return [2 ** i for i in range(2, int(math.log2(self.img_resolution)) + 1)]

    def channels(self, resolution: int) -> int:
        return min(self.channel_base // resolution, self.channel_max)

    @property
    def fp16_resolution(self) -> int:
        return max(2 ** (int(math.log2(self.img_resolution)) + 1 - self.num_fp16_res), 8)

    @property
    def num_ws(self) -> int:
        # Every block's convs consume one w each, plus the last block's torgb (reference §2.1).
        return 2 * int(math.log2(self.img_resolution)) - 2


# ---------------------------------------------------------------------------------------------------------------
# Layers


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(nn.Module):
    """Equalised-learning-rate linear layer: the stored weight is scaled at run time by lr_multiplier/sqrt(in)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.lr_multiplier = lr_multiplier
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 2 and x.shape[1] == self.in_features, (tuple(x.shape), self.in_features)
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return ops.bias_act(x @ w.t(), b, act=self.activation)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"activation={self.activation}, lr_multiplier={self.lr_multiplier}")


class MappingNetwork(nn.Module):
    """z (and optional class label c) → w, broadcast to [N, num_ws, w_dim], optionally truncated toward w_avg."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 8,
                 embed_features: int | None = None, layer_features: int | None = None,
                 activation: str = "lrelu", lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995,
                 normalize_latents: bool = True):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        self.normalize_latents = normalize_latents
        embed_features = (w_dim if embed_features is None else embed_features) if c_dim > 0 else 0
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        parts = []
        if self.z_dim > 0:
            assert z is not None and z.ndim == 2 and z.shape[1] == self.z_dim, \
                f"z must be [N, {self.z_dim}], got {None if z is None else tuple(z.shape)}"
            x = z.to(torch.float32)
            parts.append(normalize_2nd_moment(x) if self.normalize_latents else x)
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this generator is conditional: pass c as a one-hot label [N, {self.c_dim}]")
            assert c.ndim == 2 and c.shape[1] == self.c_dim, f"c must be [N, {self.c_dim}], got {tuple(c.shape)}"
            parts.append(normalize_2nd_moment(self.embed(c.to(torch.float32))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]

        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)

        # ADA-PT semantics: w_avg tracks the batch mean whenever the mapping runs in training mode.
        if self.training and self.w_avg_beta is not None:
            with torch.no_grad():
                self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws = ws.clone()
            ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws

    def extra_repr(self) -> str:
        return (f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, "
                f"num_layers={self.num_layers}, normalize_latents={self.normalize_latents}")


class SynthesisLayer(nn.Module):
    """One modulated 3×3 conv (optionally 2× up) + noise + bias + lrelu."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, activation: str = "lrelu",
                 resample_filter: tuple[float, ...] = (1, 3, 3, 1), conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = ops.activation_spec(activation).default_gain
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const", fused_modconv: bool = True,
                gain: float = 1.0) -> torch.Tensor:
        assert noise_mode in NOISE_MODES, f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}"
        in_res = self.resolution // self.up
        assert x.shape[1:] == (self.in_channels, in_res, in_res), \
            f"{tuple(x.shape)} should be [N, {self.in_channels}, {in_res}, {in_res}]"
        styles = self.affine(w)

        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) \
                * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength

        x = ops.modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                                 resample_filter=self.resample_filter, fused_modconv=fused_modconv)
        act_gain = self.act_gain * gain
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return ops.bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=act_gain, clamp=act_clamp)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, w_dim={self.w_dim}, "
                f"resolution={self.resolution}, up={self.up}, activation={self.activation}, "
                f"use_noise={self.use_noise}, conv_clamp={self.conv_clamp}")


class ToRGBLayer(nn.Module):
    """Modulated 1×1 conv to image channels, without demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool = True) -> torch.Tensor:
        assert x.shape[1] == self.in_channels, (tuple(x.shape), self.in_channels)
        styles = self.affine(w) * self.weight_gain
        x = ops.modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return ops.bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, w_dim={self.w_dim}, "
                f"conv_clamp={self.conv_clamp}")


class Conv2dLayer(nn.Module):
    """Plain equalised conv with optional 2× up/down-sampling: the generator's resnet skip (1×1, up, no bias) and
    every layer of the training discriminator (models/discriminator.py)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True, up: int = 1,
                 down: int = 1, activation: str = "linear", resample_filter: tuple[float, ...] = (1, 3, 3, 1),
                 conv_clamp: float | None = None):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.up, self.down = up, down
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.padding = kernel_size // 2
        self.act_gain = ops.activation_spec(activation).default_gain
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        assert x.shape[1] == self.in_channels, (tuple(x.shape), self.in_channels)
        w = self.weight * self.weight_gain
        x = ops.conv2d_resample(x, w, f=self.resample_filter, up=self.up, down=self.down, padding=self.padding)
        b = self.bias.to(x.dtype) if self.bias is not None else None
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return ops.bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=act_clamp)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"kernel_size={self.kernel_size}, up={self.up}, down={self.down}, activation={self.activation}")


# ---------------------------------------------------------------------------------------------------------------
# Blocks and networks


class SynthesisBlock(nn.Module):
    """One resolution: (const | up-conv0) → conv1 → torgb, with the architecture's image/skip path."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter: tuple[float, ...] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, use_fp16: bool = False, use_noise: bool = True,
                 activation: str = "lrelu"):
        super().__init__()
        assert architecture in ARCHITECTURES, architecture
        self.in_channels, self.out_channels, self.w_dim = in_channels, out_channels, w_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.is_last = is_last
        self.architecture = architecture
        self.use_fp16 = use_fp16
        self.register_buffer("resample_filter", ops.setup_filter(resample_filter))
        layer_kwargs = dict(w_dim=w_dim, resolution=resolution, use_noise=use_noise, activation=activation,
                            resample_filter=resample_filter, conv_clamp=conv_clamp)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
            self.num_conv = 1
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **layer_kwargs)
            self.num_conv = 2
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer_kwargs)
        self.num_torgb = 1 if (is_last or architecture == "skip") else 0
        if self.num_torgb:
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def compute_dtype(self, device: torch.device, force_fp32: bool = False) -> torch.dtype:
        # CPU half-precision convs are slow and inexact, so fp16 blocks run fp32 there (as SG3 does).
        if self.use_fp16 and not force_fp32 and device.type == "cuda":
            return torch.float16
        return torch.float32

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_mode: str = "const", force_fp32: bool = False,
                fused_modconv: bool | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        n = ws.shape[0]
        assert ws.shape[1:] == (self.num_conv + self.num_torgb, self.w_dim), \
            f"block b{self.resolution} ws {tuple(ws.shape)}"
        dtype = self.compute_dtype(ws.device, force_fp32)
        if fused_modconv is None:
            # ADA-PT's rule: fp16 blocks use the non-fused path for batches, which changes the last bits.
            fused_modconv = (not self.training) and (dtype == torch.float32 or n == 1)
        w_iter = iter(ws.unbind(dim=1))

        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat(n, 1, 1, 1)
        else:
            half = self.resolution // 2
            assert x is not None and x.shape[1:] == (self.in_channels, half, half), \
                f"block b{self.resolution} input {None if x is None else tuple(x.shape)}"
            x = x.to(dtype)

        layer_kwargs = dict(noise_mode=noise_mode, fused_modconv=fused_modconv)
        if self.in_channels == 0:
            x = self.conv1(x, next(w_iter), **layer_kwargs)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), **layer_kwargs)
            x = self.conv1(x, next(w_iter), gain=math.sqrt(0.5), **layer_kwargs)
            x = y.add_(x)
        else:
            x = self.conv0(x, next(w_iter), **layer_kwargs)
            x = self.conv1(x, next(w_iter), **layer_kwargs)

        if img is not None:
            half = self.resolution // 2
            assert img.shape[1:] == (self.img_channels, half, half), tuple(img.shape)
            img = ops.upsample2d(img, self.resample_filter)
        if self.num_torgb:
            # The image accumulates in fp32 even when the block runs in fp16.
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv).to(torch.float32)
            img = img.add_(y) if img is not None else y

        assert x.dtype == dtype
        assert img is None or img.dtype == torch.float32
        return x, img

    def extra_repr(self) -> str:
        return (f"resolution={self.resolution}, in_channels={self.in_channels}, "
                f"out_channels={self.out_channels}, architecture={self.architecture}, "
                f"is_last={self.is_last}, use_fp16={self.use_fp16}")


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] → image [N, C, H, W] float32, nominal range [-1, 1] (not clamped)."""

    def __init__(self, config: GeneratorConfig):
        super().__init__()
        self.w_dim = config.w_dim
        self.img_resolution = config.img_resolution
        self.img_channels = config.img_channels
        self.block_resolutions = config.block_resolutions
        fp16_resolution = config.fp16_resolution
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = config.channels(res // 2) if res > 4 else 0
            block = SynthesisBlock(in_channels, config.channels(res), w_dim=config.w_dim, resolution=res,
                                   img_channels=config.img_channels, is_last=(res == config.img_resolution),
                                   architecture=config.architecture, resample_filter=config.resample_filter,
                                   conv_clamp=config.conv_clamp, use_fp16=(res >= fp16_resolution),
                                   use_noise=config.use_noise, activation=config.activation)
            self.num_ws += block.num_conv
            if block.is_last:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]

    def block_ws(self, ws: torch.Tensor) -> list[torch.Tensor]:
        """Sliding window over ws: a block's torgb shares its w with the next block's conv0 (reference §2.4)."""
        out, w_idx = [], 0
        for block in self.blocks():
            out.append(ws.narrow(1, w_idx, block.num_conv + block.num_torgb))
            w_idx += block.num_conv
        return out

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", force_fp32: bool = False,
                fused_modconv: bool | None = None) -> torch.Tensor:
        assert ws.ndim == 3 and ws.shape[1:] == (self.num_ws, self.w_dim), \
            f"ws must be [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}"
        ws = ws.to(torch.float32)
        x = img = None
        for block, block_ws in zip(self.blocks(), self.block_ws(ws)):
            x, img = block(x, img, block_ws, noise_mode=noise_mode, force_fp32=force_fp32,
                           fused_modconv=fused_modconv)
        return img

    def extra_repr(self) -> str:
        return f"w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}"


class Generator(nn.Module):
    """z (+ c) → image. `G(z)` = `G.synthesis(G.mapping(z, c, psi, cutoff), noise_mode)`."""

    def __init__(self, config: GeneratorConfig | None = None):
        super().__init__()
        config = config or GeneratorConfig()
        self.config = config
        self.z_dim, self.c_dim, self.w_dim = config.z_dim, config.c_dim, config.w_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        self.synthesis = SynthesisNetwork(config)
        self.num_ws = self.synthesis.num_ws
        assert self.num_ws == config.num_ws
        self.mapping = MappingNetwork(config.z_dim, config.c_dim, config.w_dim, num_ws=self.num_ws,
                                      num_layers=config.mapping_layers,
                                      embed_features=config.mapping_embed_features,
                                      layer_features=config.mapping_layer_features,
                                      activation=config.mapping_activation,
                                      lr_multiplier=config.mapping_lr_multiplier, w_avg_beta=config.w_avg_beta,
                                      normalize_latents=config.normalize_latents)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "const", **synthesis_kwargs) -> torch.Tensor:
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, **synthesis_kwargs)

    def extra_repr(self) -> str:
        return (f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, "
                f"img_resolution={self.img_resolution}, img_channels={self.img_channels}")


def count_parameters(config: GeneratorConfig) -> dict[str, int]:
    """Parameter counts without allocating weights (built on the meta device)."""
    with torch.device("meta"):
        G = Generator(config)
    mapping = sum(p.numel() for p in G.mapping.parameters())
    synthesis = sum(p.numel() for p in G.synthesis.parameters())
    return {"mapping": mapping, "synthesis": synthesis, "total": mapping + synthesis}


__all__ = ["GeneratorConfig", "Generator", "MappingNetwork", "SynthesisNetwork", "SynthesisBlock",
           "SynthesisLayer", "ToRGBLayer", "FullyConnectedLayer", "Conv2dLayer", "normalize_2nd_moment",
           "count_parameters", "NOISE_MODES", "ARCHITECTURES"]
