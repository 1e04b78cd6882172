"""StyleGAN2's residual discriminator (ADA-PT `DiscriminatorBlock` / `DiscriminatorEpilogue`, architecture 'resnet').

Used only by `dnebot train`. Released models ship without their discriminator (our files hold G alone), so it starts
from fresh weights; parameter names follow ADA-PT (`b64.fromrgb.weight`, `b4.fc.weight`, ...) so that a real D from
an NVIDIA snapshot could be copied in by name later. Sized from the generator's own config: same resolution,
channel_base and channel_max, so D and G have matching capacity per resolution.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from models.networks import Conv2dLayer, FullyConnectedLayer, GeneratorConfig


class DiscriminatorBlock(nn.Module):
    """One resolution r → r/2: two 3×3 convs (the second down-sampling) plus a 1×1 residual skip."""

    def __init__(self, in_channels: int, tmp_channels: int, out_channels: int, resolution: int, img_channels: int):
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation="lrelu")
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation="lrelu")
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, down=2, activation="lrelu")
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 0:
            x = self.fromrgb(img)
        assert x.shape[-1] == self.resolution, (tuple(x.shape), self.resolution)
        # sqrt(0.5) keeps the residual sum at unit variance.
        y = self.skip(x, gain=math.sqrt(0.5))
        x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
        return y + x

    def extra_repr(self) -> str:
        return f"resolution={self.resolution}"


class MinibatchStdLayer(nn.Module):
    """Appends the mean std-dev across groups of samples as extra feature maps: lets D see a lack of variety."""

    def __init__(self, group_size: int = 4, num_channels: int = 1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        while n % g:
            g -= 1    # ADA-PT asserts divisibility; a ragged last batch should not crash training
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0)
        y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])
        y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class DiscriminatorEpilogue(nn.Module):
    """4×4 features → minibatch std → conv → fc → one logit per image."""

    def __init__(self, in_channels: int, resolution: int = 4, mbstd_group_size: int = 4):
        super().__init__()
        self.resolution = resolution
        self.mbstd = MinibatchStdLayer(mbstd_group_size)
        self.conv = Conv2dLayer(in_channels + 1, in_channels, 3, activation="lrelu")
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation="lrelu")
        self.out = FullyConnectedLayer(in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2:] == (self.resolution, self.resolution), tuple(x.shape)
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1)))


class Discriminator(nn.Module):
    def __init__(self, img_resolution: int, img_channels: int = 3, channel_base: int = 32768,
                 channel_max: int = 512, mbstd_group_size: int = 4):
        super().__init__()
        log2 = int(math.log2(img_resolution))
        assert img_resolution == 2 ** log2 and img_resolution >= 8, f"resolution must be a power of 2, got {img_resolution}"
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.block_resolutions = [2 ** i for i in range(log2, 2, -1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions + [4]}
        for res in self.block_resolutions:
            in_channels = channels[res] if res < img_resolution else 0
            block = DiscriminatorBlock(in_channels, channels[res], channels[res // 2], res, img_channels)
            setattr(self, f"b{res}", block)
        self.b4 = DiscriminatorEpilogue(channels[4], mbstd_group_size=mbstd_group_size)

    @classmethod
    def for_generator(cls, config: GeneratorConfig) -> "Discriminator":
        return cls(config.img_resolution, config.img_channels, config.channel_base, config.channel_max)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        assert img.shape[1:] == (self.img_channels, self.img_resolution, self.img_resolution), tuple(img.shape)
        x = None
        for res in self.block_resolutions:
            x = getattr(self, f"b{res}")(x, img)
        return self.b4(x)

    def extra_repr(self) -> str:
        return f"img_resolution={self.img_resolution}, img_channels={self.img_channels}"
