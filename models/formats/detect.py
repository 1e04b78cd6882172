"""Sniff a model file's format from its bytes and hand it to the right reader.

Every failure becomes a one-line `ModelFileError` naming the file and the problem, so a worker can report it and
keep serving its other models.
"""
from __future__ import annotations

import json
import os
import struct

from models.formats import nvidia_pickle, safe_pickle, tf_pickle
from models.formats.errors import ModelFileError
from models.formats.network_file import NetworkFile

LEGACY_TORCH_SAVE = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19."  # pickled LEGACY_MAGIC: first bytes of old torch.save
NOT_MODELS = [  # (leading bytes, what the file is)
    (b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"), (b"\x1f\x8b", "a gzip archive (unpack it first)"),
    (b"7z\xbc\xaf", "a 7-Zip archive (unpack it first)"), (b"Rar!", "a RAR archive (unpack it first)"),
    (b"<!DOCTYPE", "an HTML page (the download link returned a web page)"),
    (b"<html", "an HTML page (the download link returned a web page)"),
    (b"version https://git-lfs", "a Git LFS pointer, not the model itself (run `git lfs pull`)"),
]


def sniff(head: bytes, size: int) -> str:
    """'network-pickle' | 'torch-save' | 'safetensors', or raise saying what the bytes are instead."""
    for magic, what in NOT_MODELS:
        if head.startswith(magic):
            raise ModelFileError(None, f"this is {what}, not a model file")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        raise ModelFileError(None, "this is a WebP image, not a model file")
    if head.startswith(b"PK\x03\x04"):
        return "torch-save"  # torch.save's zip format (rosinality checkpoints saved by torch >= 1.6)
    if head.startswith(LEGACY_TORCH_SAVE):
        return "torch-save"
    if len(head) >= 9 and head[8:9] == b"{" and 8 + struct.unpack("<Q", head[:8])[0] <= size:
        return "safetensors"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "network-pickle"
    shown = head[:8].hex(" ")
    raise ModelFileError(None, f"not a model file format dnebot knows (it starts with bytes {shown}); expected a "
                               "StyleGAN2 .pkl, a rosinality .pt or a .safetensors file")


def _unpickle(path: str, size: int):
    with open(path, "rb") as f:
        try:
            return safe_pickle.load(f)
        except safe_pickle.RefusedGlobal as e:
            raise ModelFileError(path, str(e)) from None
        except MemoryError:
            raise
        except Exception as e:  # the pickle machinery reports damage with many exception types
            if f.tell() >= size:
                raise ModelFileError(path, f"the file is truncated: its {size} bytes end in the middle of the "
                                           "pickle (an interrupted download or copy?); get the file again") from None
            raise ModelFileError(path, f"the pickle is damaged or not a network pickle ({type(e).__name__}: {e})") \
                from None


def read_network_pickle(path: str, size: int) -> NetworkFile:
    top = _unpickle(path, size)
    if tf_pickle.is_tf_pickle(top):
        return tf_pickle.read(top, path)
    return nvidia_pickle.read(top, path)


def read_safetensors(path: str) -> NetworkFile:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
        with open(path, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
        meta = header.get("__metadata__") or {}
        if meta.get("format") != "dnebot-stylegan2":
            raise ModelFileError(path, f"a safetensors file, but not a dnebot model (format={meta.get('format')!r}); "
                                       "dnebot's .safetensors carry a generator_config")
        if meta.get("format_version") != "1":
            raise ModelFileError(path, f"dnebot format_version {meta.get('format_version')!r}; this dnebot reads 1")
        tensors = load_file(path)
    except (SafetensorError, ValueError, OSError, struct.error) as e:
        if isinstance(e, ModelFileError):
            raise
        raise ModelFileError(path, f"a damaged or truncated safetensors file ({e})") from None
    config = json.loads(meta.get("generator_config") or "{}")
    source = json.loads(meta.get("source") or "{}")
    lineage = json.loads(meta.get("lineage") or "null")
    return NetworkFile(path=path, format="dnebot safetensors", config=config, tensors=tensors, source=source,
                       lineage=lineage)


def read_network(path: str | os.PathLike) -> NetworkFile:
    """Read any supported model file (never running code from it) → NetworkFile in our names."""
    path = os.fspath(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(64)
    except FileNotFoundError:
        raise ModelFileError(path, "no such file") from None
    except IsADirectoryError:
        raise ModelFileError(path, "is a directory, not a model file") from None
    if size == 0:
        raise ModelFileError(path, "the file is empty (0 bytes); the download or copy did not finish")
    try:
        kind = sniff(head, size)
    except ModelFileError as e:
        raise e.for_file(path) from None
    if kind == "safetensors":
        return read_safetensors(path)
    if kind == "torch-save":
        from models.formats import rosinality
        return rosinality.read(path)
    return read_network_pickle(path, size)
