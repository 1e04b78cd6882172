"""Writes rosinality/stylegan2-pytorch checkpoints ({'g_ema': state_dict, 'latent_avg': w}) from our Generator,
with rosinality's names and shapes (reference §4.1-§4.2)."""
from __future__ import annotations

import argparse
from typing import Any

import torch


def rosinality_state(G: torch.nn.Module) -> dict:
    sd = {k: v.detach().clone() for k, v in G.state_dict().items()}
    out = {}
    for i in range(G.config.mapping_layers):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    out["input.input"] = sd["synthesis.b4.const"][None]

    def styled(theirs: str, ours: str, torgb: bool = False) -> None:
        out[f"{theirs}.conv.weight"] = sd[f"{ours}.weight"][None]
        out[f"{theirs}.conv.modulation.weight"] = sd[f"{ours}.affine.weight"]
        out[f"{theirs}.conv.modulation.bias"] = sd[f"{ours}.affine.bias"]
        if torgb:
            out[f"{theirs}.bias"] = sd[f"{ours}.bias"].reshape(1, -1, 1, 1)
        else:
            out[f"{theirs}.noise.weight"] = sd[f"{ours}.noise_strength"].reshape(1)
            out[f"{theirs}.activate.bias"] = sd[f"{ours}.bias"]
            out[f"{theirs}.conv.blur.kernel"] = torch.ones(4, 4) / 4  # constants rosinality keeps as buffers

    styled("conv1", "synthesis.b4.conv1")
    styled("to_rgb1", "synthesis.b4.torgb", torgb=True)
    out["noises.noise_0"] = sd["synthesis.b4.conv1.noise_const"][None, None]
    for k, res in enumerate(G.config.block_resolutions[1:]):
        styled(f"convs.{2 * k}", f"synthesis.b{res}.conv0")
        styled(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1")
        styled(f"to_rgbs.{k}", f"synthesis.b{res}.torgb", torgb=True)
        out[f"to_rgbs.{k}.upsample.kernel"] = torch.ones(4, 4) / 16
        out[f"noises.noise_{2 * k + 1}"] = sd[f"synthesis.b{res}.conv0.noise_const"][None, None]
        out[f"noises.noise_{2 * k + 2}"] = sd[f"synthesis.b{res}.conv1.noise_const"][None, None]
    return out


def write_rosinality_checkpoint(path: Any, G: torch.nn.Module, latent_avg: bool = True,
                                training_keys: bool = False) -> None:
    ckpt: dict[str, Any] = {"g_ema": rosinality_state(G)}
    if latent_avg:
        ckpt["latent_avg"] = G.mapping.w_avg.detach().clone()
    if training_keys:  # what rosinality's train.py saves: no latent_avg, and argparse args
        ckpt["g"] = rosinality_state(G)
        ckpt["args"] = argparse.Namespace(size=G.img_resolution, n_mlp=G.config.mapping_layers, channel_multiplier=2)
        ckpt["ada_aug_p"] = 0.0
    torch.save(ckpt, path)
