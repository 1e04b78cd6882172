"""Weighted-average blending (reference §5.3) on tiny generators of the team's architecture."""
import copy

import numpy as np
import pytest
import torch

from models.blend import (BlendCache, IncompatibleModelsError, blend_generators, mean_w, normalise_recipe)
from models.networks import Generator, GeneratorConfig

torch.set_num_threads(1)

TINY = GeneratorConfig(z_dim=32, w_dim=32, img_resolution=16, mapping_layers=2, channel_base=256, channel_max=32)


def ancestor(config: GeneratorConfig = TINY, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    G = Generator(config).eval().requires_grad_(False)
    G.mapping.w_avg.copy_(mean_w(G, samples=2000))   # a trained model's EMA is near its mapping's mean
    return G


def fine_tune(G: Generator, seed: int, scale: float = 0.3) -> Generator:
    """Stand-in for fine-tuning: every parameter moves, buffers (noise_const, resample_filter) are inherited."""
    child = copy.deepcopy(G)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in child.parameters():
            parameter += scale * torch.randn(parameter.shape, generator=generator) * (parameter.std(correction=0) + 0.1)
        child.mapping.w_avg.copy_(mean_w(child, samples=2000))
    return child


@pytest.fixture(scope="module")
def family():
    human = ancestor()
    return human, fine_tune(human, 1), fine_tune(human, 2)


def test_model_blended_with_itself_at_100_is_exact(family):
    human, _, _ = family
    blended = blend_generators([("human", human, 100)])
    assert blended is not human and not blended.training
    original = human.state_dict()
    for key, tensor in blended.state_dict().items():
        assert torch.equal(tensor, original[key]), key


def test_zero_weight_part_changes_nothing(family):
    human, fox, _ = family
    blended = blend_generators([("human", human, 100), ("fox", fox, 0)])
    for key, tensor in blended.state_dict().items():
        assert torch.equal(tensor, human.state_dict()[key]), key


def test_half_and_half_is_the_parameter_mean(family):
    human, fox, _ = family
    blended = blend_generators([("human", human, 50), ("fox", fox, 50)])
    a, b, out = human.state_dict(), fox.state_dict(), blended.state_dict()
    parameter_names = {name for name, _ in blended.named_parameters()}
    assert "mapping.fc0.weight" in parameter_names and "synthesis.b4.const" in parameter_names
    assert "synthesis.b8.conv0.noise_strength" in parameter_names
    for name in parameter_names:
        expected = ((a[name].double() + b[name].double()) / 2).float()
        assert torch.equal(out[name], expected), name
        assert not torch.equal(out[name], a[name]), name     # every parameter really moved
    resample = [key for key in out if key.endswith("resample_filter")]
    assert resample
    for key in resample:
        assert torch.equal(out[key], a[key]), key
    for key in [key for key in out if key.endswith("noise_const")]:
        assert torch.equal(out[key], a[key]), key            # inherited by both parents, so kept


def test_four_way_weights(family):
    human, fox, anime = family
    blended = blend_generators([("human", human, 60), ("fox", fox, 30), ("anime", anime, 10)])
    key = "synthesis.b16.torgb.weight"
    expected = (0.6 * human.state_dict()[key].double() + 0.3 * fox.state_dict()[key].double()
                + 0.1 * anime.state_dict()[key].double()).float()
    assert torch.allclose(blended.state_dict()[key], expected, rtol=0, atol=1e-7)


def test_differing_noise_const_takes_the_largest_part(family):
    human, fox, _ = family
    fox_noise = copy.deepcopy(fox)
    fox_noise.synthesis.b8.conv1.noise_const.normal_()
    blended = blend_generators([("human", human, 30), ("fox", fox_noise, 70)])
    assert torch.equal(blended.synthesis.b8.conv1.noise_const, fox_noise.synthesis.b8.conv1.noise_const)
    assert torch.equal(blended.synthesis.b8.conv0.noise_const, human.synthesis.b8.conv0.noise_const)


def test_recomputed_w_avg_is_the_blended_mappings_mean(family):
    human, fox, _ = family
    blended = blend_generators([("human", human, 50), ("fox", fox, 50)])
    # An independent empirical estimate (different z) of where the blended mapping's w lie.
    z = torch.from_numpy(np.random.RandomState(7).randn(20000, TINY.z_dim)).float()
    empirical = blended.mapping(z)[:, 0].mean(dim=0)
    spread = (blended.mapping(z)[:, 0] - empirical).square().sum(dim=1).mean().sqrt()
    error = (blended.mapping.w_avg - empirical).norm()
    assert error < 0.05 * spread, (float(error), float(spread))
    naive = (human.mapping.w_avg + fox.mapping.w_avg) / 2
    assert error < (naive - empirical).norm()   # the recomputed centre beats averaging the parents' w_avg


def test_blend_renders(family):
    human, fox, _ = family
    blended = blend_generators([("human", human, 50), ("fox", fox, 50)])
    z = torch.from_numpy(np.random.RandomState(42).randn(1, TINY.z_dim)).float()
    image = blended(z, truncation_psi=0.7)
    assert image.shape == (1, 3, 16, 16) and torch.isfinite(image).all()


def test_different_resolution_is_refused_naming_it(family):
    human, _, _ = family
    bigger = ancestor(GeneratorConfig(**{**TINY.to_dict(), "img_resolution": 32}))
    with pytest.raises(IncompatibleModelsError) as caught:
        blend_generators([("human", human, 50), ("pony", bigger, 50)])
    assert str(caught.value) == (
        "human and pony have different architectures (img_resolution 16 vs 32); only models fine-tuned from the "
        "same ancestor, with identical architectures, can be blended.")


def test_different_architecture_and_mapping_depth_are_named(family):
    human, _, _ = family
    resnet = ancestor(GeneratorConfig(**{**TINY.to_dict(), "architecture": "resnet", "mapping_layers": 4}))
    with pytest.raises(IncompatibleModelsError, match=r"mapping_layers 2 vs 4, architecture 'skip' vs 'resnet'"):
        blend_generators([("human", human, 50), ("furry", resnet, 50)])


def test_shape_mismatch_names_the_tensor(family):
    human, fox, _ = family
    broken = copy.deepcopy(fox)
    broken.synthesis.b8.conv1.bias = torch.nn.Parameter(torch.zeros(7))
    with pytest.raises(IncompatibleModelsError) as caught:
        blend_generators([("human", human, 50), ("fox", broken, 50)])
    assert str(caught.value) == (
        "human and fox differ in synthesis.b8.conv1.bias: shape (32,) vs (7,); they cannot be blended.")


def test_normalise_recipe():
    assert normalise_recipe([("fox", 20), ("human", 60), ("anime", 10), ("pony", 10)]) == (
        ("human", 0.6), ("fox", 0.2), ("anime", 0.1), ("pony", 0.1))
    assert normalise_recipe([("a", 1), ("b", 0), ("c", 1)]) == (("a", 0.5), ("c", 0.5))
    assert normalise_recipe([("a", 3)]) == (("a", 1.0),)
    for bad, message in [([], "at least one"), ([("a", 1), ("a", 2)], "once"), ([("a", -1)], "non-negative"),
                         ([("a", 0)], "all be zero"), ([("a", float("nan"))], "non-negative")]:
        with pytest.raises(ValueError, match=message):
            normalise_recipe(bad)


def test_blend_cache_is_lru():
    cache = BlendCache(max_entries=2)
    built = []

    def builder(tag):
        def build():
            built.append(tag)
            return tag
        return build

    assert cache.get("a", builder("a")) == "a"
    assert cache.get("b", builder("b")) == "b"
    assert cache.get("a", builder("a2")) == "a"      # hit, and now most recent
    cache.get("c", builder("c"))                      # evicts b
    assert "b" not in cache and "a" in cache and "c" in cache
    assert built == ["a", "b", "c"]
