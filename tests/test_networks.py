"""Generator structure (ADA-PT names, shapes, parameter counts) and behaviour (mapping, noise, ws routing)."""
import json
import math

import pytest
import torch

from models.networks import (FullyConnectedLayer, Generator, GeneratorConfig, SynthesisLayer, count_parameters,
                             normalize_2nd_moment)

torch.set_num_threads(1)

SMALL = dict(z_dim=32, w_dim=32, img_resolution=32, channel_base=512, channel_max=64, mapping_layers=2)


def small_generator(seed=0, **overrides) -> Generator:
    torch.manual_seed(seed)
    G = Generator(GeneratorConfig(**{**SMALL, **overrides})).eval()
    with torch.no_grad():
        # Fresh layers have zero noise strength and w_avg; give them values so noise and truncation are visible.
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.3)
        G.mapping.w_avg.normal_()
    return G


# ------------------------------------------------------------------------------------------------ config


def test_config_defaults_are_ada_pt_defaults():
    cfg = GeneratorConfig()
    assert (cfg.z_dim, cfg.w_dim, cfg.img_resolution, cfg.mapping_layers) == (512, 512, 1024, 8)
    assert cfg.mapping_lr_multiplier == 0.01 and cfg.channel_base == 32768 and cfg.channel_max == 512
    assert cfg.architecture == "skip" and cfg.conv_clamp is None and cfg.num_fp16_res == 0
    assert cfg.resample_filter == (1, 3, 3, 1)


def test_config_dict_roundtrip_is_json():
    cfg = GeneratorConfig(**SMALL, conv_clamp=256, num_fp16_res=2)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert GeneratorConfig.from_dict(d) == cfg


def test_from_dict_refuses_unknown_keys_by_name():
    with pytest.raises(ValueError, match="fmap_base") as err:
        GeneratorConfig.from_dict({"z_dim": 512, "fmap_base": 16384, "img_resolution": 256})
    assert "channel_base" in str(err.value)  # the message lists the keys that do exist


@pytest.mark.parametrize("bad", [dict(img_resolution=48), dict(architecture="resnets"), dict(activation="gelu9"),
                                 dict(img_resolution=1024, channel_base=512)])
def test_config_rejects_invalid_values(bad):
    with pytest.raises(ValueError):
        GeneratorConfig(**bad)


@pytest.mark.parametrize("res,num_ws", [(4, 2), (32, 8), (64, 10), (256, 14), (512, 16), (1024, 18)])
def test_num_ws_formula(res, num_ws):
    cfg = GeneratorConfig(img_resolution=res)
    assert cfg.num_ws == num_ws == 2 * int(math.log2(res)) - 2
    with torch.device("meta"):
        assert Generator(cfg).num_ws == num_ws


def test_fp16_resolution_rule():
    assert GeneratorConfig(img_resolution=1024, num_fp16_res=4).fp16_resolution == 128
    assert GeneratorConfig(img_resolution=256, num_fp16_res=4).fp16_resolution == 32
    assert GeneratorConfig(img_resolution=256, num_fp16_res=0).fp16_resolution == 512  # none
    assert GeneratorConfig(img_resolution=64, num_fp16_res=10).fp16_resolution == 8  # b4 never fp16


# ------------------------------------------------------------------------------------------------ layout


@pytest.mark.parametrize("res,cbase,mapping,synthesis,total", [
    (1024, 32768, 2_101_248, 28_268_812, 30_370_060),
    (512, 32768, 2_101_248, 28_175_335, 30_276_583),
    (512, 16384, 2_101_248, 22_759_687, 24_860_935),
    (256, 16384, 2_101_248, 22_666_210, 24_767_458),
])
def test_parameter_counts_match_reference(res, cbase, mapping, synthesis, total):
    counts = count_parameters(GeneratorConfig(img_resolution=res, channel_base=cbase))
    assert counts == {"mapping": mapping, "synthesis": synthesis, "total": total}


