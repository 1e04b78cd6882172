"""Worker-side facade: what Celery task bodies call to render, blend and encode.

Models are loaded once per worker process and kept (keyed by file path plus mtime and size, so a replaced file
is reloaded). Nothing here touches CUDA at import time: Celery's prefork pool forks children from the parent, and
a CUDA context does not survive a fork, so the device is chosen on first use, inside the child.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict

import numpy as np
import torch
from PIL import Image

from models.blend import BlendCache, blend_generators, normalise_recipe
from models.networks import Generator
from models.projector import ProjectionSchedule, prepare_target, project
from models.render import render_seed, render_ws, z_for_seed
from models.weights import load_generator

MODEL_CACHE_ENTRIES = int(os.environ.get("DNEBOT_MODEL_CACHE", "8"))
BLEND_CACHE_ENTRIES = int(os.environ.get("DNEBOT_BLEND_CACHE", "4"))

_device: torch.device | None = None
_lock = threading.Lock()
_models: OrderedDict[tuple, Generator] = OrderedDict()
_blends = BlendCache(BLEND_CACHE_ENTRIES)


def device() -> torch.device:
    """cuda if available, else cpu; DNEBOT_DEVICE overrides (e.g. cuda:1 for one worker per GPU)."""
    global _device
    if _device is None:
        wanted = os.environ.get("DNEBOT_DEVICE")
        _device = torch.device(wanted if wanted else ("cuda" if torch.cuda.is_available() else "cpu"))
    return _device


def model_key(path: str | os.PathLike) -> tuple[str, int, int]:
    """Identity of a model file's current contents: a rewritten file gets a new key and is reloaded."""
    real = os.path.realpath(path)
    stat = os.stat(real)
    return real, stat.st_mtime_ns, stat.st_size


def load_model(path: str | os.PathLike) -> Generator:
    """The generator in `path`, on the worker's device, loaded once per process (LRU of MODEL_CACHE_ENTRIES)."""
    key = model_key(path)
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
    G = load_generator(key[0], device=device()).requires_grad_(False)
    with _lock:
        for stale in [k for k in _models if k[0] == key[0]]:
            del _models[stale]          # an older version of the same file
        _models[key] = G
        while len(_models) > MODEL_CACHE_ENTRIES:
            _models.popitem(last=False)
    return G


def clear_caches() -> None:
    """Forget loaded and blended models (tests; a worker that wants its memory back)."""
    with _lock:
        _models.clear()
    global _blends
    _blends = BlendCache(BLEND_CACHE_ENTRIES)


def render_waifu(entry_path: str, seed: int, psi: float, noise_mode: str = "const",
                 class_index: int | None = None) -> np.ndarray:
    """A face of the model for a seed, exactly as NVIDIA's generate.py: np.uint8 [H, W, 3]."""
    return render_seed(load_model(entry_path), seed, psi=psi, noise_mode=noise_mode, class_index=class_index)


@torch.no_grad()
def base_ws_for_seed(base_path: str, seed: int, psi: float) -> np.ndarray:
    """The seed's z through the base model's mapping, truncated toward its w_avg: np.float32 [num_ws, w_dim].

    Same arithmetic as render_waifu's mapping step, so rendering these ws with the base model alone reproduces
    /waifu for the seed and psi bit for bit. Conditional base models get the zero label, as generate.py does.
    """
    G = load_model(base_path)
    z = torch.from_numpy(z_for_seed(seed, G.z_dim)).to(device())
    c = torch.zeros([1, G.c_dim], device=device()) if G.c_dim else None
    ws = G.mapping(z, c, truncation_psi=psi)
    return ws[0].cpu().numpy().astype(np.float32)


def blended_model(recipe: list[tuple[str, float]]) -> Generator:
    """The generator for a recipe of (model path, fraction); a single model is returned as loaded, unblended."""
    keyed = normalise_recipe((model_key(path), fraction) for path, fraction in recipe)
    if len(keyed) == 1:
        return load_model(keyed[0][0][0])

    def build() -> Generator:
        # Which models may be blended is decided before queueing (tasks.blend_recipe: one family, one
        # architecture); a lineage mismatch inside a family is reported in the job's caption, not here.
        paths = [key[0] for key, _ in keyed]
        parents = [(os.path.basename(path), load_model(path), fraction)
                   for path, (_, fraction) in zip(paths, keyed)]
        return blend_generators(parents)

    return _blends.get(keyed, build)


def render_blend(recipe: list[tuple[str, float]], ws: np.ndarray) -> np.ndarray:
    """Render ws ([num_ws, w_dim], from base_ws_for_seed or a saved /encode) with the blended model: uint8 HWC.

    Only the blend's synthesis network is used (ws come from the base model's W space), noise_mode const.
    """
    return render_ws(blended_model(recipe), ws, noise_mode="const")


def encode_photo(base_path: str, photo_rgb_uint8: np.ndarray, steps: int,
                 seed: int = 303) -> tuple[np.ndarray, np.ndarray]:
    """Project a photo into the base model's W space → (ws float32 [num_ws, w_dim], projection uint8 HWC)."""
    G = load_model(base_path)
    projection = project(G, photo_rgb_uint8, schedule=ProjectionSchedule(steps=steps), seed=seed)
    return projection.ws, projection.image


def photo_beside_projection(photo_rgb_uint8: np.ndarray, projection_uint8: np.ndarray,
                            min_height: int = 256, gap: int = 8) -> np.ndarray:
    """The photo as the projector saw it (square crop at model resolution) left, the projection right: uint8 HWC.

    Both are enlarged by the same whole factor with nearest-neighbour, so small demo models' pixels stay honest.
    """
    resolution = projection_uint8.shape[0]
    target = prepare_target(photo_rgb_uint8, resolution)
    scale = max(1, -(-min_height // resolution))
    size = resolution * scale
    enlarge = lambda rgb: np.asarray(Image.fromarray(rgb).resize((size, size), Image.NEAREST))
    canvas = np.full((size, 2 * size + gap, 3), 255, np.uint8)
    canvas[:, :size] = enlarge(target)
    canvas[:, size + gap:] = enlarge(projection_uint8)
    return canvas
