"""From seeds to pixels with NVIDIA generate.py's conventions (reference §2.10).

A seed means what it means in generate.py: z = RandomState(seed).randn(1, z_dim), so a face shared by a user is
reproducible with NVIDIA's tools and theirs with ours.
"""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

MAX_SEED = 2 ** 32 - 1  # numpy's RandomState accepts seeds in [0, 2**32 - 1]


def z_for_seed(seed: int, z_dim: int) -> np.ndarray:
    """Latent z for a seed: float64 [1, z_dim], exactly generate.py's draw."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
    return np.random.RandomState(int(seed)).randn(1, z_dim)


def to_uint8(img: torch.Tensor | np.ndarray) -> np.ndarray:
    """[N,C,H,W] float in nominal [-1,1] → uint8 [N,H,W,C] as generate.py: x·127.5+128, clamp, truncate."""
    x = torch.as_tensor(img).detach().to(device="cpu", dtype=torch.float32)
    assert x.ndim == 4, f"expected an image batch [N,C,H,W], got shape {tuple(x.shape)}"
    # Same op order and precision as generate.py, so edge values land in the same bucket.
    return (x.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()


def png_bytes(rgb_uint8_hwc: np.ndarray) -> bytes:
    """Encode an HWC uint8 image (1, 3 or 4 channels) as PNG; the same pixels always give the same bytes."""
    arr = np.asarray(rgb_uint8_hwc)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected uint8 [H,W,1|3|4], got {arr.dtype} {arr.shape}")
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[arr.shape[2]]
    image = Image.fromarray(arr[:, :, 0] if mode == "L" else arr, mode)
    buf = io.BytesIO()
    # Fixed compression and no metadata chunks: deterministic bytes for identical pixels.
    image.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _device_of(G: torch.nn.Module) -> torch.device:
    return next(G.parameters()).device


def class_label(G, class_index: int | None, batch: int = 1) -> torch.Tensor | None:
    """One-hot label for conditional models, as generate.py's --class; None for unconditional ones."""
    if G.c_dim == 0:
        if class_index is not None:
            raise ValueError("this model has no classes; leave class_index out")
        return None
    if class_index is None:
        raise ValueError(f"this model is conditional: pick a class_index between 0 and {G.c_dim - 1}")
    if not 0 <= class_index < G.c_dim:
        raise ValueError(f"class_index must be between 0 and {G.c_dim - 1}, got {class_index}")
    c = torch.zeros([batch, G.c_dim], device=_device_of(G))
    c[:, class_index] = 1
    return c


@torch.no_grad()
def render_seed(G, seed: int, psi: float = 1.0, noise_mode: str = "const",
                class_index: int | None = None) -> np.ndarray:
    """One image for a seed: uint8 [H, W, C]."""
    z = torch.from_numpy(z_for_seed(seed, G.z_dim)).to(_device_of(G))
    img = G(z, class_label(G, class_index), truncation_psi=psi, noise_mode=noise_mode)
    return to_uint8(img)[0]


@torch.no_grad()
def render_ws(G, ws: torch.Tensor | np.ndarray, noise_mode: str = "const") -> np.ndarray:
    """One image for given ws ([num_ws, w_dim] or [1, num_ws, w_dim]): uint8 [H, W, C]."""
    ws = torch.as_tensor(ws, dtype=torch.float32, device=_device_of(G))
    if ws.ndim == 2:
        ws = ws.unsqueeze(0)
    if ws.shape != (1, G.num_ws, G.w_dim):
        raise ValueError(f"ws must be [{G.num_ws}, {G.w_dim}] for this model, got {tuple(ws.shape)}")
    return to_uint8(G.synthesis(ws, noise_mode=noise_mode))[0]
