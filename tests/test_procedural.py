"""The procedural renderer is the zoo's teacher: it must be deterministic, and its domains must look different."""

import itertools

import numpy as np
import pytest

from models.procedural import DOMAINS, TRAIT_DIMS, FaceTraits, render_face, render_photo


def _z(seed: int) -> np.ndarray:
    return np.random.RandomState(seed).randn(128)


@pytest.mark.parametrize("domain", DOMAINS)
def test_same_z_gives_same_bytes(domain):
    a = render_face(_z(7), domain)
    b = render_face(_z(7).copy(), domain)
    assert a.dtype == np.uint8 and a.shape == (64, 64, 3)
    assert a.tobytes() == b.tobytes()


def test_size_is_honoured():
    assert render_face(_z(1), "fox", size=32).shape == (32, 32, 3)


def test_domains_differ_for_the_same_z():
    renders = {d: render_face(_z(3), d).astype(np.int16) for d in DOMAINS}
    for a, b in itertools.combinations(DOMAINS, 2):
        assert np.abs(renders[a] - renders[b]).mean() > 10, (a, b)


def test_different_z_gives_a_different_individual():
    for domain in DOMAINS:
        assert np.abs(render_face(_z(1), domain).astype(np.int16) - render_face(_z(2), domain)).mean() > 5


def test_traits_read_only_the_leading_dims():
    z = _z(5)
    z2 = z.copy()
    z2[TRAIT_DIMS:] = 0.0
    assert render_face(z, "anime").tobytes() == render_face(z2, "anime").tobytes()
    assert FaceTraits.from_z(np.zeros(TRAIT_DIMS)).tilt == pytest.approx(0.5)


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="human, anime, fox, pony, furry"):
        render_face(_z(0), "dragon")
    with pytest.raises(ValueError, match="at least"):
        render_face(np.zeros(4), "human")


def test_photo_is_deterministic_and_noisy():
    a, b = render_photo(1, size=128), render_photo(1, size=128)
    assert a.shape == (128, 128, 3) and a.tobytes() == b.tobytes()
    # Sensor noise: neighbouring pixels in a flat region are not all equal.
    assert np.unique(a[:16, :16].reshape(-1, 3), axis=0).shape[0] > 20
