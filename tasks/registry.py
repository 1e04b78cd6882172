"""The model registry: which models exist, their families, default psi, and what their files say.

Reads models.toml (path from env DNEBOT_MODELS, else models/zoo/models.toml in the package) and each model
file's metadata, without torch: the bot, which has no torch, shows /models and refuses bad blends from this.
"""
from __future__ import annotations

import json
import os
import struct
import tomllib
from dataclasses import dataclass
from pathlib import Path

from tasks.specs import InputError

DEFAULT_MODELS_TOML = Path(__file__).resolve().parent.parent / "models" / "zoo" / "models.toml"
# A safetensors header is small; anything claiming more than this is not a model file we wrote.
MAX_HEADER_BYTES = 100 * 1024 * 1024

TOP_LEVEL_KEYS = {"default_model", "families", "models"}
FAMILY_KEYS = {"base"}
MODEL_KEYS = {"file", "family", "psi", "description"}


class RegistryError(RuntimeError):
    """models.toml or a model file is wrong; the operator (not a Discord user) fixes it."""


def read_file_metadata(path: str | os.PathLike) -> dict:
    """What a model file says about itself: generator_config, lineage, source (decoded), format.

    The one place that knows file formats on the torch-free side: other formats plug in here.
    """
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"model file {path} does not exist")
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise RegistryError(f"{path} is too short to be a safetensors file")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER_BYTES:
            raise RegistryError(f"{path} is not a safetensors file (header length {length})")
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RegistryError(f"{path} is not a safetensors file ({e})") from None
    raw = header.get("__metadata__") or {}
    metadata = dict(raw)
    for key in ("generator_config", "lineage", "source"):
        if key in raw:
            try:
                metadata[key] = json.loads(raw[key])
            except json.JSONDecodeError:
                raise RegistryError(f"{path}: metadata {key} is not JSON") from None
    if "generator_config" not in metadata:
        raise RegistryError(f"{path} has no generator_config in its metadata; convert it with `dnebot convert`")
    return metadata


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    family: str
    psi: float
    description: str
    generator_config: dict
    lineage: dict

    @property
    def resolution(self) -> int:
        return int(self.generator_config.get("img_resolution", 1024))

    def architecture(self) -> dict:
        """Everything that must match for two models' weights to be averaged (reference §5.3). Not w_avg_beta
        (training only) nor num_fp16_res (a compute precision, not a weight); mapping_lr_multiplier does count:
        it scales the stored mapping weights at run time."""
        return {k: v for k, v in self.generator_config.items() if k not in ("w_avg_beta", "num_fp16_res")}


@dataclass(frozen=True)
class Family:
    name: str
    base: str   # /encode projects into this model; blend sources are w's of it


class Registry:
    def __init__(self, models: dict[str, ModelEntry], families: dict[str, Family], default_model: str,
                 source: Path | None = None):
        self.models = models
        self.families = families
        self.default_model = default_model
        self.source = source

    @property
    def names(self) -> list[str]:
        return sorted(self.models)

    @property
    def default(self) -> ModelEntry:
        return self.models[self.default_model]

    def get(self, name: str) -> ModelEntry:
        key = str(name).strip().lower()
        if key not in self.models:
            raise InputError(f"unknown model {name!r}; known models: {', '.join(self.names)}")
        return self.models[key]

    def base_for(self, name: str) -> ModelEntry:
        return self.models[self.families[self.get(name).family].base]

    def describe(self) -> str:
        """The /models listing: one line per model."""
        lines = []
        for name in self.names:
            m = self.models[name]
            mark = " (default)" if name == self.default_model else ""
            lines.append(f"{name}{mark}: {m.description} — {m.resolution}px, family {m.family}, psi {m.psi:g}")
        return "\n".join(lines)


def _check_keys(where: str, table, allowed: set[str], path: Path):
    if not isinstance(table, dict):
        raise RegistryError(f"{path}: {where} must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise RegistryError(f"{path}: unknown key(s) {', '.join(unknown)} in {where}; "
                            f"allowed: {', '.join(sorted(allowed))}")


def _dnebot_file(path: Path) -> Path:
    """A model file as our safetensors: NVIDIA / TensorFlow pickles and rosinality checkpoints are converted once
    and cached by sha256 (models.formats.cache, torch-free to ask; converting needs a process with torch)."""
    from models.formats.cache import registry_path, safetensors_metadata
    from models.formats.errors import ModelFileError
    if not path.is_file() or path.suffix == ".safetensors" or safetensors_metadata(path) is not None:
        return path
    try:
        return registry_path(path)
    except ModelFileError as e:
        raise RegistryError(str(e)) from None


def models_toml_path() -> Path:
    return Path(os.environ.get("DNEBOT_MODELS") or DEFAULT_MODELS_TOML)


def load_registry(path: str | os.PathLike | None = None) -> Registry:
    path = Path(path) if path is not None else models_toml_path()
    if not path.is_file():
        raise RegistryError(f"model registry {path} does not exist; set DNEBOT_MODELS to your models.toml")
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise RegistryError(f"{path} is not valid TOML: {e}") from None
    _check_keys("the top level", doc, TOP_LEVEL_KEYS, path)

    families = {}
    for name, table in doc.get("families", {}).items():
        _check_keys(f"[families.{name}]", table, FAMILY_KEYS, path)
        if "base" not in table:
            raise RegistryError(f"{path}: [families.{name}] needs base = \"<model name>\"")
        families[name.lower()] = Family(name.lower(), str(table["base"]).lower())

    models = {}
    for name, table in doc.get("models", {}).items():
        where = f"[models.{name}]"
        _check_keys(where, table, MODEL_KEYS, path)
        for required in ("file", "family"):
            if required not in table:
                raise RegistryError(f"{path}: {where} needs {required} = ...")
        family = str(table["family"]).lower()
        if family not in families:
            raise RegistryError(f"{path}: {where} is in family {family!r}, which has no [families.{family}] table")
        file = Path(table["file"])
        file = _dnebot_file(file if file.is_absolute() else path.parent / file)
        metadata = read_file_metadata(file)
        models[name.lower()] = ModelEntry(
            name=name.lower(), path=file, family=family, psi=float(table.get("psi", 1.0)),
            description=str(table.get("description", "")),
            generator_config=metadata["generator_config"], lineage=metadata.get("lineage", {}))

    if not models:
        raise RegistryError(f"{path} names no models; add a [models.NAME] table")
    for family in families.values():
        if family.base not in models:
            raise RegistryError(f"{path}: family {family.name}'s base {family.base!r} is not a model in this file")
        if models[family.base].family != family.name:
            raise RegistryError(f"{path}: family {family.name}'s base {family.base!r} belongs to family "
                                f"{models[family.base].family}")
    default = str(doc.get("default_model", "")).lower() or sorted(models)[0]
    if default not in models:
        raise RegistryError(f"{path}: default_model {default!r} is not a model in this file")
    return Registry(models, families, default, source=path)


_cache: dict[Path, tuple[float, Registry]] = {}


def current_registry() -> Registry:
    """The registry at models_toml_path(), reloaded when the file changes (workers live long)."""
    path = models_toml_path()
    mtime = path.stat().st_mtime if path.is_file() else -1.0
    cached = _cache.get(path)
    if cached is None or cached[0] != mtime:
        _cache[path] = (mtime, load_registry(path))
    return _cache[path][1]
