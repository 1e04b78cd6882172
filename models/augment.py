"""Differentiable augmentation for small datasets, in the spirit of ADA (Karras et al. 2020).

Every image D sees, real or fake, passes through the same random flips, integer translations and colour changes,
each applied with probability p. Because fakes are augmented too (and the ops are differentiable), G is never
rewarded for producing augmented-looking images as long as p stays well below 1 — so D cannot memorise a
few hundred training images, which is what otherwise makes it overfit within a few kimg. p adapts: ADA's
overfitting heuristic r_t = E[sign(D(real))] is steered towards a target (0.6).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class AugmentPipe(nn.Module):
    def __init__(self, p: float = 0.0, translate_max: float = 0.125, brightness_std: float = 0.2,
                 contrast_std: float = 0.5, saturation_std: float = 1.0):
        super().__init__()
        self.p = float(p)
        self.translate_max = translate_max        # fraction of the image size
        self.brightness_std = brightness_std
        self.contrast_std = contrast_std          # log2 of the contrast factor
        self.saturation_std = saturation_std      # log2 of the saturation factor

    def _chosen(self, n: int, device) -> torch.Tensor:
        return (torch.rand([n, 1, 1, 1], device=device) < self.p).float()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        assert images.ndim == 4, tuple(images.shape)
        if self.p <= 0:
            return images
        n, c, h, w = images.shape
        device = images.device
        # Geometry: x-flip and whole-pixel translation as one reflect-padded resampling; at whole-pixel offsets
        # the bilinear taps land on pixel centres, so no blur is added.
        flip = 1 - 2 * (self._chosen(n, device).view(n) * (torch.rand(n, device=device) < 0.5).float())
        shift = torch.rand([n, 2], device=device) * 2 - 1
        shift = (shift * self.translate_max * torch.tensor([w, h], device=device)).round()
        shift = shift * self._chosen(n, device).view(n, 1)
        theta = torch.zeros([n, 2, 3], device=device)
        theta[:, 0, 0] = flip
        theta[:, 1, 1] = 1
        theta[:, 0, 2] = shift[:, 0] * 2 / w
        theta[:, 1, 2] = shift[:, 1] * 2 / h
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        x = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        if c != 3:
            return x
        # Colour: brightness, contrast around the image mean, saturation around the luma axis.
        x = x + torch.randn([n, 1, 1, 1], device=device) * self.brightness_std * self._chosen(n, device)
        mean = x.mean(dim=[1, 2, 3], keepdim=True)
        contrast = torch.exp2(torch.randn([n, 1, 1, 1], device=device) * self.contrast_std * self._chosen(n, device))
        x = mean + (x - mean) * contrast
        luma = x.mean(dim=1, keepdim=True)
        saturation = torch.exp2(torch.randn([n, 1, 1, 1], device=device) * self.saturation_std
                                * self._chosen(n, device))
        return luma + (x - luma) * saturation

    def extra_repr(self) -> str:
        return f"p={self.p:.3f}, translate_max={self.translate_max}"


class AdaptiveP:
    """Steers the pipe's p so that the share of reals D scores positive stays near `target`."""

    def __init__(self, pipe: AugmentPipe, target: float = 0.6, interval: int = 4, speed_kimg: float = 100.0):
        self.pipe, self.target, self.interval, self.speed_kimg = pipe, target, interval, speed_kimg
        self.signs: list[float] = []
        self.seen_images = 0

    def observe(self, real_logits: torch.Tensor) -> None:
        self.signs.append(real_logits.detach().sign().mean().item())
        self.seen_images += real_logits.shape[0]
        if len(self.signs) >= self.interval:
            r_t = sum(self.signs) / len(self.signs)
            # ADA: p can go from 0 to 1 in `speed_kimg` kimg at most.
            step = math.copysign(self.seen_images / (self.speed_kimg * 1000), r_t - self.target)
            self.pipe.p = min(max(self.pipe.p + step, 0.0), 1.0)
            self.signs.clear()
            self.seen_images = 0