def test_noise_const_elements_match_reference():
    with torch.device("meta"):
        G = Generator(GeneratorConfig(img_resolution=512))
    n = sum(b.numel() for name, b in G.named_buffers() if name.endswith("noise_const"))
    assert n == 699_024


def expected_layout(cfg: GeneratorConfig) -> dict[str, tuple]:
    """stylegan2-ada-pytorch state_dict, written out from reference §2.1."""
    w = cfg.w_dim
    out = {}
    feats = [cfg.z_dim + (w if cfg.c_dim else 0)] + [w] * cfg.mapping_layers
    for i in range(cfg.mapping_layers):
        out[f"mapping.fc{i}.weight"] = (feats[i + 1], feats[i])
        out[f"mapping.fc{i}.bias"] = (feats[i + 1],)
    if cfg.c_dim:
        out["mapping.embed.weight"] = (w, cfg.c_dim)
        out["mapping.embed.bias"] = (w,)
    out["mapping.w_avg"] = (w,)
    for r in cfg.block_resolutions:
        c = cfg.channels(r)
        p = f"synthesis.b{r}"
        out[f"{p}.resample_filter"] = (4, 4)
        convs = {"conv1": c}
        if r == 4:
            out[f"{p}.const"] = (c, 4, 4)
        else:
            convs["conv0"] = cfg.channels(r // 2)
        for name, cin in convs.items():
            out[f"{p}.{name}.weight"] = (c, cin, 3, 3)
            out[f"{p}.{name}.bias"] = (c,)
            out[f"{p}.{name}.noise_strength"] = ()
            out[f"{p}.{name}.noise_const"] = (r, r)
            out[f"{p}.{name}.resample_filter"] = (4, 4)
            out[f"{p}.{name}.affine.weight"] = (cin, w)
            out[f"{p}.{name}.affine.bias"] = (cin,)
        if cfg.architecture == "skip" or r == cfg.img_resolution:
            out[f"{p}.torgb.weight"] = (cfg.img_channels, c, 1, 1)
            out[f"{p}.torgb.bias"] = (cfg.img_channels,)
            out[f"{p}.torgb.affine.weight"] = (c, w)
            out[f"{p}.torgb.affine.bias"] = (c,)
        if cfg.architecture == "resnet" and r > 4:
            out[f"{p}.skip.weight"] = (c, cfg.channels(r // 2), 1, 1)
            out[f"{p}.skip.resample_filter"] = (4, 4)
    return out


@pytest.mark.parametrize("overrides", [{}, {"c_dim": 5}, {"architecture": "resnet"}, {"architecture": "orig"},
                                       {"img_resolution": 512, "channel_base": 32768, "channel_max": 512,
                                        "z_dim": 512, "w_dim": 512, "mapping_layers": 8}])
def test_state_dict_names_and_shapes_are_ada_pt(overrides):
    cfg = GeneratorConfig(**{**SMALL, **overrides})
    with torch.device("meta"):
        G = Generator(cfg)
    got = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    assert got == expected_layout(cfg)


def test_layers_print_their_hyper_parameters():
    text = repr(small_generator())
    assert "resolution=32, up=2" in text and "lr_multiplier=0.01" in text and "architecture=skip" in text


# ------------------------------------------------------------------------------------------------ mapping


def test_fully_connected_uses_equalised_gains():
    fc = FullyConnectedLayer(4, 2, lr_multiplier=0.5, bias_init=1)
    x = torch.randn(3, 4)
    expected = x @ (fc.weight * 0.5 / 2).t() + fc.bias * 0.5
    torch.testing.assert_close(fc(x), expected)


def test_normalize_2nd_moment():
    x = torch.tensor([[3.0, 4.0]])
    torch.testing.assert_close(normalize_2nd_moment(x), x / math.sqrt(12.5))


def test_mapping_broadcasts_to_num_ws():
    G = small_generator()
    ws = G.mapping(torch.randn(2, 32))
    assert ws.shape == (2, G.num_ws, 32)
    assert torch.equal(ws[:, 0], ws[:, -1])


def test_truncation_psi_zero_gives_w_avg_exactly():
    G = small_generator()
    ws = G.mapping(torch.randn(3, 32), truncation_psi=0.0)
    assert torch.equal(ws, G.mapping.w_avg.expand_as(ws))


def test_truncation_formula_and_cutoff():
    G = small_generator()
    z = torch.randn(2, 32)
    w = G.mapping(z)
    ws = G.mapping(z, truncation_psi=0.7, truncation_cutoff=3)
    w_avg = G.mapping.w_avg
    torch.testing.assert_close(ws[:, :3], w_avg + 0.7 * (w[:, :3] - w_avg))
    assert torch.equal(ws[:, 3:], w[:, 3:])


def test_normalize_latents_false_skips_normalisation():
    G = small_generator()
    G2 = small_generator(normalize_latents=False)
    G2.load_state_dict(G.state_dict())
    z = torch.randn(1, 32) * 5
    assert torch.allclose(G.mapping(z), G.mapping(z * 3))  # scale-invariant with normalisation
    assert not torch.allclose(G2.mapping(z), G2.mapping(z * 3))


def test_conditional_mapping_needs_a_label():
    G = small_generator(c_dim=4)
    with pytest.raises(ValueError, match="one-hot"):
        G.mapping(torch.randn(1, 32))
    c = torch.eye(4)[:2]
    ws = G.mapping(torch.randn(1, 32).repeat(2, 1), c)
    assert not torch.allclose(ws[0], ws[1])


def test_w_avg_tracks_in_training_only():
    G = small_generator()
    before = G.mapping.w_avg.clone()
    G.mapping(torch.randn(4, 32))
    assert torch.equal(G.mapping.w_avg, before)  # eval
    G.train()
    w = G.mapping(torch.randn(4, 32))[:, 0]
    torch.testing.assert_close(G.mapping.w_avg, w.mean(0).lerp(before, 0.995))


# ------------------------------------------------------------------------------------------------ synthesis


def test_generator_output_shape_and_dtype():
    G = small_generator()
    img = G(torch.randn(2, 32))
    assert img.shape == (2, 3, 32, 32) and img.dtype == torch.float32


@pytest.mark.parametrize("architecture", ["skip", "resnet", "orig"])
def test_architectures_run(architecture):
    G = small_generator(architecture=architecture)
    with torch.no_grad():
        img = G(torch.randn(1, 32))
    assert img.shape == (1, 3, 32, 32) and torch.isfinite(img).all()


def test_noise_modes():
    G = small_generator()
    z = torch.randn(1, 32)
    with torch.no_grad():
        a, b = G(z, noise_mode="const"), G(z, noise_mode="const")
        r1, r2 = G(z, noise_mode="random"), G(z, noise_mode="random")
        none = G(z, noise_mode="none")
    assert torch.equal(a, b)
    assert not torch.allclose(r1, r2)
    assert not torch.allclose(a, none)
    with pytest.raises(AssertionError, match="noise_mode"):
        G(z, noise_mode="fixed")


def test_use_noise_false_has_no_noise_buffers_and_is_deterministic():
    G = small_generator(use_noise=False)
    assert not any("noise" in k for k in G.state_dict())
    z = torch.randn(1, 32)
    with torch.no_grad():
        assert torch.equal(G(z, noise_mode="random"), G(z, noise_mode="const"))


def test_batch_rows_match_single_renders():
    G = small_generator()
    z = torch.randn(3, 32)
    with torch.no_grad():
        batch = G(z)
        single = torch.cat([G(z[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=1e-5)


def test_fused_and_nonfused_generator_agree():
    G = small_generator()
    ws = G.mapping(torch.randn(2, 32))
    with torch.no_grad():
        fused = G.synthesis(ws, fused_modconv=True)
        nonfused = G.synthesis(ws, fused_modconv=False)
    torch.testing.assert_close(fused, nonfused, atol=1e-5, rtol=1e-5)


def test_ws_sliding_window_torgb_shares_next_conv0_w():
    G = small_generator()
    seen = {}

    def record(name):
        def hook(module, args):
            seen[name] = args[0].clone()
        return hook

    for name, module in G.synthesis.named_modules():
        if name.endswith("affine"):
            module.register_forward_pre_hook(record(name.rsplit(".", 1)[0]))
    ws = torch.randn(1, G.num_ws, 32)
    with torch.no_grad():
        G.synthesis(ws)
    expected = {"b4.conv1": 0, "b4.torgb": 1, "b8.conv0": 1, "b8.conv1": 2, "b8.torgb": 3,
                "b16.conv0": 3, "b16.conv1": 4, "b16.torgb": 5, "b32.conv0": 5, "b32.conv1": 6, "b32.torgb": 7}
    assert set(seen) == set(expected)
    for name, idx in expected.items():
        assert torch.equal(seen[name], ws[:, idx]), name


def test_ws_shape_is_checked():
    G = small_generator()
    with pytest.raises(AssertionError, match="ws must be"):
        G.synthesis(torch.randn(1, G.num_ws + 1, 32))


def test_conv_clamp_bounds_layer_outputs():
    layer = SynthesisLayer(8, 8, w_dim=4, resolution=8, conv_clamp=0.05)
    with torch.no_grad():
        y = layer(torch.randn(2, 8, 8, 8) * 10, torch.randn(2, 4))
    assert y.abs().max() <= 0.05 + 1e-7
    assert y.abs().max() == pytest.approx(0.05)


def test_fp16_blocks_compute_fp32_on_cpu():
    G = small_generator(num_fp16_res=2, conv_clamp=256)
    assert [b.use_fp16 for b in G.synthesis.blocks()] == [False, False, True, True]
    G32 = small_generator(conv_clamp=256)
    G32.load_state_dict(G.state_dict())
    z = torch.randn(1, 32)
    with torch.no_grad():
        assert torch.equal(G(z), G32(z))


def test_64px_render_is_fast_on_cpu():
    import time
    torch.manual_seed(0)
    G = Generator(GeneratorConfig(z_dim=128, w_dim=128, img_resolution=64, channel_base=4096, channel_max=256,
                                  mapping_layers=4)).eval()
    z = torch.randn(1, 128)
    with torch.no_grad():
        G(z)
        start = time.perf_counter()
        G(z)
        elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"one 64 px image took {elapsed:.2f}s"


def test_fp16_block_cast_points(monkeypatch):
    """Force the CUDA fp16 path on CPU: features run in half, the image accumulates in float32."""
    from models.networks import SynthesisBlock
    G = small_generator(num_fp16_res=2, conv_clamp=256)
    ws = G.mapping(torch.randn(2, 32))
    with torch.no_grad():
        reference = G.synthesis(ws)
    monkeypatch.setattr(SynthesisBlock, "compute_dtype",
                        lambda self, device, force_fp32=False:
                        torch.float16 if self.use_fp16 and not force_fp32 else torch.float32)
    dtypes = {}

    def record(block, args, out):
        dtypes.setdefault(block.resolution, (out[0].dtype, out[1].dtype))

    for block in G.synthesis.blocks():
        block.register_forward_hook(record)
    with torch.no_grad():
        half = G.synthesis(ws)
        forced = G.synthesis(ws, force_fp32=True)
    assert dtypes == {4: (torch.float32,) * 2, 8: (torch.float32,) * 2,
                      16: (torch.float16, torch.float32), 32: (torch.float16, torch.float32)}
    assert half.dtype == torch.float32
    assert (half - reference).abs().max() < 2e-2
    assert torch.equal(forced, reference)
