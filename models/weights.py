"""Our model file format: safetensors holding the ADA-PT state_dict, plus metadata saying what the model is.

A safetensors file cannot run code on load, and its header (8-byte little-endian length + JSON) can be read without
torch, which is how the bot side lists models. All metadata values are strings; structured ones are JSON.
"""
from __future__ import annotations

import json
import os
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from models.networks import Generator, GeneratorConfig

FORMAT = "dnebot-stylegan2"
FORMAT_VERSION = "1"
LINEAGE_KEYS = ("name", "fine_tuned_from", "ancestor")
# Constants derived from the config (recomputed at construction, as ADA-PT does); stored but never loaded.
DERIVED_SUFFIXES = (".resample_filter",)


def _check_lineage(lineage: dict) -> dict:
    missing = [k for k in LINEAGE_KEYS if k not in lineage]
    if missing:
        raise ValueError(f"lineage needs keys {list(LINEAGE_KEYS)}; missing {missing}")
    if not isinstance(lineage["name"], str) or not isinstance(lineage["ancestor"], str):
        raise ValueError("lineage 'name' and 'ancestor' must be strings")
    if lineage["fine_tuned_from"] is not None and not isinstance(lineage["fine_tuned_from"], str):
        raise ValueError("lineage 'fine_tuned_from' must be a model name or None")
    return dict(lineage)


def save_generator(G: Generator, path: str | os.PathLike, lineage: dict, source: dict | None = None) -> None:
    """Write G's full state_dict (fp32, CPU) and metadata; write-then-rename so readers never see half a file."""
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generator_config": json.dumps(G.config.to_dict(), sort_keys=True),
        "lineage": json.dumps(_check_lineage(lineage), sort_keys=True),
        "source": json.dumps(source or {}, sort_keys=True),
    }
    tensors = {k: v.detach().to(device="cpu", dtype=torch.float32).contiguous() for k, v in G.state_dict().items()}
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    save_file(tensors, tmp, metadata=metadata)
    # safetensors creates files readable by their owner only; a worker running as another user must read them.
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Metadata with JSON fields decoded: format, format_version (str); generator_config, lineage, source (dict)."""
    with safe_open(os.fspath(path), framework="pt") as f:
        raw = f.metadata() or {}
    if raw.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file (format={raw.get('format')!r}); "
                         "convert it with `dnebot convert` first")
    if raw.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format_version {raw.get('format_version')!r}; this dnebot reads "
                         f"version {FORMAT_VERSION}")
    out: dict[str, Any] = {"format": raw["format"], "format_version": raw["format_version"]}
    for key in ("generator_config", "lineage", "source"):
        out[key] = json.loads(raw.get(key) or "{}")
    return out


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> Generator:
    """Rebuild the Generator from the file's config and weights: eval mode, fp32 parameters."""
    meta = read_metadata(path)
    G = Generator(GeneratorConfig.from_dict(meta["generator_config"]))
    state = {k: v for k, v in load_file(os.fspath(path)).items() if not k.endswith(DERIVED_SUFFIXES)}
    expected = {k: v for k, v in G.state_dict().items() if not k.endswith(DERIVED_SUFFIXES)}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        raise ValueError(f"{path}: weights do not match its generator_config: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}, wrong shape {wrong[:5]}")
    G.load_state_dict(state, strict=False)
    return G.to(device).eval()
