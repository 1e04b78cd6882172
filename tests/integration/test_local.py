"""`dnebot local`: embedded Redis + in-process worker; same bytes as the worker path; faces persist."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.integration
DNEBOT = str(Path(sys.executable).with_name("dnebot"))


@pytest.fixture
def local(tiny_zoo, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DNEBOT_")}
    env.update(DNEBOT_MODELS=str(tiny_zoo), DNEBOT_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1",
               DNEBOT_DEVICE="cpu")

    def run(command: str):
        return subprocess.run([DNEBOT, "local", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
    run.cwd = tmp_path
    return run


def written(result, cwd: Path) -> bytes:
    assert result.returncode == 0, result.stderr
    return (cwd / result.stdout.strip().splitlines()[-1]).read_bytes()


def test_waifu_same_bytes_as_the_model(local, tiny_zoo):
    from models import service
    from models.render import png_bytes

    result = local("/waifu seed:42 model:anime")
    assert result.stdout.strip().splitlines()[-1] == "out/waifu-anime-seed42-psi0.7.png"
    want = png_bytes(service.render_waifu(str(tiny_zoo.parent / "anime.safetensors"), 42, 0.7, "const", None))
    assert written(result, local.cwd) == want


def test_encode_then_blend_persists_between_runs(local, tiny_zoo):
    from models import service
    from models.render import png_bytes

    photo = np.random.RandomState(2).randint(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(photo).save(local.cwd / "me.png")
    result = local("/encode photo:me.png name:obama steps:3")
    assert result.stdout.strip().splitlines()[-1] == "out/encode-obama.png"
    human = str(tiny_zoo.parent / "human.safetensors")
    ws, projection = service.encode_photo(human, photo, 3)
    assert written(result, local.cwd) == png_bytes(service.photo_beside_projection(photo, projection))

    result = local("/blend obama human:60 fox:20 anime:10 pony:10")   # a new process: the face came from disk
    assert result.stdout.strip().splitlines()[-1] == "out/blend-obama-anime10-fox20-human60-pony10.png"
    recipe = [(str(tiny_zoo.parent / f"{n}.safetensors"), p / 100)
              for n, p in (("anime", 10), ("fox", 20), ("human", 60), ("pony", 10))]
    assert written(result, local.cwd) == png_bytes(service.render_blend(recipe, ws))


def test_refusals_exit_2_before_queueing(local):
    result = local("/waifu seed:4294967296")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == \
        "dnebot local: seed must be a whole number from 0 to 4294967295, got '4294967296'"
    result = local("/blend nobody human:60 fox:40")
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "no face is saved as 'nobody' here; save one with /encode photo:<your photo> name:nobody, or blend seed:N")
    result = local("/blend seed:1 human:60 fox:20 anime:10 pony:9")
    assert (result.returncode, result.stderr.strip()) == (
        2, "dnebot local: the weights add up to 99; make them add up to 100")


def test_models_listing(local):
    result = local("/models")
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == "anime (default): tiny anime — 16px, family demo, psi 0.7"
