"""Photo validation for /encode: each refusal with its exact message, EXIF orientation, mode conversion."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tasks.photo import (InputError, MAX_PHOTO_BYTES, check_attachment, decode_photo, validate_photo_bytes)


def encoded(image: Image.Image, fmt: str, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


def gradient_rgb(width: int, height: int) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], axis=-1)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width×height, with one tiny IDAT: what a decompression bomb's header looks like."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def refusal(data: bytes) -> str:
    with pytest.raises(InputError) as caught:
        decode_photo(data)
    return str(caught.value)


def test_valid_jpeg_header_and_decode():
    data = encoded(gradient_rgb(120, 80), "JPEG", quality=95)
    info = validate_photo_bytes(data)
    assert (info.format, info.width, info.height, info.mode, info.size_bytes) == ("JPEG", 120, 80, "RGB", len(data))
    pixels = decode_photo(data)
    assert pixels.shape == (80, 120, 3) and pixels.dtype == np.uint8


def test_not_an_image():
    assert refusal(b"hello, this is a text file\n" * 10) == (
        "That file is not an image I can read. Attach a photo as JPEG, PNG, WebP, GIF or BMP.")


def test_empty_file():
    assert refusal(b"") == "The file is empty. Attach a photo as JPEG, PNG, WebP, GIF or BMP."


def test_over_20_mb():
    data = encoded(gradient_rgb(64, 64), "PNG") + b"\0" * MAX_PHOTO_BYTES
    assert refusal(data) == (
        f"The photo is {len(data) / 1048576:.1f} MB; the limit is 20.0 MB. "
        "Send a smaller file, for example the photo saved as a JPEG.")


def test_over_40_megapixels_from_header():
    data = png_header_only(8000, 6000)
    assert len(data) < 200
    assert refusal(data) == (
        "The photo is 8000×6000 pixels (48.0 megapixels); the limit is 40 megapixels. Downscale it (a face needs far "
        "less, 1024×1024 is plenty) and send it again.")


def test_decompression_bomb_header_is_refused_before_decoding():
    data = png_header_only(100_000, 100_000)   # claims 10 gigapixels in under 100 bytes
    message = (
        f"The file claims to be an image of over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels (a decompression "
        "bomb or a damaged file), so it was not decoded. Send a normal photo of at most 40 megapixels.")
    with pytest.raises(InputError) as caught:
        validate_photo_bytes(data)
    assert str(caught.value) == message


def test_truncated_jpeg():
    data = encoded(gradient_rgb(200, 200), "JPEG", quality=90)
    truncated = data[: len(data) // 2]
    validate_photo_bytes(truncated)   # the header is intact; only decoding finds the damage
    assert refusal(truncated) == (
        "The photo file is damaged or incomplete, so it could not be decoded. "
        "Send the original file again, without editing or cutting it.")


def test_truncated_png():
    noisy = np.random.RandomState(0).randint(0, 256, (100, 100, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(noisy, "RGB"), "PNG")
    assert refusal(data[: len(data) // 2]).startswith("The photo file is damaged or incomplete")


def test_too_small():
    assert refusal(encoded(gradient_rgb(8, 8), "PNG")) == (
        "The photo is only 8×8 pixels. Send one at least 16×16, ideally a face of 256 pixels or more.")


def test_exif_orientation_6_is_applied():
    # Stored landscape 40 wide × 20 high, left half red, right half blue; orientation 6 = "rotate 90° clockwise
    # to display", so the upright photo is 20 wide × 40 high with red on top.
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encoded(Image.fromarray(stored, "RGB"), "JPEG", quality=100, exif=exif.tobytes())
    assert validate_photo_bytes(data).width == 40
    upright = decode_photo(data)
    assert upright.shape == (40, 20, 3)
    assert np.abs(upright[5, 10].astype(int) - (255, 0, 0)).max() < 8
    assert np.abs(upright[34, 10].astype(int) - (0, 0, 255)).max() < 8


def test_greyscale_becomes_rgb():
    grey = Image.fromarray(np.arange(32 * 32, dtype=np.uint8).reshape(32, 32) % 251, "L")
    rgb = decode_photo(encoded(grey, "PNG"))
    assert rgb.shape == (32, 32, 3)
    assert np.array_equal(rgb[..., 0], np.asarray(grey)) and np.array_equal(rgb[..., 1], rgb[..., 2])


def test_16_bit_greyscale_is_scaled_not_clipped():
    values = np.full((20, 20), 65535, np.uint16)
    values[:10] = 32896   # 128 × 257
    rgb = decode_photo(encoded(Image.fromarray(values), "PNG"))
    assert rgb.shape == (20, 20, 3)
    assert rgb[15, 0].tolist() == [255, 255, 255] and rgb[0, 0].tolist() == [128, 128, 128]


def test_rgba_is_flattened_onto_white():
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[:10, :, 3] = 255     # top half opaque, bottom half fully transparent
    rgb = decode_photo(encoded(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert rgb.shape == (20, 20, 3)
    assert rgb[0, 0].tolist() == [10, 20, 30] and rgb[19, 0].tolist() == [255, 255, 255]


def test_palette_and_cmyk_become_rgb():
    palette = gradient_rgb(30, 30).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    assert decode_photo(encoded(palette, "GIF")).shape == (30, 30, 3)
    cmyk = Image.new("CMYK", (24, 24), (0, 255, 255, 0))     # pure red in CMYK
    rgb = decode_photo(encoded(cmyk, "JPEG", quality=100))
    assert rgb.shape == (24, 24, 3)
    assert rgb[12, 12, 0] > 200 and rgb[12, 12, 1] < 60 and rgb[12, 12, 2] < 60


def test_attachment_metadata_checks():
    check_attachment("image/jpeg", 3_000_000, 4032, 3024)
    check_attachment(None, None, None, None)
    with pytest.raises(InputError, match=r"^That attachment is application/pdf, not a photo\. Attach a JPEG"):
        check_attachment("application/pdf", 1000, None, None)
    with pytest.raises(InputError, match=r"^image/tiff images are not supported\. Send the photo as JPEG, PNG"):
        check_attachment("image/tiff", 1000, 100, 100)
    with pytest.raises(InputError, match=r"^HEIC photos are not supported"):
        check_attachment("image/heic", 1000, 100, 100)
    with pytest.raises(InputError, match=r"^The photo is 25\.0 MB; the limit is 20\.0 MB"):
        check_attachment("image/png", 25 * 1024 * 1024, 100, 100)
    with pytest.raises(InputError, match=r"^The photo is 9000×6000 pixels \(54\.0 megapixels\)"):
        check_attachment("image/jpeg; charset=binary", 5_000_000, 9000, 6000)
