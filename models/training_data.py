"""A folder of images as training data: found, checked, cropped square and resized to the model's resolution.

Cropping matters more than it looks: for non-square images (portraits, full-body art) a fixed crop — the top of
the picture, where the face is — trains far better than random crops, which showed D a different framing each
time and made runs slow and poor. So `top` is the default; `random` exists for comparison.
Bad files are reported and left out, never fatal, unless nothing usable is left.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
CROPS = ("top", "center", "random")
# Fixed crops are decoded once and kept; beyond this the images are decoded again each time they are drawn.
CACHE_BYTES = 2 * 2**30


class DatasetError(Exception):
    """No usable training images; the message says what to fix."""


@dataclass
class DatasetReport:
    folder: Path
    resolution: int
    used: list[Path] = field(default_factory=list)
    corrupt: list[tuple[Path, str]] = field(default_factory=list)
    tiny: list[tuple[Path, tuple[int, int]]] = field(default_factory=list)
    upscaled: int = 0
    non_square: int = 0

    def lines(self) -> list[str]:
        out = [f"dataset {self.folder}: {len(self.used)} usable image(s) at {self.resolution} px"]
        if self.non_square:
            out.append(f"  {self.non_square} non-square image(s) will be cropped square")
        if self.upscaled:
            out.append(f"  {self.upscaled} image(s) are smaller than {self.resolution} px and will be upscaled")
        for path, (w, h) in self.tiny[:10]:
            out.append(f"  skipped {path.name}: {w}×{h} is too small (need at least {min_side(self.resolution)} px "
                       "on the short side)")
        if len(self.tiny) > 10:
            out.append(f"  ... and {len(self.tiny) - 10} more too-small images")
        for path, why in self.corrupt[:10]:
            out.append(f"  skipped {path.name}: cannot be read ({why})")
        if len(self.corrupt) > 10:
            out.append(f"  ... and {len(self.corrupt) - 10} more unreadable files")
        return out


def min_side(resolution: int) -> int:
    """Below half the model's resolution an upscaled image is mostly blur: D would learn that blur is real."""
    return max(8, resolution // 2)


def crop_box(width: int, height: int, crop: str, rng: random.Random | None = None) -> tuple[int, int, int, int]:
    side = min(width, height)
    left_centre, top_centre = (width - side) // 2, (height - side) // 2
    if crop == "top":
        return left_centre, 0, left_centre + side, side
    if crop == "center":
        return left_centre, top_centre, left_centre + side, top_centre + side
    if crop == "random":
        rng = rng or random
        left, top = rng.randint(0, width - side), rng.randint(0, height - side)
        return left, top, left + side, top + side
    raise ValueError(f"unknown crop {crop!r}; use one of {', '.join(CROPS)}")


def scan_folder(folder: Path, resolution: int) -> DatasetReport:
    if not folder.is_dir():
        raise DatasetError(f"--data {folder} is not a folder: point it at a folder of .png/.jpg images")
    report = DatasetReport(folder, resolution)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    for path in files:
        try:
            with Image.open(path) as image:
                image.verify()      # catches truncated and corrupt files without a full decode
            with Image.open(path) as image:
                width, height = ImageOps.exif_transpose(image).size
        except Exception as error:   # PIL raises many types for bad files; any of them means "skip this file"
            report.corrupt.append((path, f"{type(error).__name__}: {error}"[:120]))
            continue
        if min(width, height) < min_side(resolution):
            report.tiny.append((path, (width, height)))
            continue
        report.upscaled += min(width, height) < resolution
        report.non_square += width != height
        report.used.append(path)
    if not report.used:
        found = len(files)
        why = (f"found {found} image file(s), none usable: {len(report.corrupt)} unreadable, {len(report.tiny)} "
               f"smaller than {min_side(resolution)} px" if found else
               f"found no {'/'.join(IMAGE_SUFFIXES)} files")
        raise DatasetError(f"no training images in {folder}: {why}. Put at least a few dozen face images of "
                           f"{resolution}×{resolution} px or larger there.")
    return report


class ImageFolderDataset:
    """Images as float tensors in [-1, 1], [3, R, R]; fixed crops are decoded once."""

    def __init__(self, report: DatasetReport, crop: str = "top", seed: int = 0):
        if crop not in CROPS:
            raise ValueError(f"unknown crop {crop!r}; use one of {', '.join(CROPS)}")
        self.paths = list(report.used)
        self.resolution = report.resolution
        self.crop = crop
        self.rng = random.Random(seed)
        self.cache: dict[int, np.ndarray] = {}
        per_image = 3 * self.resolution ** 2
        self.cacheable = crop != "random" and per_image * len(self.paths) <= CACHE_BYTES

    def __len__(self) -> int:
        return len(self.paths)

    def image_uint8(self, index: int) -> np.ndarray:
        if index in self.cache:
            return self.cache[index]
        try:
            with Image.open(self.paths[index]) as image:
                image = ImageOps.exif_transpose(image)
                if image.mode != "RGB":
                    rgba = image.convert("RGBA")
                    image = Image.new("RGB", rgba.size, (255, 255, 255))
                    image.paste(rgba, mask=rgba.getchannel("A"))
                image = image.crop(crop_box(*image.size, self.crop, self.rng))
                image = image.resize((self.resolution, self.resolution), Image.LANCZOS)
                pixels = np.asarray(image, dtype=np.uint8)
        except Exception:
            # A file that changed or broke after the scan: use a neighbour rather than stop a long run.
            return self.image_uint8((index + 1) % len(self.paths))
        if self.cacheable:
            self.cache[index] = pixels
        return pixels

    def batch(self, indices: list[int]) -> torch.Tensor:
        pixels = np.stack([self.image_uint8(i) for i in indices])
        return torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.batch(torch.randint(len(self.paths), [n], generator=generator).tolist())


# -- demo data: a sixth kind of face ----------------------------------------------------------------
# The demo zoo's renderer (models/procedural.py) draws five domains; the fine-tuning demo needs a sixth the zoo
# has never seen. Robots read the same identity traits from z (face shape, eye spacing, mouth width, colours),
# so a robot and a human drawn from one z share their layout — as fine-tunes of one ancestor do.

def render_robot(z: np.ndarray, size: int = 64) -> np.ndarray:
    """A robot face for latent z (≥ 18 entries) as uint8 [size, size, 3]; deterministic."""
    from PIL import ImageDraw

    from models.procedural import FaceTraits, SUPERSAMPLE, _background, _hsv, _rgb255

    t = FaceTraits.from_z(z)
    scale = size * SUPERSAMPLE
    image = Image.new("RGB", (scale, scale), _rgb255(_background(t)))
    draw = ImageDraw.Draw(image)
    px = lambda *xy: [v * scale for v in xy]  # noqa: E731 — unit coordinates to pixels
    cx = 0.5 + 0.06 * (t.shift_x - 0.5)
    half_w, top, bottom = 0.2 + 0.07 * t.face_width, 0.22 - 0.04 * t.face_height, 0.78 + 0.04 * t.face_height
    paint = _hsv(t.hair_hue, 0.15 + 0.45 * t.hair_value, 0.5 + 0.35 * t.tone_value)
    dark = tuple(0.45 * c for c in paint)
    led = _hsv(t.eye_hue, 0.9, 1.0)
    # Neck and shoulders plate, then the antenna behind the head.
    draw.rectangle(px(cx - 0.08, bottom - 0.02, cx + 0.08, 0.92), fill=_rgb255(dark))
    draw.rectangle(px(cx - 0.34, 0.9, cx + 0.34, 1.0), fill=_rgb255(dark))
    antenna_x = cx + (0.08 if t.side > 0.5 else -0.08) * t.ear_size
    draw.line(px(antenna_x, top, antenna_x, top - 0.1), fill=_rgb255(dark), width=max(1, scale // 48))
    r = 0.02 + 0.015 * t.ear_size
    draw.ellipse(px(antenna_x - r, top - 0.1 - r, antenna_x + r, top - 0.1 + r), fill=_rgb255(led))
    # Bolt ears, the head, a darker visor band.
    for sign in (-1, 1):
        ex = cx + sign * (half_w + 0.02)
        draw.rectangle(px(ex - 0.03, 0.45, ex + 0.03, 0.57), fill=_rgb255(dark))
    draw.rounded_rectangle(px(cx - half_w, top, cx + half_w, bottom), radius=int(scale * (0.03 + 0.08 * t.smile)),
                           fill=_rgb255(paint))
    eye_y = 0.43 + 0.04 * (t.tilt - 0.5)
    draw.rectangle(px(cx - half_w + 0.03, eye_y - 0.07, cx + half_w - 0.03, eye_y + 0.07), fill=_rgb255(dark))
    spacing, eye_r = 0.07 + 0.035 * t.eye_spacing, 0.03 + 0.02 * t.eye_size
    for sign in (-1, 1):
        ex = cx + sign * spacing
        draw.ellipse(px(ex - eye_r, eye_y - eye_r, ex + eye_r, eye_y + eye_r), fill=_rgb255(led))
    # Grille mouth: its width follows the mouth trait.
    mouth_w, mouth_y = 0.06 + 0.07 * t.mouth_width, 0.64 + 0.03 * t.face_height
    draw.rectangle(px(cx - mouth_w, mouth_y - 0.035, cx + mouth_w, mouth_y + 0.035), fill=_rgb255(dark))
    for k in range(1, 5):
        x = cx - mouth_w + 2 * mouth_w * k / 5
        draw.line(px(x, mouth_y - 0.035, x, mouth_y + 0.035), fill=_rgb255(paint), width=max(1, scale // 96))
    return np.asarray(image.resize((size, size), Image.BOX), dtype=np.uint8)


def write_demo_folder(folder: Path, domain: str, count: int, size: int = 64, seed: int = 0) -> list[Path]:
    """`count` PNG faces of `domain` ('robot', or one of the procedural renderer's) into `folder`."""
    from models.procedural import DOMAINS, TRAIT_DIMS, render_face
    if domain != "robot" and domain not in DOMAINS:
        raise ValueError(f"unknown demo domain {domain!r}; use robot or one of {', '.join(DOMAINS)}")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    paths = []
    for index in range(count):
        z = rng.randn(max(TRAIT_DIMS, 18))
        pixels = render_robot(z, size) if domain == "robot" else render_face(z, domain, size)
        path = folder / f"{domain}{index:05d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(prog="python -m models.training_data",
                                     description="write a folder of procedurally drawn demo faces")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--domain", default="robot")
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"wrote {len(write_demo_folder(args.folder, args.domain, args.count, args.size, args.seed))} images "
          f"to {args.folder}")
