"""Making an image fit Discord's upload limit (training grids, and job results in bot/posting.py), and telling a
finished image file from one still being written.

Grids are large (7680×4096 is normal; as PNG often 20-40 MiB) and Discord refuses uploads over the channel's limit
(10 MiB for most guilds). The ladder: the file as it is when it fits, then a high-quality JPEG, then a lower
quality, then halving the pixel count until it fits. Faces survive JPEG at q85+ far better than a downscale, so
re-encoding comes first.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
JPEG_SOI, JPEG_EOI = b"\xff\xd8", b"\xff\xd9"
# Multipart framing and the JSON payload travel in the same request as the file.
REQUEST_OVERHEAD_BYTES = 16 * 1024
JPEG_QUALITIES = (92, 85)
DOWNSCALE_QUALITY = 88
MIN_SIDE = 64


class ImageIncomplete(Exception):
    """The file is not (yet) a whole image: still being written, or truncated for good."""


@dataclass(frozen=True)
class FittedImage:
    data: bytes
    filename: str
    width: int
    height: int
    encoding: str            # "original PNG", "JPEG q92", "JPEG q88 downscaled"
    original_bytes: int
    original_width: int
    original_height: int

    @property
    def downscaled(self) -> bool:
        return self.width != self.original_width

    def describe(self) -> str:
        return (f"{self.width}×{self.height} {self.encoding}, {format_bytes(len(self.data))} "
                f"(file {self.original_width}×{self.original_height}, {format_bytes(self.original_bytes)})")


def format_bytes(size: int) -> str:
    return f"{size / 2**20:.2f} MiB" if size >= 2**20 else f"{size / 1024:.1f} KiB"


def parse_size(text: str) -> int:
    """'10MiB', '25MB', '8388608' → bytes."""
    units = {"kib": 2**10, "mib": 2**20, "gib": 2**30, "kb": 10**3, "mb": 10**6, "gb": 10**9, "b": 1, "": 1}
    cleaned = text.strip().lower().replace(" ", "")
    number = cleaned.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = cleaned[len(number):]
    if unit not in units or not number:
        raise ValueError(f"cannot read size {text!r}: write it as bytes or with a unit, e.g. 10MiB or 25MB")
    return int(float(number) * units[unit])


def read_complete_image(path: Path) -> tuple[bytes, Image.Image]:
    """The file's bytes and its decoded image, or ImageIncomplete when the writer has not finished it.

    PIL writes a PNG's IEND chunk last (and a JPEG's EOI marker last), so a file without it is still being
    written; a full decode then catches a file that is complete but damaged.
    """
    data = path.read_bytes()
    if data.startswith(PNG_SIGNATURE):
        if not data.endswith(PNG_IEND):
            raise ImageIncomplete(f"{path.name}: PNG has no IEND chunk yet ({format_bytes(len(data))} so far)")
    elif data.startswith(JPEG_SOI):
        if not data.rstrip(b"\x00").endswith(JPEG_EOI):
            raise ImageIncomplete(f"{path.name}: JPEG has no end marker yet")
    else:
        raise ImageIncomplete(f"{path.name}: not a PNG or JPEG file (yet)")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ImageIncomplete(f"{path.name}: does not decode: {error}") from error
    return data, image


def _rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    # 4:4:4 chroma keeps the thin edges between grid cells and the colour of small faces clean.
    image.save(out, format="JPEG", quality=quality, subsampling=0 if quality >= 90 else 2)
    return out.getvalue()


def fit_upload(data: bytes, image: Image.Image, filename: str, limit_bytes: int) -> FittedImage:
    """The best version of the image whose bytes stay under limit_bytes, with room for the request around it."""
    budget = limit_bytes - REQUEST_OVERHEAD_BYTES
    if budget <= 0:
        raise ValueError(f"upload limit {limit_bytes} bytes leaves no room for an image")
    width, height = image.size
    original = dict(original_bytes=len(data), original_width=width, original_height=height)
    stem = Path(filename).stem
    if len(data) <= budget:
        kind = "PNG" if data.startswith(PNG_SIGNATURE) else "JPEG"
        return FittedImage(data, filename, width, height, f"original {kind}", **original)
    rgb = _rgb(image)
    for quality in JPEG_QUALITIES:
        encoded = _jpeg(rgb, quality)
        if len(encoded) <= budget:
            return FittedImage(encoded, f"{stem}.jpg", width, height, f"JPEG q{quality}", **original)
    scaled = rgb
    while min(scaled.size) > MIN_SIDE:
        # Halve the pixel count each step: JPEG size falls roughly in proportion.
        size = (max(1, round(scaled.width / 2**0.5)), max(1, round(scaled.height / 2**0.5)))
        scaled = rgb.resize(size, Image.LANCZOS)
        encoded = _jpeg(scaled, DOWNSCALE_QUALITY)
        if len(encoded) <= budget:
            return FittedImage(encoded, f"{stem}.jpg", *scaled.size, f"JPEG q{DOWNSCALE_QUALITY} downscaled",
                               **original)
    raise ValueError(f"{filename} does not fit in {format_bytes(limit_bytes)} even at {scaled.width}×{scaled.height}")
