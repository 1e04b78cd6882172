"""Photo → w projection by optimisation, after ADA-PT's projector (reference §6.1).

One w (W space, broadcast to all num_ws) starts at the mean w of 10k seeded z and is optimised with Adam under
the reference schedule: learning rate ramped up then cosine-ramped down, Gaussian noise added to w that decays to
zero, and every noise map optimised too, held near white noise by the autocorrelation regulariser and
renormalised after each step. As in ADA-PT the optimised noise maps are then thrown away: the projection is
rendered by the untouched generator, so the stored w alone reproduces it.

The loss differs from the reference on purpose. ADA-PT compares VGG16 (LPIPS) features of a pretrained network
that cannot be downloaded here and would be a heavy dependency for the 64 px demo. Instead: pixel MSE at every
scale of a Gaussian pyramid (coarse scales first pull the face's layout and colours into place) plus an L1
Laplacian-pyramid distance (band-pass differences, i.e. edges and texture at each scale, as in Bojanowski et al.'s
GLO). Pixel losses prefer blur to a misplaced detail, so results are softer than LPIPS projections.
"""
from __future__ import annotations

import copy
import math
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from models.networks import Generator
from models.render import to_uint8

W_STATS_SAMPLES = 10_000
W_STATS_SEED = 123                   # ADA-PT projector.py draws its W statistics from RandomState(123)


@dataclass(frozen=True)
class ProjectionSchedule:
    """ADA-PT projector defaults (reference §6.1), except the step count (1000 there; 200 runs in seconds on a CPU)."""

    steps: int = 200
    initial_learning_rate: float = 0.1
    initial_noise_factor: float = 0.05
    lr_rampdown_length: float = 0.25
    lr_rampup_length: float = 0.05
    noise_ramp_length: float = 0.75
    regularize_noise_weight: float = 1e5

    def learning_rate(self, t: float) -> float:
        ramp_down = min(1.0, (1.0 - t) / self.lr_rampdown_length)
        ramp_down = 0.5 - 0.5 * math.cos(ramp_down * math.pi)
        ramp_up = min(1.0, t / self.lr_rampup_length)
        return self.initial_learning_rate * ramp_down * ramp_up

    def w_noise_scale(self, t: float, w_std: float) -> float:
        return w_std * self.initial_noise_factor * max(0.0, 1.0 - t / self.noise_ramp_length) ** 2


@dataclass
class Projection:
    ws: np.ndarray                   # float32 [num_ws, w_dim]: the single optimised w repeated
    image: np.ndarray                # uint8 [R, R, 3]: ws rendered by the original generator, noise_mode const
    target: np.ndarray               # uint8 [R, R, 3]: the photo as the optimiser saw it
    distances: list[float] = field(default_factory=list)   # image distance per step


def prepare_target(photo_rgb: np.ndarray, resolution: int) -> np.ndarray:
    """Centre crop to a square on the shorter side, LANCZOS resize to the model's resolution → uint8 [R, R, 3]."""
    assert photo_rgb.ndim == 3 and photo_rgb.shape[2] == 3 and photo_rgb.dtype == np.uint8, photo_rgb.shape
    height, width = photo_rgb.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(photo_rgb[top:top + side, left:left + side])
    return np.asarray(square.resize((resolution, resolution), Image.LANCZOS), dtype=np.uint8).copy()


_W_STATS: "weakref.WeakKeyDictionary[Generator, dict]" = weakref.WeakKeyDictionary()


@torch.no_grad()
def w_statistics(G: Generator, samples: int = W_STATS_SAMPLES, seed: int = W_STATS_SEED) -> tuple[torch.Tensor, float]:
    """(mean w [w_dim], RMS distance of w from it) over seeded z; cached per generator object."""
    cached = _W_STATS.setdefault(G, {})
    if (samples, seed) not in cached:
        device = next(G.parameters()).device
        z = torch.from_numpy(np.random.RandomState(seed).randn(samples, G.z_dim)).to(device, torch.float32)
        c = torch.zeros(samples, G.c_dim, device=device) if G.c_dim else None
        w = torch.cat([G.mapping(z[i:i + 1000], None if c is None else c[i:i + 1000])[:, 0]
                       for i in range(0, samples, 1000)]).to(torch.float64)
        w_avg = w.mean(dim=0)
        w_std = float(((w - w_avg).square().sum() / samples).sqrt())
        cached[(samples, seed)] = (w_avg.to(torch.float32), w_std)
    return cached[(samples, seed)]


