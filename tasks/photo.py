"""Photo validation for /encode: cheap refusals before anything is queued, then a safe decode.

The bot imports this module, so it uses PIL and numpy only (no torch). Three checks, cheapest first:
`check_attachment` on Discord's attachment metadata (before the download), `validate_photo_bytes` on the
downloaded bytes (reads the header only: format and claimed size), and `decode_photo` on the worker (decodes,
applies EXIF orientation, converts to RGB).
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tasks.specs import InputError

MAX_PHOTO_BYTES = 20 * 1024 * 1024      # Discord's own attachment limit for most servers is 10-25 MiB
MAX_PHOTO_PIXELS = 40_000_000           # 40 MP: more than any phone camera; decoding it takes ~120 MB as RGB
MIN_PHOTO_SIDE = 16                     # below this there is no face to project
# Formats PIL decodes with well-exercised code (its JPEG opener also takes MPO, the JPEG variant many phones write).
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")
ACCEPTED_NAMES = "JPEG, PNG, WebP, GIF or BMP"
# Content types Discord reports for photos of those formats.
ACCEPTED_CONTENT_TYPES = ("image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/webp", "image/gif",
                          "image/bmp", "image/x-ms-bmp")


@dataclass(frozen=True)
class PhotoInfo:
    """What the header says, before a single pixel is decoded."""

    format: str
    width: int
    height: int
    mode: str
    size_bytes: int

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6


def _mb(size_bytes: int) -> str:
    return f"{size_bytes / (1024 * 1024):.1f} MB"


def _refuse_size(size_bytes: int) -> None:
    if size_bytes > MAX_PHOTO_BYTES:
        raise InputError(
            f"The photo is {_mb(size_bytes)}; the limit is {_mb(MAX_PHOTO_BYTES)}. "
            "Send a smaller file, for example the photo saved as a JPEG.")


def _refuse_dimensions(width: int, height: int) -> None:
    pixels = width * height
    if pixels > MAX_PHOTO_PIXELS:
        raise InputError(
            f"The photo is {width}×{height} pixels ({pixels / 1e6:.1f} megapixels); the limit is "
            f"{MAX_PHOTO_PIXELS / 1e6:.0f} megapixels. Downscale it (a face needs far less, 1024×1024 is plenty) "
            "and send it again.")
    if min(width, height) < MIN_PHOTO_SIDE:
        raise InputError(
            f"The photo is only {width}×{height} pixels. Send one at least {MIN_PHOTO_SIDE}×{MIN_PHOTO_SIDE}, "
            "ideally a face of 256 pixels or more.")


def check_attachment(content_type: str | None, size: int | None, width: int | None, height: int | None) -> None:
    """Refuse from Discord's attachment metadata alone, before downloading anything.

    Discord fills width/height only for images it could read; unknown values are left to the byte checks.
    """
    if content_type:
        kind = content_type.split(";")[0].strip().lower()
        if kind in ("image/heic", "image/heif"):
            raise InputError(
                f"HEIC photos are not supported. Send it as {ACCEPTED_NAMES} "
                "(on an iPhone: Settings → Camera → Formats → Most Compatible, or share it as JPEG).")
        if kind.startswith("image/") and kind not in ACCEPTED_CONTENT_TYPES:
            raise InputError(f"{kind} images are not supported. Send the photo as {ACCEPTED_NAMES}.")
        if kind not in ACCEPTED_CONTENT_TYPES:
            raise InputError(f"That attachment is {kind}, not a photo. Attach a {ACCEPTED_NAMES} image.")
    if size is not None:
        _refuse_size(size)
    if width is not None and height is not None:
        _refuse_dimensions(width, height)


def _open_header(data: bytes) -> Image.Image:
    """Open lazily: PIL reads the header (format, size, mode) and decodes nothing yet."""
    with warnings.catch_warnings():
        # Between MAX_IMAGE_PIXELS and twice it PIL only warns; our own pixel limit is far lower and is applied
        # by the caller, so the warning would only be noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
        except Image.DecompressionBombError:
            # Raised from the header alone when the claimed size is over 2 × MAX_IMAGE_PIXELS (~179 MP).
            raise InputError(
                f"The file claims to be an image of over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels "
                "(a decompression bomb or a damaged file), so it was not decoded. "
                f"Send a normal photo of at most {MAX_PHOTO_PIXELS / 1e6:.0f} megapixels.") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise InputError(
                f"That file is not an image I can read. Attach a photo as {ACCEPTED_NAMES}.") from None


def validate_photo_bytes(data: bytes) -> PhotoInfo:
    """Header-only checks on the downloaded bytes: size, format, claimed dimensions. Decodes no pixels."""
    _refuse_size(len(data))
    if not data:
        raise InputError(f"The file is empty. Attach a photo as {ACCEPTED_NAMES}.")
    image = _open_header(data)
    with image:
        width, height = image.size
        _refuse_dimensions(width, height)
        return PhotoInfo(format=image.format, width=width, height=height, mode=image.mode, size_bytes=len(data))


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode → RGB. Transparency is flattened onto white, as an image viewer shows it."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit / 32-bit greyscale (some PNGs): PIL's convert("L") clips instead of scaling.
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        grey = np.clip(values / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(np.stack([grey] * 3, axis=-1), "RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")   # L, 1, P, CMYK, YCbCr, LAB, HSV


def decode_photo(data: bytes) -> np.ndarray:
    """Validate, decode, apply EXIF orientation, convert to RGB → np.uint8 [H, W, 3].

    Animated images use their first frame.
    """
    validate_photo_bytes(data)
    image = _open_header(data)
    with image:
        try:
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError):
            # PIL's own wording ("image file is truncated (27 bytes not processed)") means nothing to a user.
            raise InputError(
                "The photo file is damaged or incomplete, so it could not be decoded. "
                "Send the original file again, without editing or cutting it.") from None
        upright = ImageOps.exif_transpose(image)   # phones store portraits sideways plus an orientation tag
        rgb = _to_rgb(upright)
        return np.asarray(rgb, dtype=np.uint8).copy()
