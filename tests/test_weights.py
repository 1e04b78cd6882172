"""Our safetensors format: exact roundtrip, metadata, torch-free header, clear refusals."""
import json
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from models.networks import Generator, GeneratorConfig
from models.render import render_seed
from models.weights import FORMAT, load_generator, read_metadata, save_generator

torch.set_num_threads(1)

LINEAGE = {"name": "fox", "fine_tuned_from": "human", "ancestor": "human"}


@pytest.fixture()
def G():
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=32, w_dim=32, img_resolution=32, channel_base=512, channel_max=64,
                                  mapping_layers=2, conv_clamp=256)).eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.2)
        G.mapping.w_avg.normal_()
    return G


def test_roundtrip_identical_outputs_and_metadata(G, tmp_path):
    path = tmp_path / "fox.safetensors"
    save_generator(G, path, LINEAGE, source={"made_by": "test", "kimg": 12})
    G2 = load_generator(path)
    assert not G2.training
    assert all(p.dtype == torch.float32 for p in G2.parameters())
    assert G2.config == G.config
    for k, v in G.state_dict().items():
        assert torch.equal(v, G2.state_dict()[k]), k
    z = torch.randn(2, 32)
    with torch.no_grad():
        assert torch.equal(G(z, truncation_psi=0.7), G2(z, truncation_psi=0.7))
    assert np.array_equal(render_seed(G, 5), render_seed(G2, 5))

    meta = read_metadata(path)
    assert meta == {"format": FORMAT, "format_version": "1", "generator_config": G.config.to_dict(),
                    "lineage": LINEAGE, "source": {"made_by": "test", "kimg": 12}}


def test_header_is_readable_without_torch(G, tmp_path):
    path = tmp_path / "g.safetensors"
    save_generator(G, path, LINEAGE)
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    meta = header["__metadata__"]
    assert all(isinstance(v, str) for v in meta.values())
    assert meta["format"] == "dnebot-stylegan2" and meta["format_version"] == "1"
    assert json.loads(meta["generator_config"])["img_resolution"] == 32
    assert json.loads(meta["lineage"]) == LINEAGE
    assert json.loads(meta["source"]) == {}
    assert header["mapping.w_avg"]["shape"] == [32]


def test_lineage_needs_all_keys(G, tmp_path):
    with pytest.raises(ValueError, match="ancestor"):
        save_generator(G, tmp_path / "x.safetensors", {"name": "x", "fine_tuned_from": None})


def test_foreign_safetensors_file_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match="convert"):
        load_generator(path)


def test_weights_not_matching_config_are_refused(G, tmp_path):
    path = tmp_path / "bad.safetensors"
    save_generator(G, path, LINEAGE)
    meta = read_metadata(path)
    cfg = dict(meta["generator_config"], channel_max=32)
    tensors = {k: v for k, v in G.state_dict().items()}
    raw = {"format": FORMAT, "format_version": "1", "generator_config": json.dumps(cfg),
           "lineage": json.dumps(LINEAGE), "source": "{}"}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=raw)
    with pytest.raises(ValueError, match="wrong shape"):
        load_generator(path)


def test_saved_files_are_readable_by_other_users(tmp_path):
    from models.networks import Generator, GeneratorConfig
    from models.weights import save_generator

    G = Generator(GeneratorConfig(z_dim=8, w_dim=8, img_resolution=8, mapping_layers=1, channel_base=64, channel_max=8))
    save_generator(G, tmp_path / "g.safetensors", {"name": "g", "fine_tuned_from": None, "ancestor": "g"})
    assert (tmp_path / "g.safetensors").stat().st_mode & 0o777 == 0o644
