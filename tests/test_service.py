"""Worker facade: model cache, /waifu rendering, seed sources, blends, encode, the side-by-side image."""
import copy
import os

import numpy as np
import pytest
import torch

from models import service
from models.blend import mean_w
from models.networks import Generator, GeneratorConfig
from models.render import png_bytes, render_seed
from models.weights import save_generator

torch.set_num_threads(1)

TINY = GeneratorConfig(z_dim=32, w_dim=32, img_resolution=16, mapping_layers=2, channel_base=256, channel_max=32)


def lineage(name, parent, ancestor="human"):
    return {"name": name, "fine_tuned_from": parent, "ancestor": ancestor}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    torch.manual_seed(0)
    human = Generator(TINY).eval().requires_grad_(False)
    human.mapping.w_avg.copy_(mean_w(human, samples=2000))
    fox = copy.deepcopy(human)
    with torch.no_grad():
        for parameter in fox.parameters():
            parameter += 0.2 * torch.randn_like(parameter)
        fox.mapping.w_avg.copy_(mean_w(fox, samples=2000))
    torch.manual_seed(1)
    stranger = Generator(TINY).eval()
    paths = {name: str(folder / f"{name}.safetensors") for name in ("human", "fox", "stranger")}
    save_generator(human, paths["human"], lineage("human", None))
    save_generator(fox, paths["fox"], lineage("fox", "human"))
    save_generator(stranger, paths["stranger"], lineage("stranger", None, ancestor="stranger"))
    service.clear_caches()
    return paths


def test_nothing_touches_cuda_at_import():
    import subprocess
    import sys
    code = ("import models.service, torch; "
            "print(models.service._device is None, torch.cuda.is_initialized())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "False"]


def test_models_load_once_per_process(zoo):
    first = service.load_model(zoo["human"])
    assert service.load_model(zoo["human"]) is first
    assert next(first.parameters()).device == service.device()


def test_rewritten_file_is_reloaded(zoo, tmp_path):
    path = str(tmp_path / "copy.safetensors")
    G = service.load_model(zoo["human"])
    save_generator(G, path, lineage("copy", "human"))
    before = service.load_model(path)
    with torch.no_grad():
        changed = copy.deepcopy(G)
        changed.synthesis.b4.const += 1
    save_generator(changed, path, lineage("copy", "human"))
    os.utime(path, ns=(1, 1))          # a different mtime even on coarse-clock file systems
    after = service.load_model(path)
    assert after is not before and torch.equal(after.synthesis.b4.const, changed.synthesis.b4.const)


def test_render_waifu_is_generate_py(zoo):
    image = service.render_waifu(zoo["human"], 42, 0.7, "const", None)
    assert image.dtype == np.uint8 and image.shape == (16, 16, 3)
    assert np.array_equal(image, render_seed(service.load_model(zoo["human"]), 42, psi=0.7))


def test_base_ws_for_seed(zoo):
    ws = service.base_ws_for_seed(zoo["human"], 42, 0.5)
    assert ws.dtype == np.float32 and ws.shape == (TINY.num_ws, TINY.w_dim)
    assert np.array_equal(ws[0], ws[-1])          # one w broadcast to every layer
    G = service.load_model(zoo["human"])
    w_avg = G.mapping.w_avg.numpy()
    untruncated = service.base_ws_for_seed(zoo["human"], 42, 1.0)
    assert np.allclose(ws[0], w_avg + 0.5 * (untruncated[0] - w_avg), atol=1e-5)


def test_blend_of_100_percent_base_is_the_waifu_image(zoo):
    for seed, psi in [(42, 0.7), (0, 1.0), (2**32 - 1, 0.5)]:
        ws = service.base_ws_for_seed(zoo["human"], seed, psi)
        blended = service.render_blend([(zoo["human"], 1.0)], ws)
        waifu = service.render_waifu(zoo["human"], seed, psi, "const", None)
        assert png_bytes(blended) == png_bytes(waifu), (seed, psi)


def test_zero_weight_parts_do_not_change_a_pure_blend(zoo):
    ws = service.base_ws_for_seed(zoo["human"], 7, 0.7)
    assert np.array_equal(service.render_blend([(zoo["human"], 1.0), (zoo["fox"], 0.0)], ws),
                          service.render_waifu(zoo["human"], 7, 0.7, "const", None))


def test_blend_is_cached_by_normalised_recipe(zoo):
    ws = service.base_ws_for_seed(zoo["human"], 42, 0.7)
    first = service.blended_model([(zoo["human"], 0.6), (zoo["fox"], 0.4)])
    assert service.blended_model([(zoo["fox"], 40), (zoo["human"], 60)]) is first
    image = service.render_blend([(zoo["human"], 0.6), (zoo["fox"], 0.4)], ws)
    pure_human = service.render_blend([(zoo["human"], 1.0)], ws)
    pure_fox = service.render_blend([(zoo["fox"], 1.0)], ws)
    assert image.shape == (16, 16, 3)
    assert not np.array_equal(image, pure_human) and not np.array_equal(image, pure_fox)


def test_blend_of_files_naming_different_ancestors_is_not_refused_here(zoo):
    """The registry's family decides what may be blended (before queueing); the worker blends what it is given."""
    blended = service.blended_model([(zoo["human"], 0.5), (zoo["stranger"], 0.5)])
    assert blended.img_resolution == 16


def test_encode_photo_and_side_by_side(zoo):
    photo = np.random.RandomState(0).randint(0, 256, (40, 60, 3), dtype=np.uint8)
    ws, projection = service.encode_photo(zoo["human"], photo, steps=5)
    assert ws.dtype == np.float32 and ws.shape == (TINY.num_ws, TINY.w_dim)
    assert projection.dtype == np.uint8 and projection.shape == (16, 16, 3)
    # The stored ws alone reproduce the posted projection, through the blend path too.
    assert np.array_equal(service.render_blend([(zoo["human"], 1.0)], ws), projection)
    side = service.photo_beside_projection(photo, projection)
    assert side.shape == (256, 2 * 256 + 8, 3) and side.dtype == np.uint8
    assert np.array_equal(side[:16:16, 256 + 8:][0, ::16], projection[0])   # nearest-neighbour, 16× enlarged
    assert (side[:, 256:264] == 255).all()