def _gaussian_pyramid(image: torch.Tensor, min_size: int = 8) -> list[torch.Tensor]:
    levels = [image]
    while levels[-1].shape[-1] > min_size:
        levels.append(F.avg_pool2d(levels[-1], 2))
    return levels


def _laplacian_pyramid(gaussian: list[torch.Tensor]) -> list[torch.Tensor]:
    bands = [fine - F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)
             for fine, coarse in zip(gaussian[:-1], gaussian[1:])]
    return bands + [gaussian[-1]]


def image_distance(synth: torch.Tensor, target_pyramid: tuple[list, list]) -> torch.Tensor:
    """Mean over scales of pixel MSE plus mean over bands of Laplacian L1; images in [-1, 1]."""
    target_gaussian, target_laplacian = target_pyramid
    gaussian = _gaussian_pyramid(synth)
    laplacian = _laplacian_pyramid(gaussian)
    mse = sum(F.mse_loss(a, b) for a, b in zip(gaussian, target_gaussian)) / len(gaussian)
    lap = sum(F.l1_loss(a, b) for a, b in zip(laplacian, target_laplacian)) / len(laplacian)
    return mse + lap


def noise_regularizer(noise_maps: list[torch.Tensor]) -> torch.Tensor:
    """Squared autocorrelation at one-pixel shifts, at every scale down to 8 px: keeps noise maps white."""
    total = torch.zeros((), device=noise_maps[0].device)
    for noise in noise_maps:
        level = noise[None, None]
        while True:
            total = total + (level * torch.roll(level, shifts=1, dims=3)).mean().square()
            total = total + (level * torch.roll(level, shifts=1, dims=2)).mean().square()
            if level.shape[-1] <= 8:
                break
            level = F.avg_pool2d(level, 2)
    return total


def _trainable_noise_copy(G: Generator, generator: torch.Generator) -> tuple[Generator, list[torch.Tensor]]:
    """A deep copy of G whose noise_const buffers are fresh N(0,1) maps that require grad."""
    G_opt = copy.deepcopy(G).eval().requires_grad_(False)
    noise_maps = []
    for name, buffer in list(G_opt.named_buffers()):
        if name.endswith("noise_const"):
            module = G_opt.get_submodule(name.rsplit(".", 1)[0])
            noise = torch.randn(buffer.shape, generator=generator, device=buffer.device).requires_grad_(True)
            setattr(module, "noise_const", noise)
            noise_maps.append(noise)
    return G_opt, noise_maps


def project(G: Generator, target_rgb: np.ndarray, *, schedule: ProjectionSchedule = ProjectionSchedule(),
            seed: int = 303, optimize_noise: bool = True) -> Projection:
    """Project a uint8 RGB image (any size; centre-cropped and resized here) into G's W space."""
    device = next(G.parameters()).device
    target = prepare_target(target_rgb, G.img_resolution)
    torch_rng = torch.Generator(device=device).manual_seed(seed)
    w_avg, w_std = w_statistics(G)
    G_opt, noise_maps = _trainable_noise_copy(G, torch_rng) if optimize_noise else (G, [])

    target_tensor = torch.from_numpy(target).to(device).permute(2, 0, 1)[None].to(torch.float32) / 127.5 - 1
    target_gaussian = _gaussian_pyramid(target_tensor)
    target_pyramid = (target_gaussian, _laplacian_pyramid(target_gaussian))

    w_opt = w_avg.detach().clone()[None, None].requires_grad_(True)         # [1, 1, w_dim]
    optimizer = torch.optim.Adam([w_opt] + noise_maps, betas=(0.9, 0.999), lr=schedule.initial_learning_rate)
    distances = []
    for step in range(schedule.steps):
        t = step / schedule.steps
        for group in optimizer.param_groups:
            group["lr"] = schedule.learning_rate(t)
        w_noise = torch.randn(w_opt.shape, generator=torch_rng, device=device) * schedule.w_noise_scale(t, w_std)
        ws = (w_opt + w_noise).repeat(1, G.num_ws, 1)
        synth = G_opt.synthesis(ws, noise_mode="const")
        distance = image_distance(synth, target_pyramid)
        loss = distance
        if noise_maps:
            loss = loss + schedule.regularize_noise_weight * noise_regularizer(noise_maps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        distances.append(distance.detach().item())
        with torch.no_grad():
            for noise in noise_maps:
                noise -= noise.mean()
                noise *= noise.square().mean().rsqrt()

    with torch.no_grad():
        ws = w_opt.detach().repeat(1, G.num_ws, 1)
        image = to_uint8(G.synthesis(ws, noise_mode="const"))[0]
    return Projection(ws=ws[0].cpu().numpy().astype(np.float32), image=image, target=target, distances=distances)
