"""Model files people actually have, read safely: NVIDIA PyTorch and TensorFlow pickles, rosinality checkpoints,
and our own safetensors. Nothing in a model file is ever run (see safe_pickle).

    read_network(path) -> NetworkFile        any supported file → settings + weights in our names (torch-free
                                             except rosinality checkpoints)
    load_generator(path) -> Generator        the same, built (eval mode, fp32, CPU)
    convert(path, out) -> NetworkFile        write our safetensors
    cache.converted_path(path) -> path       convert once, cached by the file's sha256
    cache.cached_metadata(path) -> dict|None the converted file's metadata, without torch

Importing this package does not import torch.
"""
from __future__ import annotations

import os

from models.formats.errors import ModelFileError
from models.formats.network_file import NetworkFile

__all__ = ["ModelFileError", "NetworkFile", "read_network", "load_generator", "convert"]


def read_network(path: str | os.PathLike) -> NetworkFile:
    from models.formats.detect import read_network as read
    return read(path)


def load_generator(path: str | os.PathLike):
    from models.formats.build import build_generator
    return build_generator(read_network(path))


def convert(path: str | os.PathLike | NetworkFile, out: str | os.PathLike, lineage: dict | None = None,
            source: dict | None = None) -> NetworkFile:
    """Write a model file (or one already read) as our safetensors at `out`. Lineage: given, else the file's own
    (our files), else derived from its noise maps (NetworkFile.default_lineage)."""
    from models.formats.build import build_generator
    from models.weights import save_generator
    net = path if isinstance(path, NetworkFile) else read_network(path)
    G = build_generator(net)
    save_generator(G, out, lineage=lineage or net.lineage or net.default_lineage(),
                   source={**net.source, **(source or {})})
    return net
