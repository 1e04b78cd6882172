"""Small generators with every weight randomised, so transposes, flips, +1 biases and noise all show in pixels."""
from __future__ import annotations

import torch

from models.networks import Generator, GeneratorConfig

SMALL = dict(z_dim=32, w_dim=32, img_resolution=32, channel_base=512, channel_max=32, mapping_layers=2)


def make_generator(seed: int = 0, **overrides) -> Generator:
    config = GeneratorConfig(**{**SMALL, **overrides})
    g = torch.Generator().manual_seed(seed)
    with torch.device("cpu"):
        G = Generator(config).eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (1.0 if name.endswith("affine.bias") else 0.0))
        for name, b in G.named_buffers():
            if name.endswith(("noise_const", "w_avg")):
                b.copy_(torch.randn(b.shape, generator=g))
    return G.requires_grad_(False)
