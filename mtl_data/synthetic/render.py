"""Procedural face rendering: a cartoon face whose shapes carry the labels.

Tasks share visual evidence, as on real faces:
- age: face proportions (a child's round face, large low eyes, small nose), hair greying,
  receding hairline, wrinkles, sagging jowls, skin tone and age spots;
- gender: hair length (the strongest cue, not a perfect one), jaw shape and face width,
  beard, brow thickness, lipstick;
- smile: mouth curvature, width and teeth (the mouth is shared with emotion);
- emotion: brow height and angle, eye openness, mouth opening and shape, and a few
  furrows, so that it survives FER2013's 48x48 grayscale.
Nuisances (pose, scale, lighting, colour cast, blur, noise, background clutter) come
from `FaceLook`, already scaled by the source's `nuisance` knob.

Drawing is in *face units*: the head ellipse spans about x in [-0.8, 0.8] and y in
[-1, 1] (y points down). Everything is drawn on a canvas supersampled `SUPERSAMPLE`
times, then downsampled, which anti-aliases the PIL primitives.
"""

from __future__ import annotations

import math
from functools import cache, lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from mtl_core.tasks import EMOTIONS
from mtl_data.synthetic.attributes import FaceLabels, FaceLook
from mtl_data.synthetic.expressions import EXPRESSIONS, Expression, with_smile

SUPERSAMPLE = 2
HEAD_EXTENT = 2.3  # face units from the top of the hair to the chin


class _Pen:
    """Draws shapes given in face units onto the supersampled canvas."""

    def __init__(
        self, draw: ImageDraw.ImageDraw, center: tuple[float, float], ppu: float, roll_deg: float
    ) -> None:
        self.draw = draw
        self.center = np.asarray(center, float)
        self.ppu = ppu  # canvas pixels per face unit
        a = math.radians(roll_deg)
        self.rot_t = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]).T

    def pts(self, xy: np.ndarray) -> list[float]:
        """Face units -> canvas pixels, as PIL's flat [x0, y0, x1, y1, ...]."""
        out = (np.asarray(xy, float) * self.ppu) @ self.rot_t + self.center
        return out.ravel().tolist()

    def poly(self, xy: np.ndarray, fill: tuple[int, ...]) -> None:
        self.draw.polygon(self.pts(xy), fill=fill)

    def ellipse(
        self, cx: float, cy: float, rx: float, ry: float, fill: tuple[int, ...], n: int = 40
    ) -> None:
        cos, sin = _circle(n)
        xy = np.empty((n, 2))
        xy[:, 0] = cx + rx * cos
        xy[:, 1] = cy + ry * sin
        self.poly(xy, fill)

    def line(self, xy: np.ndarray, fill: tuple[int, ...], width: float) -> None:
        w = max(1, round(width * self.ppu))
        self.draw.line(self.pts(xy), fill=fill, width=w, joint="curve")


def _rgba(rgb: np.ndarray | tuple[float, ...], alpha: float = 1.0) -> tuple[int, int, int, int]:
    r, g, b = rgb.tolist() if isinstance(rgb, np.ndarray) else rgb
    return (_byte(r), _byte(g), _byte(b), _byte(255 * float(alpha)))


def _byte(value: float) -> int:
    v = round(float(value))
    return 0 if v < 0 else 255 if v > 255 else v


# Rendering is thousands of small numpy calls per second: the constant sample grids are
# computed once (the same values as computing them per call, so the same bytes).
@cache
def _grid(start: float, stop: float, n: int) -> np.ndarray:
    out = np.linspace(start, stop, n)
    out.flags.writeable = False
    return out


@cache
def _circle(n: int, start: float = 0.0, stop: float = 2 * np.pi, endpoint: bool = False):
    t = np.linspace(start, stop, n, endpoint=endpoint)
    cos, sin = np.cos(t), np.sin(t)
    cos.flags.writeable = sin.flags.writeable = False
    return cos, sin


