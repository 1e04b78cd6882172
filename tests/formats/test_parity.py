"""Each reader against our own generator: write its weights in a format, read them back, render the same pixels.

Parity target (issue 3): float output within 1e-4 and PNG within 1 level on at most 0.5 % of pixels, for the same
seeds, psi and noise mode. The readers move weights without arithmetic, so in practice the match is exact.
"""
import numpy as np
import pytest
import torch

from models.formats import load_generator, read_network
from models.render import render_seed, z_for_seed
from tests.formats.nvidia_writer import write_network_pickle
from tests.formats.rosinality_writer import write_rosinality_checkpoint
from tests.formats.small_models import make_generator
from tests.formats.tf_writer import write_tf_pickle

SEEDS = (0, 1, 42)


def assert_same_pixels(G_ref, G, psi=0.7, noise_mode="const", class_index=None, cutoff=None):
    for seed in SEEDS:
        z = torch.from_numpy(z_for_seed(seed, G_ref.z_dim))
        c = None
        if G_ref.c_dim:
            c = torch.zeros(1, G_ref.c_dim)
            c[0, class_index] = 1
        with torch.no_grad():
            a = G_ref(z, c, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode=noise_mode)
            b = G(z, c, truncation_psi=psi, truncation_cutoff=cutoff, noise_mode=noise_mode)
        assert (a - b).abs().max().item() <= 1e-4
        pa = render_seed(G_ref, seed, psi, noise_mode, class_index).astype(int)
        pb = render_seed(G, seed, psi, noise_mode, class_index).astype(int)
        diff = np.abs(pa - pb)
        assert diff.max() <= 1 and (diff > 0).mean() <= 0.005


CONFIGS = {
    "config-f": {},
    "resnet": dict(architecture="resnet"),
    "orig": dict(architecture="orig"),
    "clamp+fp16": dict(conv_clamp=256, num_fp16_res=2),
    "deep-mapping": dict(mapping_layers=8),
    "conditional": dict(c_dim=5),
    "64px": dict(img_resolution=64, channel_base=1024),
}


