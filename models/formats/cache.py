"""Convert each foreign model file once; keep the result as our safetensors, named by the file's sha256.

A worker restart then opens a safetensors file instead of re-parsing a 380 MB pickle. The cache lives in
$DNEBOT_CACHE (default ~/.cache/dnebot). Everything except the conversion itself is torch-free, so the registry
(which the bot imports) can ask what a converted file says about itself.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

from models.formats.errors import ModelFileError

OUR_FORMAT = "dnebot-stylegan2"
HASH_CHUNK = 4 << 20


def cache_dir() -> Path:
    return Path(os.environ.get("DNEBOT_CACHE") or Path.home() / ".cache" / "dnebot")


def safetensors_metadata(path: str | os.PathLike) -> dict | None:
    """The decoded `__metadata__` of a dnebot safetensors file; None for any other file."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return None
            (length,) = struct.unpack("<Q", head)
            if length > 100 << 20 or length + 8 > os.fstat(f.fileno()).st_size:
                return None
            header = json.loads(f.read(length))
    except (OSError, ValueError):
        return None
    raw = (header.get("__metadata__") or {}) if isinstance(header, dict) else {}
    if raw.get("format") != OUR_FORMAT:
        return None
    meta = dict(raw)
    for key in ("generator_config", "lineage", "source"):
        if key in raw:
            meta[key] = json.loads(raw[key])
    return meta


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of the file's bytes, remembered per (path, size, mtime) so a big file is hashed once."""
    path = Path(path).resolve()
    st = path.stat()
    memo = cache_dir() / "hashes" / (hashlib.sha1(str(path).encode()).hexdigest() + ".json")
    try:
        known = json.loads(memo.read_text())
        if known["size"] == st.st_size and known["mtime_ns"] == st.st_mtime_ns:
            return known["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    digest = h.hexdigest()
    _write_atomic(memo, json.dumps({"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                    "sha256": digest}).encode())
    return digest


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def cache_path_for_sha256(sha256: str) -> Path:
    return cache_dir() / f"{sha256}.safetensors"


def cached_metadata_for_sha256(sha256: str) -> dict | None:
    """Torch-free: the metadata of the cached conversion of the file with this sha256, if it was converted."""
    path = cache_path_for_sha256(sha256)
    return safetensors_metadata(path) if path.is_file() else None


def cached_path(path: str | os.PathLike) -> Path | None:
    """Torch-free: where `path` can be loaded from as our format right now (itself, or its conversion), else None."""
    if safetensors_metadata(path) is not None:
        return Path(path)
    converted = cache_path_for_sha256(file_sha256(path))
    return converted if converted.is_file() else None


def converted_path(path: str | os.PathLike) -> Path:
    """`path` as our safetensors: itself if it already is one, else its conversion (made now if missing; needs torch).

    Raises ModelFileError (one line naming the file) when the file cannot be read.
    """
    if not Path(path).is_file():
        raise ModelFileError(path, "no such file")
    found = cached_path(path)
    if found is not None:
        return found
    from models.formats import convert  # torch from here on
    sha256 = file_sha256(path)
    target = cache_path_for_sha256(sha256)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    convert(path, tmp, source={"converted_from": os.path.basename(path), "sha256": sha256})
    os.replace(tmp, target)
    return target


def registry_path(path: str | os.PathLike) -> Path:
    """For the model registry: the safetensors to load for a model file. Converts when torch is here; where it is
    not (the bot), a foreign file must have been converted already."""
    found = cached_path(path) if Path(path).is_file() else None
    if found is not None:
        return found
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ModelFileError(path, "not converted yet and this process has no torch to convert it; run "
                                   "`dnebot convert FILE OUT.safetensors` (or start a worker once) and list the "
                                   "result in models.toml") from None
    return converted_path(path)