@lru_cache(maxsize=8)
def _ramps(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical ramps from -0.5 to 0.5 over an (h, w) image."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xs, ys = xx / max(w - 1, 1) - 0.5, yy / max(h - 1, 1) - 0.5
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


def _lerp(a: np.ndarray | tuple, b: np.ndarray | tuple, t: float) -> np.ndarray:
    return np.asarray(a, float) * (1 - t) + np.asarray(b, float) * t


def render_face(
    labels: FaceLabels,
    look: FaceLook,
    rng: np.random.Generator,
    size: tuple[int, int],
    face_frac: float = 0.85,
    second_face: tuple[FaceLabels, FaceLook] | None = None,
    no_face: bool = False,
) -> np.ndarray:
    """Render one face; returns (H, W, 3) uint8 with `size` = (W, H).

    face_frac: fraction of min(W, H) the head (hair to chin) fills, before `look.scale`.
    second_face: another, smaller face in the top-left corner (IMDB-WIKI's second faces).
    no_face: background only (IMDB-WIKI entries where the detector found no face).
    """
    w, h = size
    canvas = Image.new("RGB", (w * SUPERSAMPLE, h * SUPERSAMPLE), _rgba(look.background)[:3])
    draw = ImageDraw.Draw(canvas, "RGBA")
    _background(draw, canvas.size, look, rng)
    side = min(w, h) * SUPERSAMPLE
    if second_face is not None:
        lab2, look2 = second_face
        ppu2 = 0.4 * face_frac * side / HEAD_EXTENT
        pen2 = _Pen(draw, (0.2 * side, 0.2 * side), ppu2, look2.roll)
        _face(pen2, lab2, look2, rng)
    if not no_face:
        (cx, cy), ppu = _placement(labels, look, size, face_frac)
        pen = _Pen(draw, (cx * SUPERSAMPLE, cy * SUPERSAMPLE), ppu * SUPERSAMPLE, look.roll)
        _face(pen, labels, look, rng)
    small = canvas.resize((w, h), Image.Resampling.LANCZOS)
    if look.blur > 0:
        small = small.filter(ImageFilter.GaussianBlur(look.blur))
    img = np.asarray(small, dtype=np.float32)
    return _photograph(img, look, rng)


def _placement(
    labels: FaceLabels, look: FaceLook, size: tuple[int, int], face_frac: float
) -> tuple[tuple[float, float], float]:
    """Where the face goes: its centre in output pixels, and output pixels per face unit."""
    w, h = size
    child = float(np.clip((16 - labels.age) / 16, 0, 1))
    ppu = face_frac * min(w, h) / HEAD_EXTENT * look.scale * (1 - 0.1 * child)
    side = min(w, h)
    return (w / 2 + look.shift[0] * side, h / 2 + look.shift[1] * side + 0.1 * ppu), ppu


def face_box(
    labels: FaceLabels, look: FaceLook, size: tuple[int, int], face_frac: float
) -> tuple[float, float, float, float]:
    """The face's box (x1, y1, x2, y2) in output pixels, 0-based edges: ear to ear and
    hairline to chin, as a face detector would report it."""
    (cx, cy), ppu = _placement(labels, look, size, face_frac)
    return (cx - 0.88 * ppu, cy - 0.95 * ppu, cx + 0.88 * ppu, cy + 1.0 * ppu)


def _background(
    draw: ImageDraw.ImageDraw, size: tuple[int, int], look: FaceLook, rng: np.random.Generator
) -> None:
    """Clutter: random translucent rectangles and ellipses behind the face."""
    cw, ch = size
    for _ in range(look.clutter):
        x0, x1 = sorted(rng.uniform(-0.2, 1.2, 2) * cw)
        y0, y1 = sorted(rng.uniform(-0.2, 1.2, 2) * ch)
        fill = _rgba(rng.uniform(0, 255, 3), rng.uniform(0.4, 0.9))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        else:
            draw.ellipse((x0, y0, x1, y1), fill=fill)


def _photograph(img: np.ndarray, look: FaceLook, rng: np.random.Generator) -> np.ndarray:
    """Lighting, colour cast and sensor noise on a float (H, W, 3) image; returns uint8."""
    h, w, _ = img.shape
    angle, strength, _ = look.light
    xs, ys = _ramps(h, w)
    ramp = xs * math.cos(angle) + ys * math.sin(angle)
    img = img * (look.gain * (1 + 2 * strength * ramp))[..., None]
    img = img * np.asarray(look.cast, np.float32)
    if look.noise > 0:
        img = img + rng.normal(0, look.noise, img.shape).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _face(pen: _Pen, lab: FaceLabels, look: FaceLook, rng: np.random.Generator) -> None:
    # Over 60 lines on purpose: one routine in painting order (head, hair, features), so the
    # face's shared geometry (fx, fy, ey, skin) stays in one place instead of ten arguments.
    """Draw the head, hair and features of one face."""
    age = lab.age
    male = lab.gender == 1
    ex = EXPRESSIONS[EMOTIONS[lab.emotion]]
    if lab.smile:
        ex = with_smile(ex)
    child = float(np.clip((16 - age) / 16, 0, 1))  # 1 newborn .. 0 from 16 years
    old = float(np.clip((age - 40) / 45, 0, 1))  # 0 until 40 .. 1 from 85 years
    jowl = float(np.clip((age - 55) / 30, 0, 1))
    grey = float(np.clip((age - look.grey_onset) / 40, 0, 1))

    skin = _lerp(look.skin, np.full(3, np.mean(look.skin)) * 0.92, 0.35 * old)
    skin = _lerp(skin, (250, 245, 240), 0.3 * ex.pale)
    hair = _lerp(look.hair, (232, 232, 228), grey)
    brow_col = _lerp(_lerp(look.hair, (30, 22, 20), 0.6), (200, 200, 195), 0.7 * grey)

    rx = 0.8 * look.width * (1.1 if male else 0.92) * (1 + 0.06 * child)
    ry = 1.0 * (1 - 0.1 * child)
    fx = 0.16 * look.yaw  # features slide sideways with yaw ...
    fy = 0.08 * look.pitch  # ... and up or down with pitch

    # Body: clothes, long hair falling behind the shoulders, neck, ears.
    pen.poly(
        np.array([(-1.9, 3.0), (-1.6, 1.45), (-0.45, 1.15), (0.45, 1.15), (1.6, 1.45), (1.9, 3.0)]),
        _rgba(look.clothes),
    )
    hair_back = (0, -0.22, rx + 0.07, 0.96)
    if look.long_hair:
        pen.poly(
            np.array([(-rx - 0.4, -0.2), (-rx - 0.55, 2.2), (rx + 0.55, 2.2), (rx + 0.4, -0.2)]),
            _rgba(hair),
        )
        hair_back = (0, -0.2, rx + 0.4, 1.02)
    if child < 0.9:
        pen.ellipse(*hair_back, _rgba(hair))
    pen.poly(np.array([(-0.3, 0.5), (-0.32, 1.3), (0.32, 1.3), (0.3, 0.5)]), _rgba(skin * 0.82))
    for s in (-1, 1):
        pen.ellipse(s * rx, 0.02 + fy, 0.12, 0.2, _rgba(skin * 0.9))

    # Head: an ellipse, squared at the jaw for men, sagging with age.
    pen.ellipse(0, 0, rx, ry, _rgba(skin))
    if male and child < 0.5:
        pen.poly(
            np.array(
                [
                    (-rx * 0.99, 0.1),
                    (-rx * 0.82, 0.78),
                    (-0.38, ry * 0.97),
                    (0.38, ry * 0.97),
                    (rx * 0.82, 0.78),
                    (rx * 0.99, 0.1),
                ]
            ),
            _rgba(skin),
        )
    if jowl > 0:
        for s in (-1, 1):
            pen.ellipse(s * rx * 0.72, 0.72, 0.2, 0.16 + 0.06 * jowl, _rgba(skin * 0.97))
            pen.line(
                np.array([(s * rx * 0.62, 0.55), (s * rx * 0.55, 0.88)]),
                _rgba(skin * 0.6, 0.8 * jowl),
                0.03,
            )
    if ex.cheeks > 0:
        for s in (-1, 1):
            pen.ellipse(s * 0.42 + fx, 0.22 + fy, 0.17, 0.12, _rgba((220, 90, 90), 0.35))

    # Features are placed for an adult, then moved and scaled towards a child's.
    ey = -0.08 + 0.14 * child + fy
    es = 1 + 0.45 * child  # eye size
    _wrinkles(pen, old, skin, fx, fy, ey)
    _age_spots(pen, rng, jowl, skin, rx)
    if look.beard > 0:
        a = look.beard
        pen.poly(
            np.array(
                [
                    (-rx * 0.97, 0.15),
                    (-rx * 0.8, 0.78),
                    (-0.36, ry),
                    (0.36, ry),
                    (rx * 0.8, 0.78),
                    (rx * 0.97, 0.15),
                    (0.3, 0.4 + fy),
                    (-0.3, 0.4 + fy),
                ]
            ),
            _rgba(_lerp(hair, (40, 30, 25), 0.3), 0.75 * a),
        )
    _hair_top(pen, look, hair, rx, ry, child, look.long_hair)
    _brows(pen, ex, brow_col, male, child, fx, ey)
    _eyes(pen, ex, es, fx, ey, skin)
    _nose(pen, ex, skin, child, fx, fy)
    lip = np.array((190, 30, 45)) if look.lipstick else skin * np.array((0.8, 0.55, 0.55))
    _mouth(pen, ex, lip, child, fx, fy)


def _hair_top(
    pen: _Pen, look: FaceLook, hair: np.ndarray, rx: float, ry: float, child: float, long_hair: bool
) -> None:
    """Hair over the top of the head down to the hairline; sparse on babies."""
    hairline = -0.48 - 0.4 * look.bald
    cos, sin = _circle(60)
    cap = np.stack([rx * 1.06 * cos, -0.04 + ry * 1.08 * sin], 1)
    cap = cap[cap[:, 1] < hairline]
    alpha = 1.0 - 0.7 * max(0.0, (child - 0.85) / 0.15)  # newborns: thin hair
    if len(cap) >= 3:
        pen.poly(cap[np.argsort(np.arctan2(cap[:, 1], cap[:, 0]))], _rgba(hair, alpha))
    if long_hair:  # locks framing the face
        for s in (-1, 1):
            pen.poly(
                np.array(
                    [
                        (s * rx * 1.1, -0.6),
                        (s * rx * 0.8, -0.6),
                        (s * rx * 0.9, 0.3),
                        (s * rx * 1.12, 0.75),
                    ]
                ),
                _rgba(hair, alpha),
            )


def _wrinkles(pen: _Pen, old: float, skin: np.ndarray, fx: float, fy: float, ey: float) -> None:
    """Forehead lines, crow's feet, nasolabial folds and eye bags, darker with age."""
    if old <= 0:
        return
    col = _rgba(skin * 0.55, 0.25 + 0.7 * old)
    for k in range(1 + int(old * 3)):
        y = -0.42 - 0.09 * k + fy
        x = _grid(-0.42, 0.42, 9)
        pen.line(np.stack([x + fx, y - 0.04 * (1 - (x / 0.42) ** 2)], 1), col, 0.035)
    for s in (-1, 1):
        pen.line(np.array([(s * 0.16 + fx, 0.22 + fy), (s * 0.34 + fx, 0.56 + fy)]), col, 0.04)
        pen.line(np.array([(s * 0.5 + fx, ey - 0.04), (s * 0.6 + fx, ey - 0.09)]), col, 0.03)
        pen.line(np.array([(s * 0.5 + fx, ey + 0.03), (s * 0.6 + fx, ey + 0.07)]), col, 0.03)
        x = _grid(-0.14, 0.14, 7)
        pen.line(
            np.stack([s * 0.33 + fx + x, ey + 0.15 + 0.05 * (1 - (x / 0.14) ** 2)], 1), col, 0.03
        )


def _age_spots(
    pen: _Pen, rng: np.random.Generator, jowl: float, skin: np.ndarray, rx: float
) -> None:
    for _ in range(round(8 * jowl)):
        x, y = rng.uniform(-0.6, 0.6) * rx / 0.8, rng.uniform(-0.6, 0.7)
        pen.ellipse(x, y, 0.04, 0.035, _rgba(skin * 0.7, 0.6), n=12)


def _brows(
    pen: _Pen, ex: Expression, col: np.ndarray, male: bool, child: float, fx: float, ey: float
) -> None:
    """Thick brows; their height and angle carry most of the emotion above the mouth."""
    by = ey - 0.26 - ex.brow_up
    width = (0.12 if male else 0.09) * (1 - 0.3 * child)
    for s in (-1, 1):
        t = _grid(0, 1, 8)  # inner (0) to outer (1)
        x = s * (0.08 + 0.5 * t) + fx
        y = by + ex.brow_tilt * (1 - t) - ex.brow_tilt * 0.3 * t - ex.brow_arch * np.sin(np.pi * t)
        y = y - 0.04 * np.sin(np.pi * t)  # a natural slight arch
        pen.line(np.stack([x, y], 1), _rgba(col), width)
    if ex.furrow > 0:
        for s in (-1, 1):
            pen.line(
                np.array([(s * 0.05 + fx, by + 0.02), (s * 0.04 + fx, by + 0.16)]),
                _rgba(col * 0.6, 0.8),
                0.03,
            )


def _eyes(pen: _Pen, ex: Expression, es: float, fx: float, ey: float, skin: np.ndarray) -> None:
    """White, iris and pupil; eye height follows the emotion, eye size the age."""
    rx, ry = 0.2 * es, max(0.12 * ex.eye_open * es, 0.015)
    for s in (-1, 1):
        cx = s * 0.34 + fx * 1.1
        pen.ellipse(cx, ey, rx, ry, _rgba((240, 240, 235)))
        ir = 0.085 * es
        pen.ellipse(cx + 0.3 * fx, ey, ir, min(ir, ry), _rgba((55, 40, 30)))
        pen.ellipse(cx + 0.3 * fx, ey, 0.03 * es, min(0.03 * es, ry), _rgba((5, 5, 5)))
        cos, sin = _circle(9, np.pi, 2 * np.pi, True)
        pen.line(np.stack([cx + rx * cos, ey + ry * sin], 1), _rgba((25, 20, 20)), 0.045)


def _nose(pen: _Pen, ex: Expression, skin: np.ndarray, child: float, fx: float, fy: float) -> None:
    length = 0.3 * (1 - 0.4 * child)
    nx = 1.5 * fx
    pen.line(
        np.array([(0.02 + fx, -0.02 + fy), (0.06 + nx, 0.02 + length + fy)]),
        _rgba(skin * 0.7),
        0.035,
    )
    for s in (-1, 1):
        pen.ellipse(s * 0.07 + nx, 0.05 + length + fy, 0.035, 0.022, _rgba(skin * 0.45), n=12)
    if ex.nose_wrinkle > 0:
        for k in range(3):
            y = 0.02 + 0.06 * k + fy
            pen.line(
                np.array([(-0.09 + fx, y), (0.09 + fx, y - 0.02)]), _rgba(skin * 0.5, 0.9), 0.025
            )


def _mouth(pen: _Pen, ex: Expression, lip: np.ndarray, child: float, fx: float, fy: float) -> None:
    """Lips along a parabola whose corners go up (smile) or down; open mouths show a dark
    inside, teeth when smiling, and an 'O' when round."""
    cy = 0.5 + 0.06 * child + fy
    hw = 0.4 * ex.mouth_width * (1 - 0.2 * child)
    x = _grid(-1, 1, 17)
    bend = 1 - x**2
    y_up = cy - ex.mouth_curve * 0.26 * x**2 - ex.mouth_round * 0.14 * np.sqrt(bend)
    y_up = y_up - ex.mouth_asym * np.clip(x, 0, 1)
    xs = x * hw + fx * 1.2
    if ex.mouth_open > 0:
        depth = ex.mouth_open * 0.42 * bend**0.7 + max(ex.mouth_curve, 0) * 0.1 * bend
        y_lo = y_up + depth
        inside = np.concatenate([np.stack([xs, y_up], 1), np.stack([xs, y_lo], 1)[::-1]])
        pen.poly(inside, _rgba((70, 20, 25)))
        if ex.mouth_curve > 0:  # teeth show in an open smile
            teeth = y_up + 0.8 * depth
            band = np.concatenate([np.stack([xs, y_up], 1), np.stack([xs, teeth], 1)[::-1]])
            pen.poly(band, _rgba((240, 238, 228)))
        pen.line(np.stack([xs, y_lo], 1), _rgba(lip), 0.08)
    pen.line(np.stack([xs, y_up], 1), _rgba(lip), 0.1)
