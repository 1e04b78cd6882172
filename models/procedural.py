"""Procedural face renderer: the teacher behind the demo model zoo.

The demo zoo ships StyleGAN2 generators small enough for a laptop CPU. Training them adversarially on a CPU is
out of reach, so each one is taught to reproduce this renderer instead: for a latent ``z`` the renderer draws a
face of a domain (human, anime, fox, pony, furry) and the generator learns to draw the same picture from the same
``z`` (see ``models/zoo_train.py``).

The first ``TRAIT_DIMS`` entries of ``z`` set identity traits through ``u_i = Phi(z[i])`` (the standard normal
CDF, so each trait is uniform on (0, 1) when ``z ~ N(0, I)``). Every domain reads the same traits (face shape,
head tilt, fur or skin tone, hair colour and style, eye size, spacing and colour, smile, background), so one seed
is recognisably "the same individual" as a human, an anime character, a fox, a pony or a wolf. Shapes are drawn as
polygons at ``SUPERSAMPLE`` times the output size and box-filtered down, which anti-aliases the edges.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DOMAINS = ("human", "anime", "fox", "pony", "furry")
TRAIT_DIMS = 18
SUPERSAMPLE = 4

RGB = tuple[float, float, float]


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def _mix(c0: RGB, c1: RGB, t: float) -> RGB:
    return (_lerp(c0[0], c1[0], t), _lerp(c0[1], c1[1], t), _lerp(c0[2], c1[2], t))


def _palette(colours: list[RGB], t: float) -> RGB:
    """Piecewise-linear walk along a list of colours: continuous in t, so nearby latents give nearby colours."""
    t = min(max(t, 0.0), 1.0) * (len(colours) - 1)
    i = min(int(t), len(colours) - 2)
    return _mix(colours[i], colours[i + 1], t - i)


def _hsv(h: float, s: float, v: float) -> RGB:
    return colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))


def _shade(c: RGB, f: float) -> RGB:
    return (c[0] * f, c[1] * f, c[2] * f)


@dataclass(frozen=True)
class FaceTraits:
    """Identity traits shared by all domains, each in (0, 1)."""

    face_width: float
    face_height: float
    tilt: float
    tone_hue: float
    tone_value: float
    hair_hue: float
    hair_length: float
    eye_size: float
    eye_spacing: float
    eye_hue: float
    mouth_width: float
    smile: float
    bg_hue: float
    bg_value: float
    shift_x: float
    hair_value: float
    ear_size: float
    side: float  # which side a parting, a mane or a lock falls to

    @classmethod
    def from_z(cls, z: np.ndarray) -> "FaceTraits":
        z = np.asarray(z, dtype=np.float64).reshape(-1)
        if z.size < TRAIT_DIMS:
            raise ValueError(f"z has {z.size} entries; the renderer reads the first {TRAIT_DIMS}, give at least that many")
        return cls(*(_phi(float(v)) for v in z[:TRAIT_DIMS]))


class _Pen:
    """Draws polygons given in unit coordinates (0..1, y down), rotated by the head tilt about the head centre."""

    def __init__(self, image: Image.Image, pivot: tuple[float, float], angle: float):
        self.draw = ImageDraw.Draw(image)
        self.scale = image.size[0]
        self.pivot = pivot
        self.cos, self.sin = math.cos(angle), math.sin(angle)

    def _map(self, pts):
        px, py = self.pivot
        out = []
        for x, y in pts:
            dx, dy = x - px, y - py
            out.append(((px + dx * self.cos - dy * self.sin) * self.scale, (py + dx * self.sin + dy * self.cos) * self.scale))
        return out

    def poly(self, pts, colour: RGB):
        self.draw.polygon(self._map(pts), fill=_rgb255(colour))

    def ellipse(self, cx, cy, rx, ry, colour: RGB, rot: float = 0.0):
        self.poly(ellipse_points(cx, cy, rx, ry, rot=rot), colour)

    def line(self, pts, colour: RGB, width: float):
        self.draw.line(self._map(pts), fill=_rgb255(colour), width=max(1, round(width * self.scale)), joint="curve")


def _rgb255(c: RGB) -> tuple[int, int, int]:
    return tuple(int(round(min(max(v, 0.0), 1.0) * 255)) for v in c)


def ellipse_points(cx, cy, rx, ry, start=0.0, end=2 * math.pi, n=40, rot=0.0):
    pts = []
    cr, sr = math.cos(rot), math.sin(rot)
    for k in range(n + 1):
        t = start + (end - start) * k / n
        x, y = rx * math.cos(t), ry * math.sin(t)
        pts.append((cx + x * cr - y * sr, cy + x * sr + y * cr))
    return pts


def _arc(cx, cy, half_width, bend, n=12):
    """A mouth-like curve from (cx - w, cy) to (cx + w, cy) whose middle dips by ``bend`` (negative = frown)."""
    return [(cx + half_width * (2 * k / n - 1), cy + bend * (1 - (2 * k / n - 1) ** 2)) for k in range(n + 1)]


# ---------------------------------------------------------------------------------------------------------------
# Shared pieces


@dataclass(frozen=True)
class _Layout:
    cx: float
    cy: float
    rx: float
    ry: float


def _layout(t: FaceTraits) -> _Layout:
    return _Layout(cx=0.5 + 0.06 * (t.shift_x - 0.5), cy=0.53, rx=0.19 + 0.06 * t.face_width, ry=0.25 + 0.05 * t.face_height)


def _background(t: FaceTraits) -> RGB:
    return _hsv(t.bg_hue, 0.25 + 0.2 * t.bg_value, 0.45 + 0.45 * t.bg_value)


def _shoulders(pen: _Pen, L: _Layout, colour: RGB, width: float = 0.36):
    pen.poly([(L.cx - width, 1.05), (L.cx - width + 0.06, L.cy + L.ry * 1.05), (L.cx + width - 0.06, L.cy + L.ry * 1.05),
              (L.cx + width, 1.05)], colour)
    pen.ellipse(L.cx, L.cy + L.ry * 1.15, width - 0.04, 0.09, colour)


def _round_eye(pen: _Pen, x, y, rx, ry, iris: RGB, white=(0.97, 0.97, 0.95), pupil_frac=0.5, lash: RGB | None = None,
               highlight=True):
    pen.ellipse(x, y, rx, ry, white)
    pen.ellipse(x, y + ry * 0.05, rx * 0.62, ry * 0.92, iris)
    pen.ellipse(x, y + ry * 0.08, rx * 0.62 * pupil_frac, ry * 0.92 * pupil_frac, (0.04, 0.03, 0.04))
    if highlight:
        pen.ellipse(x - rx * 0.25, y - ry * 0.35, rx * 0.2, ry * 0.2, (1.0, 1.0, 1.0))
    if lash is not None:
        pen.line(ellipse_points(x, y, rx * 1.02, ry * 1.02, math.pi * 1.05, math.pi * 1.95, n=12), lash, ry * 0.3)


def _eye_colour(t: FaceTraits, natural: bool) -> RGB:
    if natural:
        return _palette([(0.25, 0.14, 0.07), (0.45, 0.28, 0.12), (0.35, 0.45, 0.25), (0.25, 0.45, 0.65), (0.45, 0.6, 0.8)],
                        t.eye_hue)
    return _hsv(t.eye_hue, 0.75, 0.85)


# ---------------------------------------------------------------------------------------------------------------
# Domains


def _draw_human(pen: _Pen, t: FaceTraits):
    L = _layout(t)
    skin = _palette([(0.36, 0.23, 0.16), (0.55, 0.37, 0.25), (0.78, 0.57, 0.42), (0.92, 0.74, 0.6), (0.98, 0.85, 0.76)],
                    t.tone_value)
    skin = _mix(skin, (skin[0] * 1.05, skin[1] * 0.93, skin[2] * 0.95), t.tone_hue)
    hair = _palette([(0.06, 0.05, 0.05), (0.22, 0.13, 0.07), (0.45, 0.27, 0.13), (0.6, 0.25, 0.1), (0.85, 0.7, 0.4),
                     (0.7, 0.68, 0.66)], t.hair_hue)
    hair = _shade(hair, 0.8 + 0.3 * t.hair_value)
    long_hair = t.hair_length
    # Hair behind the head; long hair reaches the shoulders.
    pen.ellipse(L.cx, L.cy - 0.03 + 0.12 * long_hair, L.rx * 1.28, L.ry * (1.0 + 0.4 * long_hair), hair)
    _shoulders(pen, L, _hsv(t.bg_hue + 0.5, 0.45, 0.35 + 0.3 * t.hair_value))
    pen.poly([(L.cx - 0.06, L.cy + 0.1), (L.cx + 0.06, L.cy + 0.1), (L.cx + 0.07, L.cy + L.ry + 0.08),
              (L.cx - 0.07, L.cy + L.ry + 0.08)], _shade(skin, 0.85))
    ear = L.rx * 0.98
    ear_r = 0.028 + 0.015 * t.ear_size
    pen.ellipse(L.cx - ear, L.cy + 0.01, ear_r, 0.05, _shade(skin, 0.92))
    pen.ellipse(L.cx + ear, L.cy + 0.01, ear_r, 0.05, _shade(skin, 0.92))
    pen.ellipse(L.cx, L.cy, L.rx, L.ry, skin)
    # Hair cap with a side parting: the hairline is lower on one side.
    part = 0.35 if t.side < 0.5 else -0.35
    hairline = []
    for k in range(13):
        s = 2 * k / 12 - 1
        hairline.append((L.cx + L.rx * 1.04 * s, L.cy - L.ry * (0.55 - 0.35 * s * s) + 0.04 * part * s - 0.02))
    cap = ellipse_points(L.cx, L.cy - 0.02, L.rx * 1.08, L.ry * 1.08, math.pi, 2 * math.pi, n=24)
    pen.poly(cap + hairline[::-1], hair)
    ey = L.cy - 0.015
    ex = 0.07 + 0.03 * t.eye_spacing
    erx, ery = 0.03 + 0.012 * t.eye_size, 0.016 + 0.006 * t.eye_size
    iris = _eye_colour(t, natural=True)
    for sgn in (-1, 1):
        pen.line([(L.cx + sgn * (ex - erx * 1.2), ey - 0.045), (L.cx + sgn * (ex + erx * 1.1), ey - 0.05)],
                 _shade(hair, 0.8), 0.012)
        _round_eye(pen, L.cx + sgn * ex, ey, erx, ery, iris, pupil_frac=0.45, lash=(0.1, 0.07, 0.06), highlight=False)
    pen.poly([(L.cx, ey + 0.02), (L.cx - 0.022, L.cy + 0.085), (L.cx + 0.022, L.cy + 0.085)], _shade(skin, 0.85))
    my = L.cy + L.ry * 0.55
    mw = 0.04 + 0.035 * t.mouth_width
    bend = 0.025 * (t.smile - 0.35)
    lips = _mix(skin, (0.7, 0.25, 0.28), 0.55)
    upper = _arc(L.cx, my, mw, bend)
    lower = _arc(L.cx, my, mw, bend + 0.018 + 0.006 * t.smile)
    pen.poly(upper + lower[::-1], lips)
    pen.line(upper, _shade(lips, 0.6), 0.006)


def _draw_anime(pen: _Pen, t: FaceTraits):
    L = _layout(t)
    skin = _mix((1.0, 0.88, 0.8), (0.96, 0.8, 0.7), t.tone_value)
    hair = _hsv(t.hair_hue, 0.55 + 0.3 * t.hair_value, 0.6 + 0.35 * t.hair_value)
    dark_hair = _shade(hair, 0.75)
    long_hair = t.hair_length
    # Long hair falls behind the shoulders as a big rounded block.
    pen.poly(ellipse_points(L.cx, L.cy - 0.04, L.rx * 1.35, L.ry * 1.15, math.pi, 2 * math.pi, n=24)
             + [(L.cx + L.rx * 1.35, L.cy + 0.1 + 0.35 * long_hair), (L.cx - L.rx * 1.35, L.cy + 0.1 + 0.35 * long_hair)],
             dark_hair)
    _shoulders(pen, L, _hsv(t.bg_hue + 0.5, 0.55, 0.85), width=0.32)
    pen.poly([(L.cx - 0.05, L.cy + 0.1), (L.cx + 0.05, L.cy + 0.1), (L.cx + 0.055, L.cy + L.ry + 0.07),
              (L.cx - 0.055, L.cy + L.ry + 0.07)], _shade(skin, 0.9))
    # Face: round cranium, cheeks narrowing to a small pointed chin.
    face = []
    for k in range(49):
        a = 2 * math.pi * k / 48
        x, y = math.cos(a), math.sin(a)
        if y > 0:
            x *= 1.0 - 0.55 * y ** 1.6
        face.append((L.cx + L.rx * 0.95 * x, L.cy + L.ry * (1.0 if y > 0 else 0.95) * y))
    pen.poly(face, skin)
    blush = _mix(skin, (1.0, 0.55, 0.6), 0.45)
    ey = L.cy + 0.04
    ex = 0.085 + 0.025 * t.eye_spacing
    erx, ery = 0.045 + 0.012 * t.eye_size, 0.062 + 0.02 * t.eye_size
    iris = _eye_colour(t, natural=False)
    for sgn in (-1, 1):
        pen.ellipse(L.cx + sgn * (ex + 0.01), ey + ery + 0.02, 0.035, 0.014, blush)
        x = L.cx + sgn * ex
        pen.ellipse(x, ey, erx, ery, (1.0, 1.0, 1.0))
        pen.ellipse(x, ey + ery * 0.08, erx * 0.8, ery * 0.9, _shade(iris, 0.65))
        pen.ellipse(x, ey + ery * 0.3, erx * 0.7, ery * 0.6, iris)
        pen.ellipse(x, ey + ery * 0.1, erx * 0.35, ery * 0.45, (0.08, 0.05, 0.1))
        pen.ellipse(x - sgn * erx * 0.3, ey - ery * 0.35, erx * 0.3, ery * 0.25, (1.0, 1.0, 1.0))
        pen.ellipse(x + sgn * erx * 0.3, ey + ery * 0.45, erx * 0.15, ery * 0.12, (1.0, 1.0, 1.0))
        pen.line(ellipse_points(x, ey, erx * 1.08, ery * 1.05, math.pi * 1.1, math.pi * 1.9, n=12), (0.1, 0.06, 0.08),
                 0.018)
        pen.line([(x - erx * 0.9, ey - ery - 0.045), (x + erx * 0.9, ey - ery - 0.05)], dark_hair, 0.01)
    pen.line([(L.cx, L.cy + 0.11), (L.cx - 0.006, L.cy + 0.12)], _shade(skin, 0.75), 0.008)
    my = L.cy + L.ry * 0.66
    mw = 0.015 + 0.015 * t.mouth_width
    if t.smile > 0.5:
        pen.poly(_arc(L.cx, my, mw, 0.0) + _arc(L.cx, my, mw, 0.012 + 0.02 * (t.smile - 0.5))[::-1], (0.75, 0.3, 0.35))
    else:
        pen.line(_arc(L.cx, my, mw, 0.015 * (t.smile - 0.25)), (0.5, 0.25, 0.25), 0.008)
    # Bangs: a zigzag fringe over the forehead, plus locks down both sides of the face.
    top = ellipse_points(L.cx, L.cy - 0.03, L.rx * 1.15, L.ry * 1.05, math.pi, 2 * math.pi, n=24)
    fringe = []
    spikes = 5
    for k in range(2 * spikes + 1):
        s = 2 * k / (2 * spikes) - 1
        depth = L.cy - L.ry * 0.12 + 0.02 * (t.side - 0.5) * s if k % 2 else L.cy - L.ry * 0.5 + 0.12 * s * s
        fringe.append((L.cx + L.rx * 1.12 * s, depth))
    pen.poly(top + fringe[::-1], hair)
    lock = 0.15 + 0.2 * long_hair
    for sgn in (-1, 1):
        pen.poly([(L.cx + sgn * L.rx * 1.14, L.cy - 0.1), (L.cx + sgn * L.rx * 0.8, L.cy - 0.08),
                  (L.cx + sgn * L.rx * 0.85, L.cy + lock), (L.cx + sgn * L.rx * 1.15, L.cy + lock - 0.04)], hair)


def _draw_fox(pen: _Pen, t: FaceTraits):
    L = _layout(t)
    fur = _hsv(0.02 + 0.065 * t.tone_hue, 0.7 + 0.25 * t.hair_value, 0.65 + 0.33 * t.tone_value)
    dark = _shade(fur, 0.7)
    white = (0.98, 0.96, 0.92)
    w = L.rx * 1.05
    # Chest ruff first, then the ears, then the head on top of their bases.
    pen.ellipse(L.cx, L.cy + L.ry * 1.45, 0.3, 0.22, fur)
    pen.ellipse(L.cx, L.cy + L.ry * 1.4, 0.14, 0.18, white)
    ear = 0.9 + 0.25 * t.ear_size
    for sgn in (-1, 1):
        base_in, base_out = (L.cx + sgn * 0.04, L.cy - 0.14), (L.cx + sgn * (w + 0.02), L.cy - 0.04)
        tip = (L.cx + sgn * (0.16 + 0.04 * t.ear_size), L.cy - 0.14 - 0.25 * ear)
        pen.poly([base_in, tip, base_out], fur)
        pen.poly([(_lerp(base_in[0], tip[0], 0.62), _lerp(base_in[1], tip[1], 0.62)), tip,
                  (_lerp(base_out[0], tip[0], 0.62), _lerp(base_out[1], tip[1], 0.62))], (0.12, 0.08, 0.07))
        inner = [(_lerp(base_in[0], base_out[0], 0.2), _lerp(base_in[1], base_out[1], 0.2) - 0.01),
                 (_lerp(tip[0], L.cx, 0.1), _lerp(tip[1], L.cy, 0.25)),
                 (_lerp(base_in[0], base_out[0], 0.8), _lerp(base_in[1], base_out[1], 0.8) - 0.01)]
        pen.poly(inner, (0.95, 0.85, 0.78))
    # Head: wide at the cheek fluff, tapering to a pointed muzzle.
    chin_y = L.cy + L.ry * 0.95
    head = ellipse_points(L.cx, L.cy - 0.01, w, L.ry * 0.72, math.pi, 2 * math.pi, n=24)
    head = head + [(L.cx + w * 1.12, L.cy + 0.06), (L.cx + w * 0.6, L.cy + 0.14), (L.cx + 0.03, chin_y),
                   (L.cx - 0.03, chin_y), (L.cx - w * 0.6, L.cy + 0.14), (L.cx - w * 1.12, L.cy + 0.06)]
    pen.poly(head, fur)
    # White cheeks meeting at the muzzle.
    pen.poly([(L.cx - w * 1.1, L.cy + 0.06), (L.cx - 0.06, L.cy + 0.03), (L.cx, L.cy + 0.07), (L.cx + 0.06, L.cy + 0.03),
              (L.cx + w * 1.1, L.cy + 0.06), (L.cx + w * 0.6, L.cy + 0.14), (L.cx + 0.03, chin_y),
              (L.cx - 0.03, chin_y), (L.cx - w * 0.6, L.cy + 0.14)], white)
    pen.poly([(L.cx - 0.03, L.cy - 0.12), (L.cx + 0.03, L.cy - 0.12), (L.cx + 0.015, L.cy + 0.02),
              (L.cx - 0.015, L.cy + 0.02)], _mix(fur, dark, 0.5))
    ey = L.cy - 0.02
    ex = 0.075 + 0.025 * t.eye_spacing
    erx, ery = 0.032 + 0.01 * t.eye_size, 0.02 + 0.007 * t.eye_size
    iris = _hsv(0.08 + 0.12 * t.eye_hue, 0.85, 0.85)
    for sgn in (-1, 1):
        x = L.cx + sgn * ex
        pen.ellipse(x, ey, erx * 1.15, ery * 1.3, (0.1, 0.06, 0.05), rot=sgn * 0.35)
        pen.ellipse(x, ey, erx, ery, iris, rot=sgn * 0.35)
        pen.ellipse(x, ey, erx * 0.18, ery * 0.9, (0.02, 0.02, 0.02))
    pen.ellipse(L.cx, chin_y - 0.03, 0.028, 0.02, (0.05, 0.04, 0.04))
    pen.line(_arc(L.cx, chin_y + 0.01, 0.02 + 0.01 * t.mouth_width, 0.01 * (t.smile - 0.3)), (0.25, 0.15, 0.12), 0.006)


def _draw_pony(pen: _Pen, t: FaceTraits):
    L = _layout(t)
    coat = _hsv(t.tone_hue, 0.22 + 0.2 * t.hair_value, 0.88 + 0.1 * t.tone_value)
    mane = _hsv(t.hair_hue, 0.6, 0.55 + 0.35 * t.hair_value)
    muzzle = _mix(coat, (1.0, 1.0, 1.0), 0.35)
    side = 1 if t.side < 0.5 else -1
    # Neck, with the mane flowing down one side of it.
    pen.poly([(L.cx - 0.14, L.cy), (L.cx + 0.14, L.cy), (L.cx + 0.22, 1.05), (L.cx - 0.22, 1.05)], _shade(coat, 0.92))
    mane_len = 0.25 + 0.25 * t.hair_length
    pen.poly([(L.cx + side * 0.05, L.cy - 0.28), (L.cx + side * 0.26, L.cy - 0.15), (L.cx + side * 0.3, L.cy + mane_len),
              (L.cx + side * 0.2, L.cy + mane_len + 0.12), (L.cx + side * 0.14, L.cy + 0.05)], mane)
    for sgn in (-1, 1):
        base = (L.cx + sgn * 0.1, L.cy - 0.19)
        tip = (L.cx + sgn * (0.17 + 0.03 * t.ear_size), L.cy - 0.36 - 0.06 * t.ear_size)
        pen.poly([(base[0] - 0.05, base[1] + 0.02), tip, (base[0] + 0.05, base[1] + 0.02)], coat)
        pen.poly([(base[0] - 0.025, base[1]), (_lerp(tip[0], base[0], 0.2), _lerp(tip[1], base[1], 0.2)),
                  (base[0] + 0.025, base[1])], _mix(coat, (0.9, 0.5, 0.6), 0.4))
    # Head: a rounded cranium joined to a long, rounded muzzle.
    hr = L.rx * 1.0
    pen.ellipse(L.cx, L.cy - 0.07, hr, 0.19 + 0.03 * t.face_height, coat)
    mz_y = L.cy + 0.14 + 0.04 * t.face_height
    mz_rx = hr * 0.68
    pen.poly([(L.cx - hr * 0.9, L.cy - 0.04), (L.cx + hr * 0.9, L.cy - 0.04), (L.cx + mz_rx, mz_y), (L.cx - mz_rx, mz_y)],
             coat)
    pen.ellipse(L.cx, mz_y + 0.01, mz_rx * 0.95, 0.1, muzzle)
    for sgn in (-1, 1):
        pen.ellipse(L.cx + sgn * mz_rx * 0.55, mz_y + 0.025, 0.009, 0.02, _shade(coat, 0.55), rot=-sgn * 0.5)
    pen.line(_arc(L.cx, mz_y + 0.075, 0.03 + 0.02 * t.mouth_width, 0.015 * (t.smile - 0.3)), _shade(coat, 0.5), 0.007)
    ey = L.cy - 0.08
    ex = 0.1 + 0.03 * t.eye_spacing
    erx, ery = 0.045 + 0.012 * t.eye_size, 0.055 + 0.015 * t.eye_size
    iris = _eye_colour(t, natural=False)
    for sgn in (-1, 1):
        x = L.cx + sgn * ex
        _round_eye(pen, x, ey, erx, ery, iris, pupil_frac=0.5, lash=(0.08, 0.05, 0.08))
        pen.line([(x + sgn * erx * 0.7, ey - ery * 0.7), (x + sgn * (erx + 0.025), ey - ery - 0.015)], (0.08, 0.05, 0.08),
                 0.008)
    # Forelock over the forehead, swept to the mane's side.
    pen.poly([(L.cx - 0.08, L.cy - 0.27), (L.cx + 0.08, L.cy - 0.28), (L.cx + side * 0.1, L.cy - 0.15),
              (L.cx + side * 0.02, L.cy - 0.12 + 0.04 * t.hair_length), (L.cx - side * 0.06, L.cy - 0.2)], mane)


def _draw_furry(pen: _Pen, t: FaceTraits):
    L = _layout(t)
    fur = _palette([(0.35, 0.35, 0.38), (0.55, 0.55, 0.58), (0.45, 0.36, 0.28), (0.62, 0.5, 0.38), (0.3, 0.25, 0.22),
                    (0.5, 0.55, 0.65), (0.75, 0.74, 0.72)], t.tone_hue)
    fur = _shade(fur, 0.75 + 0.45 * t.tone_value)
    marking = _shade(_mix(fur, _palette([(0.1, 0.1, 0.1), (0.35, 0.2, 0.1), (0.25, 0.25, 0.35)], t.hair_hue), 0.6),
                     0.8 + 0.3 * t.hair_value)
    light = _mix(fur, (0.95, 0.93, 0.88), 0.7)
    w = L.rx * 1.12
    pen.ellipse(L.cx, L.cy + L.ry * 1.45, 0.32, 0.22, fur)
    pen.ellipse(L.cx, L.cy + L.ry * 1.45, 0.14, 0.2, light)
    ear_h = 0.22 + 0.06 * t.ear_size
    for sgn in (-1, 1):
        base_in, base_out = (L.cx + sgn * 0.03, L.cy - 0.15), (L.cx + sgn * 0.2, L.cy - 0.1)
        tip = (L.cx + sgn * 0.135, L.cy - 0.15 - ear_h)
        pen.poly([base_in, tip, base_out], marking)
        pen.poly([(_lerp(base_in[0], base_out[0], 0.25), base_in[1] + 0.01), (tip[0], tip[1] + 0.05),
                  (_lerp(base_in[0], base_out[0], 0.75), base_out[1] - 0.01)], (0.75, 0.6, 0.6))
    # Broad head with jagged cheek tufts.
    head = ellipse_points(L.cx, L.cy - 0.01, w, L.ry * 0.75, math.pi, 2 * math.pi, n=24)
    tufts = [(L.cx + w, L.cy - 0.01), (L.cx + w + 0.06, L.cy + 0.06), (L.cx + w - 0.01, L.cy + 0.07),
             (L.cx + w + 0.04, L.cy + 0.13), (L.cx + w * 0.55, L.cy + 0.14), (L.cx + 0.07, L.cy + L.ry * 0.82)]
    head = head + tufts + [(2 * L.cx - x, y) for x, y in tufts[::-1]]
    pen.poly(head, fur)
    # Darker saddle over the forehead, pale muzzle and brows.
    pen.poly(ellipse_points(L.cx, L.cy - 0.03, w * 0.45, L.ry * 0.62, math.pi * 1.15, math.pi * 1.85, n=16)
             + [(L.cx + 0.025, L.cy - 0.05), (L.cx - 0.025, L.cy - 0.05)], marking)
    muzzle_y = L.cy + 0.09
    pen.poly([(L.cx - 0.045, L.cy - 0.03), (L.cx + 0.045, L.cy - 0.03), (L.cx + 0.085, muzzle_y),
              (L.cx - 0.085, muzzle_y)], light)
    pen.ellipse(L.cx, muzzle_y + 0.03, 0.09, 0.075, light)
    ey = L.cy - 0.03
    ex = 0.085 + 0.025 * t.eye_spacing
    erx, ery = 0.03 + 0.01 * t.eye_size, 0.022 + 0.008 * t.eye_size
    iris = _palette([(0.35, 0.6, 0.85), (0.85, 0.65, 0.2), (0.45, 0.7, 0.35), (0.6, 0.4, 0.2)], t.eye_hue)
    for sgn in (-1, 1):
        x = L.cx + sgn * ex
        pen.ellipse(x + sgn * 0.005, ey - ery - 0.02, 0.022, 0.01, light)
        pen.ellipse(x, ey, erx * 1.2, ery * 1.3, (0.08, 0.07, 0.07), rot=sgn * 0.2)
        pen.ellipse(x, ey, erx, ery, iris, rot=sgn * 0.2)
        pen.ellipse(x, ey, erx * 0.4, ery * 0.7, (0.02, 0.02, 0.02))
    pen.ellipse(L.cx, muzzle_y - 0.005, 0.04, 0.027, (0.06, 0.05, 0.05))
    mw = 0.03 + 0.015 * t.mouth_width
    bend = 0.012 * (t.smile - 0.2)
    mouth_y = muzzle_y + 0.055
    pen.line([(L.cx, muzzle_y + 0.02), (L.cx, mouth_y)], (0.15, 0.12, 0.12), 0.006)
    pen.line(_arc(L.cx - mw / 2, mouth_y, mw / 2, bend), (0.15, 0.12, 0.12), 0.006)
    pen.line(_arc(L.cx + mw / 2, mouth_y, mw / 2, bend), (0.15, 0.12, 0.12), 0.006)


_DRAWERS = {"human": _draw_human, "anime": _draw_anime, "fox": _draw_fox, "pony": _draw_pony, "furry": _draw_furry}


def _render_large(z: np.ndarray, domain: str, pixels: int) -> Image.Image:
    if domain not in _DRAWERS:
        raise ValueError(f"unknown domain {domain!r}; choose one of {', '.join(DOMAINS)}")
    traits = FaceTraits.from_z(z)
    image = Image.new("RGB", (pixels, pixels), _rgb255(_background(traits)))
    layout = _layout(traits)
    pen = _Pen(image, (layout.cx, layout.cy + 0.1), angle=0.25 * (traits.tilt - 0.5))
    _DRAWERS[domain](pen, traits)
    return image


def render_face(z: np.ndarray, domain: str, size: int = 64) -> np.ndarray:
    """The face of ``domain`` for latent ``z`` (>= TRAIT_DIMS entries) as uint8 [size, size, 3]; deterministic."""
    large = _render_large(z, domain, size * SUPERSAMPLE)
    return np.asarray(large.resize((size, size), Image.BOX), dtype=np.uint8)


def render_photo(seed: int, size: int = 256) -> np.ndarray:
    """A photo-like human face for the /encode demo: the procedural human under soft directional light, with skin
    texture and sensor noise, so it is plainly not a generator output. uint8 [size, size, 3]."""
    rng = np.random.RandomState(seed)
    z = rng.randn(max(TRAIT_DIMS, 128))
    large = _render_large(z, "human", size * SUPERSAMPLE).resize((size, size), Image.LANCZOS)
    large = large.filter(ImageFilter.GaussianBlur(radius=size / 256 * 0.8))
    img = np.asarray(large, dtype=np.float32) / 255.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    light = 0.78 + 0.32 * (1 - xx) * (1 - 0.4 * yy) + 0.1 * np.exp(-((xx - 0.4) ** 2 + (yy - 0.4) ** 2) / 0.05)
    vignette = 1.0 - 0.35 * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2)
    texture = np.asarray(Image.fromarray((rng.rand(size // 4, size // 4) * 255).astype(np.uint8)).resize(
        (size, size), Image.BICUBIC), dtype=np.float32) / 255.0
    img = img * (light * vignette)[..., None] * (0.94 + 0.12 * texture)[..., None]
    img = img + rng.randn(size, size, 3).astype(np.float32) * 0.015
    return (np.clip(img, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
