"""Projection into W: recovers an image the model itself rendered, deterministically, from any photo shape."""
import copy

import numpy as np
import pytest
import torch

from models.blend import mean_w
from models.networks import Generator, GeneratorConfig
from models.projector import (ProjectionSchedule, noise_regularizer, prepare_target, project, w_statistics)
from models.render import render_seed, render_ws

torch.set_num_threads(1)

SMALL = GeneratorConfig(z_dim=64, w_dim=64, img_resolution=32, mapping_layers=2, channel_base=1024, channel_max=64)


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    G = Generator(SMALL).eval().requires_grad_(False)
    G.mapping.w_avg.copy_(mean_w(G, samples=2000))
    return G


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_schedule_matches_the_reference():
    schedule = ProjectionSchedule(steps=1000)
    assert schedule.learning_rate(0.0) == 0.0                        # ramp-up starts at zero
    assert schedule.learning_rate(0.05) == pytest.approx(0.1)
    assert schedule.learning_rate(0.5) == pytest.approx(0.1)
    assert schedule.learning_rate(0.875) == pytest.approx(0.05)     # halfway down the cosine
    assert schedule.w_noise_scale(0.0, 2.0) == pytest.approx(0.1)
    assert schedule.w_noise_scale(0.375, 2.0) == pytest.approx(0.025)
    assert schedule.w_noise_scale(0.8, 2.0) == 0.0


def test_prepare_target_crops_centre_square():
    photo = np.zeros((60, 100, 3), np.uint8)
    photo[:, 20:80] = 200          # the centre 60×60 square is uniformly 200; the sides are black
    target = prepare_target(photo, 32)
    assert target.shape == (32, 32, 3) and target.dtype == np.uint8
    assert np.abs(target.astype(int) - 200).max() <= 1


def test_noise_regularizer_prefers_white_noise():
    generator = torch.Generator().manual_seed(0)
    white = torch.randn(32, 32, generator=generator)
    blocky = torch.nn.functional.interpolate(torch.randn(1, 1, 16, 16, generator=generator), scale_factor=2)[0, 0]
    assert noise_regularizer([white]) < noise_regularizer([blocky]) / 10


def test_w_statistics(G):
    w_avg, w_std = w_statistics(G)
    assert w_avg.shape == (SMALL.w_dim,) and w_std > 0
    assert w_statistics(G) is w_statistics(G)    # cached per generator


def test_projection_recovers_an_image_of_the_model(G):
    target = render_seed(G, 42, psi=0.7)
    result = project(G, target, schedule=ProjectionSchedule(steps=150), seed=303)
    assert result.ws.shape == (SMALL.num_ws, SMALL.w_dim) and result.ws.dtype == np.float32
    assert np.array_equal(result.ws[0], result.ws[-1])                # W, not W+
    assert result.image.shape == (32, 32, 3) and result.image.dtype == np.uint8
    assert np.array_equal(render_ws(G, result.ws), result.image)      # the stored w alone reproduces it
    assert np.array_equal(result.target, target)
    start = render_ws(G, w_statistics(G)[0][None].repeat(SMALL.num_ws, 1).numpy())
    others = np.mean([mse(render_seed(G, seed, psi=0.7), target) for seed in range(100, 110)])
    error = mse(result.image, target)
    print(f"projection MSE {error:.1f}, from w_avg {mse(start, target):.1f}, other seeds {others:.1f}")
    assert error < 0.25 * mse(start, target)
    assert error < 0.1 * others
    assert result.distances[-1] < 0.3 * result.distances[0]


def test_projection_is_deterministic_and_leaves_the_model_alone(G):
    before = copy.deepcopy(G.state_dict())
    photo = np.random.RandomState(1).randint(0, 256, (50, 40, 3), dtype=np.uint8)
    first = project(G, photo, schedule=ProjectionSchedule(steps=20), seed=7)
    second = project(G, photo, schedule=ProjectionSchedule(steps=20), seed=7)
    other_seed = project(G, photo, schedule=ProjectionSchedule(steps=20), seed=8)
    assert np.array_equal(first.ws, second.ws) and np.array_equal(first.image, second.image)
    assert not np.array_equal(first.ws, other_seed.ws)
    for key, tensor in G.state_dict().items():
        assert torch.equal(tensor, before[key]), key                   # noise maps were optimised on a copy