@pytest.mark.parametrize("flavour", ["ada", "sg3"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_nvidia_pickle(tmp_path, flavour, name):
    G = make_generator(**CONFIGS[name])
    path = tmp_path / "snapshot.pkl"
    write_network_pickle(path, G, flavour, channels_last=(name == "clamp+fp16"))
    net = read_network(path)
    assert net.config["conv_clamp"] == G.config.conv_clamp and net.config["num_fp16_res"] == G.config.num_fp16_res
    assert_same_pixels(G, load_generator(path), class_index=2 if G.c_dim else None)


def test_sg3_class_defaults_fill_absent_kwargs(tmp_path):
    """stylegan3 snapshots omit fp16/clamp unless --fp32: the class defaults (4, 256) apply (reference §1.6)."""
    G = make_generator(conv_clamp=256, num_fp16_res=4)
    write_network_pickle(tmp_path / "sg3.pkl", G, "sg3")
    net = read_network(tmp_path / "sg3.pkl")
    assert net.source["kwargs_layout"] == "flat" and net.source["code"] == "stylegan3"
    assert (net.config["conv_clamp"], net.config["num_fp16_res"]) == (256, 4)
    assert_same_pixels(G, load_generator(tmp_path / "sg3.pkl"))


@pytest.mark.parametrize("noise_mode", ["const", "none"])
@pytest.mark.parametrize("psi", [1.0, 0.5])
def test_noise_modes_and_truncation(tmp_path, noise_mode, psi):
    G = make_generator(seed=3)
    write_network_pickle(tmp_path / "g.pkl", G, "ada", protocol=4)
    G2 = load_generator(tmp_path / "g.pkl")
    assert_same_pixels(G, G2, psi=psi, noise_mode=noise_mode)
    assert_same_pixels(G, G2, psi=psi, noise_mode=noise_mode, cutoff=3)


@pytest.mark.parametrize("name", ["config-f", "resnet", "deep-mapping", "64px"])
def test_tensorflow_pickle(tmp_path, name):
    G = make_generator(**CONFIGS[name])
    write_tf_pickle(tmp_path / "tf.pkl", G)
    assert_same_pixels(G, load_generator(tmp_path / "tf.pkl"))


def test_tensorflow_ada_state_v5_conditional_fp16(tmp_path):
    G = make_generator(c_dim=4, conv_clamp=256, num_fp16_res=2)
    write_tf_pickle(tmp_path / "ada_tf.pkl", G, version=5, synthesis_func="G_synthesis")
    net = read_network(tmp_path / "ada_tf.pkl")
    assert net.format == "stylegan2-ada tensorflow pickle" and net.config["c_dim"] == 4
    assert_same_pixels(G, load_generator(tmp_path / "ada_tf.pkl"), class_index=3)


def test_tensorflow_fork_default_normalize_latents_false_is_honoured(tmp_path):
    """shawwn's `estimator` branch: G_mapping(normalize_latents=False) only as a default in build_module_src."""
    G = make_generator(normalize_latents=False)
    write_tf_pickle(tmp_path / "estimator.pkl", G)
    net = read_network(tmp_path / "estimator.pkl")
    assert net.config["normalize_latents"] is False
    assert net.source["defaults_from_build_module_src"] == {"normalize_latents": False}
    assert_same_pixels(G, load_generator(tmp_path / "estimator.pkl"))


def test_tf_pickle_and_the_pytorch_pickle_converted_from_it_agree(tmp_path):
    G = make_generator(seed=5, architecture="resnet")
    write_tf_pickle(tmp_path / "tf.pkl", G)
    from_tf = load_generator(tmp_path / "tf.pkl")
    write_network_pickle(tmp_path / "converted.pkl", from_tf, "ada-legacy", with_d=False)
    net = read_network(tmp_path / "converted.pkl")
    assert net.source["kwargs_layout"] == "nested"
    assert read_network(tmp_path / "tf.pkl").noise_fingerprint() == net.noise_fingerprint()
    converted = load_generator(tmp_path / "converted.pkl")
    for seed in SEEDS:
        np.testing.assert_array_equal(render_seed(from_tf, seed, 0.7), render_seed(converted, seed, 0.7))


def test_rosinality_round_trip(tmp_path):
    G = make_generator(seed=7, mapping_layers=8)
    write_rosinality_checkpoint(tmp_path / "ros.pt", G)
    assert_same_pixels(G, load_generator(tmp_path / "ros.pt"))


def test_rosinality_training_checkpoint_without_latent_avg(tmp_path):
    """train.py checkpoints keep argparse args and no latent_avg: psi=1 pixels match, w_avg is measured."""
    G = make_generator(seed=8)
    write_rosinality_checkpoint(tmp_path / "train.pt", G, latent_avg=False, training_keys=True)
    net = read_network(tmp_path / "train.pt")
    assert "estimated" in net.source["w_avg"]
    assert_same_pixels(G, load_generator(tmp_path / "train.pt"), psi=1.0)


def test_converted_safetensors_round_trip(tmp_path):
    from models.formats import convert
    from models.weights import load_generator as load_ours, read_metadata
    G = make_generator(seed=9, c_dim=3)
    write_network_pickle(tmp_path / "g.pkl", G, "ada")
    convert(tmp_path / "g.pkl", tmp_path / "g.safetensors")
    meta = read_metadata(tmp_path / "g.safetensors")
    assert meta["lineage"]["ancestor"].startswith("noise-") and meta["source"]["code"] == "stylegan2-ada-pytorch"
    assert_same_pixels(G, load_ours(tmp_path / "g.safetensors"), class_index=1)
    assert_same_pixels(G, load_generator(tmp_path / "g.safetensors"), class_index=1)


def test_conversion_cache_converts_once(tmp_path, monkeypatch):
    from models.formats import cache
    monkeypatch.setenv("DNEBOT_CACHE", str(tmp_path / "cache"))
    G = make_generator(seed=10)
    write_tf_pickle(tmp_path / "tf.pkl", G)
    assert cache.cached_path(tmp_path / "tf.pkl") is None
    first = cache.converted_path(tmp_path / "tf.pkl")
    sha = cache.file_sha256(tmp_path / "tf.pkl")
    assert first == tmp_path / "cache" / f"{sha}.safetensors"
    stamp = first.stat().st_mtime_ns
    assert cache.converted_path(tmp_path / "tf.pkl") == first and first.stat().st_mtime_ns == stamp
    meta = cache.cached_metadata_for_sha256(sha)
    assert meta["generator_config"]["img_resolution"] == 32 and meta["source"]["sha256"] == sha
    assert cache.converted_path(first) == first  # our own files are used as they are
    assert_same_pixels(G, load_generator(first))
