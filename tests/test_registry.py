import json
import struct

import pytest

from tasks.registry import RegistryError, current_registry, load_registry, read_file_metadata
from tasks.specs import InputError

from tests.conftest import TINY_CONFIG, write_model_header, write_models_toml


def test_entries(header_registry):
    r = header_registry
    assert r.names == ["anime", "big", "cat", "fox", "human", "pony"]
    assert r.default.name == "anime"
    fox = r.get("FOX")
    assert (fox.family, fox.psi, fox.description, fox.resolution) == ("demo", 0.7, "fox faces", 16)
    assert fox.generator_config == TINY_CONFIG
    assert fox.lineage == {"name": "fox", "fine_tuned_from": "human", "ancestor": "human"}
    assert fox.path.name == "fox.safetensors" and fox.path.is_absolute()
    assert r.base_for("fox").name == "human" and r.base_for("cat").name == "cat"
    assert r.describe().splitlines()[0] == "anime (default): anime faces — 16px, family demo, psi 0.7"


def test_env_override_and_reload(header_zoo):
    assert current_registry().source == header_zoo
    text = header_zoo.read_text().replace('default_model = "anime"', 'default_model = "fox"')
    header_zoo.write_text(text)
    import os
    os.utime(header_zoo, (1, 1))
    assert current_registry().default.name == "fox"


def test_unknown_model(header_registry):
    with pytest.raises(InputError) as e:
        header_registry.get("dog")
    assert str(e.value) == "unknown model 'dog'; known models: anime, big, cat, fox, human, pony"


def test_metadata_read_by_hand(tmp_path):
    path = write_model_header(tmp_path / "m.safetensors", TINY_CONFIG, {"name": "m", "fine_tuned_from": None,
                                                                         "ancestor": "m"})
    meta = read_file_metadata(path)
    assert meta["generator_config"] == TINY_CONFIG and meta["format"] == "dnebot-stylegan2"
    # the header format itself: 8-byte little-endian length, then JSON
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert json.loads(raw[8:8 + n])["__metadata__"]["format_version"] == "1"


def _zoo(tmp_path, models=None, families=None, default="human"):
    write_model_header(tmp_path / "human.safetensors", TINY_CONFIG,
                       {"name": "human", "fine_tuned_from": None, "ancestor": "human"})
    models = models or {"human": {"file": "human.safetensors", "family": "demo", "psi": 0.7}}
    return write_models_toml(tmp_path, models, families or {"demo": "human"}, default)


def refusal(path):
    with pytest.raises(RegistryError) as e:
        load_registry(path)
    return str(e.value).replace(str(path.parent) + "/", "")


def test_missing_registry(tmp_path):
    assert refusal(tmp_path / "nope.toml") == \
        "model registry nope.toml does not exist; set DNEBOT_MODELS to your models.toml"


def test_missing_model_file(tmp_path):
    path = _zoo(tmp_path, {"human": {"file": "gone.safetensors", "family": "demo"}})
    assert refusal(path) == "model file gone.safetensors does not exist"


def test_unknown_keys(tmp_path):
    path = _zoo(tmp_path, {"human": {"file": "human.safetensors", "family": "demo", "resolution": 64}})
    assert refusal(path) == ("models.toml: unknown key(s) resolution in [models.human]; "
                             "allowed: description, family, file, psi")
    path.write_text('colour = "red"\n' + path.read_text())
    assert refusal(path) == "models.toml: unknown key(s) colour in the top level; allowed: default_model, families, models"


def test_unknown_family(tmp_path):
    path = _zoo(tmp_path, {"human": {"file": "human.safetensors", "family": "people"}})
    assert refusal(path) == "models.toml: [models.human] is in family 'people', which has no [families.people] table"


def test_bad_default_and_base(tmp_path):
    assert refusal(_zoo(tmp_path, default="anime")) == "models.toml: default_model 'anime' is not a model in this file"
    assert refusal(_zoo(tmp_path, families={"demo": "robot"})) == \
        "models.toml: family demo's base 'robot' is not a model in this file"


def test_not_safetensors(tmp_path):
    (tmp_path / "human.safetensors").write_bytes(b"\xff" * 64)
    path = write_models_toml(tmp_path, {"human": {"file": "human.safetensors", "family": "demo"}},
                             {"demo": "human"}, "human")
    assert "is not a safetensors file" in refusal(path)
