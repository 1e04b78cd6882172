"""Seeds, quantisation and PNG bytes follow NVIDIA generate.py's conventions."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from models.networks import Generator, GeneratorConfig
from models.render import MAX_SEED, png_bytes, render_seed, render_ws, to_uint8, z_for_seed

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    return Generator(GeneratorConfig(z_dim=32, w_dim=32, img_resolution=32, channel_base=512, channel_max=64,
                                     mapping_layers=2)).eval()


def test_seed_42_is_randomstate_draw():
    z = z_for_seed(42, 512)
    assert z.shape == (1, 512) and z.dtype == np.float64
    assert np.array_equal(z, np.random.RandomState(42).randn(1, 512))
    assert z[0, 0] == pytest.approx(0.4967141530112327)  # the well-known first draw of seed 42


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1])
def test_seed_out_of_range_says_the_range(seed):
    with pytest.raises(ValueError, match=str(MAX_SEED)):
        z_for_seed(seed, 8)


def test_max_seed_is_accepted():
    assert z_for_seed(MAX_SEED, 4).shape == (1, 4)


def test_to_uint8_hand_values():
    values = [-1.0, 0.0, 1.0, 0.999, -0.0039, 2.0, -2.0, 0.5]
    img = torch.tensor(values, dtype=torch.float32).reshape(1, 1, 1, -1)
    # -1 → 0.5 → 0; 0 → 128; 1 → 255.5 → 255; 0.999 → 255.37 → 255; -0.0039 → 127.50 → 127; clamps; 0.5 → 191
    assert to_uint8(img).reshape(-1).tolist() == [0, 128, 255, 255, 127, 255, 0, 191]


def test_to_uint8_layout_and_numpy_input():
    img = np.zeros((2, 3, 4, 5), dtype=np.float32)
    img[:, 1] = 1.0
    out = to_uint8(img)
    assert out.shape == (2, 4, 5, 3) and out.dtype == np.uint8
    assert (out[..., 0] == 128).all() and (out[..., 1] == 255).all()


def test_png_bytes_roundtrip_and_deterministic():
    rgb = np.random.RandomState(0).randint(0, 256, (16, 24, 3), dtype=np.uint8)
    data = png_bytes(rgb)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert png_bytes(rgb.copy()) == data
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), rgb)


def test_png_bytes_refuses_floats():
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((4, 4, 3), dtype=np.float32))


def test_render_seed_deterministic_and_matches_manual_pipeline(G):
    a = render_seed(G, 42, psi=0.7)
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, render_seed(G, 42, psi=0.7))
    assert not np.array_equal(a, render_seed(G, 43, psi=0.7))
    with torch.no_grad():
        manual = to_uint8(G(torch.from_numpy(z_for_seed(42, 32)), truncation_psi=0.7))[0]
    assert np.array_equal(a, manual)


def test_render_ws_matches_render_seed(G):
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(z_for_seed(7, 32)), truncation_psi=0.5)
    assert np.array_equal(render_ws(G, ws[0].numpy()), render_seed(G, 7, psi=0.5))
    assert np.array_equal(render_ws(G, ws), render_seed(G, 7, psi=0.5))
    with pytest.raises(ValueError, match="ws must be"):
        render_ws(G, ws[0, :3])


def test_class_index_rules(G):
    with pytest.raises(ValueError, match="no classes"):
        render_seed(G, 1, class_index=0)
    torch.manual_seed(0)
    Gc = Generator(GeneratorConfig(z_dim=8, c_dim=3, w_dim=8, img_resolution=8, channel_base=64, channel_max=8,
                                   mapping_layers=2)).eval()
    with pytest.raises(ValueError, match="class_index"):
        render_seed(Gc, 1)
    with pytest.raises(ValueError, match="between 0 and 2"):
        render_seed(Gc, 1, class_index=3)
    assert not np.array_equal(render_seed(Gc, 1, class_index=0), render_seed(Gc, 1, class_index=2))
