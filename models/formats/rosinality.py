"""rosinality/stylegan2-pytorch checkpoints (`.pt`) → NetworkFile (reference §4).

Loaded with `torch.load(weights_only=True)`, which admits tensors and plain containers only; `argparse.Namespace`
(the `args` that rosinality's train.py stores) is the one class added, as it holds nothing but attribute values.
rosinality's converter already flipped the up-conv kernels, so only names and shapes change here (§4.2).
"""
from __future__ import annotations

import argparse
import math
import pickle
import re

import numpy as np

from models.formats.errors import ModelFileError
from models.formats.network_file import NetworkFile
from models.formats.safe_pickle import RefusedGlobal

W_AVG_SAMPLES = 10_000


def _load(path: str) -> dict:
    import torch
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's weights_only refusal is a paragraph; the global it refused is the part a user needs
        m = re.search(r"GLOBAL ([\w.]+)\.(\w+)", str(e))
        if m:
            raise ModelFileError(path, str(RefusedGlobal(m.group(1), m.group(2)))) from None
        lines = [line for line in str(e).splitlines() if line.strip()]
        raise ModelFileError(path, "refused to load: the checkpoint holds an object that is not plain weights "
                                   f"({lines[-1] if lines else type(e).__name__}); nothing in the file was run") \
            from None
    except (RuntimeError, EOFError, ValueError, OSError) as e:
        raise ModelFileError(path, f"the checkpoint is truncated or damaged ({str(e).splitlines()[0][:120]})") \
            from None


def _lookup(sd: dict, missing: list, key: str):
    if key not in sd:
        missing.append(key)
        return None
    return sd[key].detach().float().numpy()


def _channels_config(channels: dict[int, int], path: str) -> tuple[int, int]:
    """(channel_base, channel_max) reproducing rosinality's per-resolution channels, or a clear refusal."""
    for channel_max in sorted(set(channels.values()), reverse=True):
        for base in sorted({c * r for r, c in channels.items()}):
            if all(min(base // r, channel_max) == c for r, c in channels.items()):
                return base, channel_max
    raise ModelFileError(path, f"its channel counts {channels} match no NVIDIA channel_base/channel_max setting")


def convert_state(sd: dict, path: str) -> tuple[dict, dict[str, np.ndarray]]:
    keys = set(sd)
    n_mlp = sum(1 for k in keys if re.fullmatch(r"style\.\d+\.weight", k))
    n_rgbs = sum(1 for k in keys if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k))
    missing: list[str] = []
    tensors: dict[str, np.ndarray] = {}
    for i in range(n_mlp):
        tensors[f"mapping.fc{i}.weight"] = _lookup(sd, missing, f"style.{i + 1}.weight")
        tensors[f"mapping.fc{i}.bias"] = _lookup(sd, missing, f"style.{i + 1}.bias")
    const = _lookup(sd, missing, "input.input")
    if const is not None:
        tensors["synthesis.b4.const"] = const[0]

    def styled(ours: str, theirs: str) -> None:
        w = _lookup(sd, missing, f"{theirs}.conv.weight")
        if w is not None:
            tensors[f"{ours}.weight"] = w[0]
        tensors[f"{ours}.affine.weight"] = _lookup(sd, missing, f"{theirs}.conv.modulation.weight")
        tensors[f"{ours}.affine.bias"] = _lookup(sd, missing, f"{theirs}.conv.modulation.bias")
        if not ours.endswith("torgb"):
            s = _lookup(sd, missing, f"{theirs}.noise.weight")
            tensors[f"{ours}.noise_strength"] = None if s is None else s.reshape(())
            tensors[f"{ours}.bias"] = _lookup(sd, missing, f"{theirs}.activate.bias")
        else:
            b = _lookup(sd, missing, f"{theirs}.bias")
            tensors[f"{ours}.bias"] = None if b is None else b.reshape(-1)

    def noise(ours: str, index: int) -> None:
        n = _lookup(sd, missing, f"noises.noise_{index}")
        tensors[f"{ours}.noise_const"] = None if n is None else n.reshape(n.shape[-2:])

    styled("synthesis.b4.conv1", "conv1")
    styled("synthesis.b4.torgb", "to_rgb1")
    noise("synthesis.b4.conv1", 0)
    for k in range(n_rgbs):
        res = 2 ** (k + 3)
        styled(f"synthesis.b{res}.conv0", f"convs.{2 * k}")
        styled(f"synthesis.b{res}.conv1", f"convs.{2 * k + 1}")
        styled(f"synthesis.b{res}.torgb", f"to_rgbs.{k}")
        noise(f"synthesis.b{res}.conv0", 2 * k + 1)
        noise(f"synthesis.b{res}.conv1", 2 * k + 2)
    if n_mlp == 0:
        missing.insert(0, "style.1.weight")
    if missing:
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        raise ModelFileError(path, f"the checkpoint's g_ema is missing weights {', '.join(missing[:4])}{more}")

    resolution = 2 ** (n_rgbs + 2)
    channels = {4: tensors["synthesis.b4.const"].shape[0]}
    channels.update({2 ** (k + 3): tensors[f"synthesis.b{2 ** (k + 3)}.conv1.weight"].shape[0] for k in range(n_rgbs)})
    channel_base, channel_max = _channels_config(channels, path)
    style_dim = tensors["mapping.fc0.weight"].shape[1]
    config = dict(z_dim=style_dim, w_dim=tensors[f"mapping.fc{n_mlp - 1}.weight"].shape[0], c_dim=0,
                  img_resolution=resolution, img_channels=tensors["synthesis.b4.torgb.weight"].shape[0],
                  mapping_layers=n_mlp, channel_base=channel_base, channel_max=channel_max, architecture="skip",
                  conv_clamp=None, num_fp16_res=0)
    if math.log2(resolution) != int(math.log2(resolution)):
        raise ModelFileError(path, f"resolution {resolution} is not a power of two")
    return config, tensors


def _estimate_w_avg(net: NetworkFile) -> np.ndarray:
    """rosinality's train.py keeps no latent_avg: measure the mean w as its generate.py does, but seeded."""
    import torch
    from models.formats.build import build_generator
    G = build_generator(net)
    z = torch.from_numpy(np.random.RandomState(0).randn(W_AVG_SAMPLES, G.z_dim))
    with torch.no_grad():
        return G.mapping(z)[:, 0].mean(dim=0).numpy()


def read(path: str) -> NetworkFile:
    ckpt = _load(path)
    if not isinstance(ckpt, dict) or "g_ema" not in ckpt:
        keys = ", ".join(map(str, list(ckpt)[:6])) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ModelFileError(path, f"a torch checkpoint without 'g_ema' (it holds: {keys}); not a rosinality "
                                   "StyleGAN2 checkpoint")
    config, tensors = convert_state(ckpt["g_ema"], path)
    source = {"format": "rosinality checkpoint", "checkpoint_keys": sorted(map(str, ckpt))}
    net = NetworkFile(path=path, format="rosinality checkpoint", config=config, tensors=tensors, source=source)
    if "latent_avg" in ckpt:
        tensors["mapping.w_avg"] = ckpt["latent_avg"].detach().float().numpy().reshape(-1)
    else:
        tensors["mapping.w_avg"] = np.zeros(config["w_dim"], np.float32)
        tensors["mapping.w_avg"] = _estimate_w_avg(net)
        source["w_avg"] = f"estimated from {W_AVG_SAMPLES} z (RandomState(0)); the checkpoint has no latent_avg"
    return net
