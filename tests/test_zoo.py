"""The shipped demo zoo: files that load, one architecture, human as the family root, and models that learned
their own domain from the procedural renderer."""

import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from models.procedural import DOMAINS, render_face
from models.render import z_for_seed
from models.weights import load_generator, read_metadata

ZOO = Path(__file__).resolve().parent.parent / "models" / "zoo"
SEEDS = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def zoo():
    return {d: load_generator(ZOO / f"{d}.safetensors") for d in DOMAINS}


def test_models_toml_lists_the_zoo():
    toml = tomllib.loads((ZOO / "models.toml").read_text())
    assert toml["default_model"] == "anime"
    assert toml["families"]["demo"]["base"] == "human"
    assert set(toml["models"]) == set(DOMAINS)
    for name, entry in toml["models"].items():
        assert (ZOO / entry["file"]).is_file(), name
        assert entry["family"] == "demo" and 0 < entry["psi"] <= 1 and entry["description"]


@pytest.mark.parametrize("domain", DOMAINS)
def test_file_is_small_and_64px(domain):
    path = ZOO / f"{domain}.safetensors"
    assert path.stat().st_size <= 10 * 1024 * 1024
    meta = read_metadata(path)
    assert meta["generator_config"]["img_resolution"] == 64
    assert meta["source"]["training"]["iterations"] > 0


def test_one_architecture_with_human_as_ancestor(zoo):
    configs = {d: G.config for d, G in zoo.items()}
    assert len(set(configs.values())) == 1
    shapes = {d: {k: tuple(v.shape) for k, v in G.state_dict().items()} for d, G in zoo.items()}
    assert all(s == shapes["human"] for s in shapes.values())
    for domain in DOMAINS:
        lineage = read_metadata(ZOO / f"{domain}.safetensors")["lineage"]
        assert lineage["name"] == domain and lineage["ancestor"] == "human"
        assert lineage["fine_tuned_from"] == (None if domain == "human" else "human")


def test_fine_tunes_share_the_human_mapping(zoo):
    # A w means the same individual in every model: the blend and encode paths rely on it.
    human = zoo["human"].mapping.state_dict()
    for domain in DOMAINS:
        for k, v in zoo[domain].mapping.state_dict().items():
            assert torch.equal(v, human[k]), (domain, k)


def test_each_model_draws_its_own_domain(zoo):
    renders = {(d, s): render_face(z_for_seed(s, 128)[0], d).astype(np.float32) for d in DOMAINS for s in SEEDS}
    for domain, G in zoo.items():
        z = torch.from_numpy(np.concatenate([z_for_seed(s, G.z_dim) for s in SEEDS])).float()
        with torch.no_grad():
            img = G(z, truncation_psi=1.0, noise_mode="const")
        out = (img.permute(0, 2, 3, 1).numpy() * 127.5 + 128).clip(0, 255)
        assert out.shape == (len(SEEDS), 64, 64, 3)
        err = {d: np.mean([np.abs(out[i] - renders[(d, s)]).mean() for i, s in enumerate(SEEDS)]) for d in DOMAINS}
        assert min(err, key=err.get) == domain, (domain, err)
