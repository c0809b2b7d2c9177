"""SynthAffect face model: identities, the valence/arousal -> expression mapping, and the renderer.

A face is built in a *canonical* frame (units of about one face half-width, origin between the cheeks at
eye level, y pointing down) as polygons and 68 iBUG landmarks computed from the same geometry. A `Pose`
(in-plane rotation, translation, scale) maps both to image pixels, so the landmarks are exactly where the
features are drawn. Drawing is done with Pillow at twice the output size and box-downsampled (cheap
anti-aliasing), then a `Scene` adds lighting, sensor noise and blur.

Why the mapping is the way it is: MT-CLAR compares two frames and predicts their valence/arousal
*difference*. SynthAffect therefore makes expression visible but identity-dependent: every identity has its
own neutral mouth curvature, gains, thresholds and curve shapes, so an absolute reading from one frame is
ambiguous while the change between two frames of one identity is clear.

The module is longer than most because the face geometry, its 68 landmarks and the drawing must agree point
for point, so they stay in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SUPERSAMPLE = 2
NUM_LANDMARKS = 68
EYE_Y = -0.15  # eye level in canonical units; the jaw starts here too
# Fraction of the image width covered by one canonical unit at scale 1 (face half-width ~ 0.27 S).
BASE_SCALE = 0.27

SKIN_TONES = np.array(
    [(255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 134, 96), (160, 102, 66), (118, 74, 46), (86, 56, 38)],
    dtype=np.float64,
)
HAIR_COLOURS = np.array(
    [(20, 16, 14), (58, 38, 24), (104, 68, 40), (168, 128, 78), (214, 180, 120), (140, 60, 30), (120, 120, 120)],
    dtype=np.float64,
)
IRIS_COLOURS = np.array([(60, 40, 25), (90, 60, 30), (50, 90, 140), (70, 110, 70), (40, 40, 40)], dtype=np.float64)


def _colour(value) -> tuple[int, int, int]:
    return tuple(int(round(c)) for c in np.clip(value, 0, 255))


@dataclass(frozen=True)
class Identity:
    """One synthetic person: appearance plus its own way of showing valence and arousal."""

    # appearance (canonical units)
    face_width: float
    chin: float
    jaw_power: float
    crown: float
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_style: int  # 0 shaved, 1 short, 2 long, 3 fringe
    hair_line: float
    eye_spacing: float
    eye_width: float
    iris: tuple[int, int, int]
    brow_gap: float
    brow_thickness: float
    brow_arch: float
    nose_length: float
    nose_width: float
    mouth_y: float
    mouth_width: float
    lip_upper: float
    lip_lower: float
    lip: tuple[int, int, int]
    shirt: tuple[int, int, int]
    glasses: bool
    beard: bool
    earrings: bool
    # expression mapping (see expression_for)
    curve_offset: float
    curve_gain: float
    curve_sharpness: float
    open_base: float
    open_gain: float
    open_threshold: float
    open_slope: float
    eye_base: float
    eye_gain: float
    eye_gamma: float
    smile_squint: float
    brow_offset: float
    brow_gain: float
    brow_tilt_gain: float


def sample_identity(identity_seed: int) -> Identity:
    """The identity with this seed; the same seed always gives the same person."""
    rng = np.random.default_rng([0x5EED_FACE, int(identity_seed)])
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.93, 1.05) + rng.normal(0, 6, 3)
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] * rng.uniform(0.8, 1.15)
    lip = skin * np.array([0.78, 0.52, 0.52]) + np.array([40, 0, 5]) + rng.normal(0, 6, 3)
    return Identity(
        face_width=rng.uniform(0.86, 1.04),
        chin=rng.uniform(1.12, 1.42),
        jaw_power=rng.uniform(0.55, 1.5),
        crown=rng.uniform(-1.32, -1.12),
        skin=_colour(skin),
        hair=_colour(hair),
        hair_style=int(rng.choice(4, p=[0.12, 0.38, 0.3, 0.2])),
        hair_line=rng.uniform(-0.92, -0.68),
        eye_spacing=rng.uniform(0.31, 0.44),
        eye_width=rng.uniform(0.12, 0.165),
        iris=_colour(IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))]),
        brow_gap=rng.uniform(0.16, 0.24),
        brow_thickness=rng.uniform(0.035, 0.07),
        brow_arch=rng.uniform(0.0, 0.06),
        nose_length=rng.uniform(0.32, 0.45),
        nose_width=rng.uniform(0.09, 0.16),
        mouth_y=rng.uniform(0.52, 0.68),
        mouth_width=rng.uniform(0.26, 0.4),
        lip_upper=rng.uniform(0.025, 0.06),
        lip_lower=rng.uniform(0.035, 0.08),
        lip=_colour(lip),
        shirt=_colour(rng.uniform(20, 235, 3)),
        glasses=bool(rng.random() < 0.2),
        beard=bool(rng.random() < 0.15),
        earrings=bool(rng.random() < 0.15),
        # Identity-dependent expression mapping: a neutral face that already smiles or frowns, different
        # gains, and saturating curves with their own sharpness and thresholds.
        curve_offset=rng.normal(0.0, 0.04),
        curve_gain=rng.uniform(0.06, 0.14),
        curve_sharpness=rng.uniform(0.8, 2.8),
        open_base=rng.uniform(0.0, 0.03),
        open_gain=rng.uniform(0.05, 0.16),
        open_threshold=rng.uniform(-0.1, 0.6),
        open_slope=rng.uniform(3.0, 8.0),
        eye_base=rng.uniform(0.045, 0.07),
        eye_gain=rng.uniform(0.5, 1.2),
        eye_gamma=rng.uniform(0.6, 1.8),
        smile_squint=rng.uniform(0.1, 0.45),
        brow_offset=rng.normal(0.0, 0.025),
        brow_gain=rng.uniform(0.03, 0.08),
        brow_tilt_gain=rng.uniform(0.03, 0.08),
    )


@dataclass(frozen=True)
class Expression:
    """Face geometry driven by valence and arousal (canonical units)."""

    mouth_curve: float  # > 0: corners up
    mouth_open: float
    mouth_width_scale: float
    eye_open: float
    brow_raise: float
    brow_inner: float  # > 0: inner ends of the brows lifted (sad/fear); < 0 lowered (anger)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def expression_for(identity: Identity, valence: float, arousal: float) -> Expression:
    """The non-linear, identity-dependent mapping from (valence, arousal) in [-1, 1] to geometry.

    Valence mostly drives mouth curvature (and width, and a squint on strong smiles); arousal drives mouth
    opening, eye opening and brow height; their interaction tilts the brows (low-arousal negative faces lift
    the inner brows, high-arousal negative faces lower them).
    """
    v, a = float(np.clip(valence, -1, 1)), float(np.clip(arousal, -1, 1))
    k = identity.curve_sharpness
    curve = identity.curve_offset + identity.curve_gain * math.tanh(k * v) / math.tanh(k)
    width_scale = 1.0 + 0.14 * max(v, 0.0) ** 1.5 - 0.06 * max(-v, 0.0)
    opening = identity.open_base + identity.open_gain * _sigmoid(identity.open_slope * (a - identity.open_threshold))
    opening += 0.035 * max(v, 0.0) ** 2 * (a + 1) / 2  # laughing opens the mouth a little more
    arousal01 = (a + 1) / 2
    eye_open = identity.eye_base * (0.45 + identity.eye_gain * arousal01**identity.eye_gamma)
    eye_open *= 1.0 - identity.smile_squint * max(v - 0.3, 0.0)
    brow_raise = identity.brow_offset + identity.brow_gain * (a + 0.5 * max(a, 0.0) ** 2)
    brow_inner = identity.brow_tilt_gain * max(-v, 0.0) * (0.3 - a) * 1.5
    return Expression(curve, max(opening, 0.0), width_scale, max(eye_open, 0.004), brow_raise, brow_inner)


@dataclass(frozen=True)
class Pose:
    """Canonical -> image mapping: rotation (degrees, counter-clockwise), centre (pixels), pixels per unit."""

    angle: float
    centre_x: float
    centre_y: float
    scale: float

    def apply(self, points: np.ndarray) -> np.ndarray:
        theta = math.radians(self.angle)
        cos, sin = math.cos(theta), math.sin(theta)
        rotation = np.array([[cos, sin], [-sin, cos]])  # y points down, so this turns counter-clockwise on screen
        return points @ rotation.T * self.scale + np.array([self.centre_x, self.centre_y])


@dataclass(frozen=True)
class Scene:
    """Everything around the face: background, lighting, sensor noise, blur."""

    background: np.ndarray  # (S, S, 3) uint8
    light_angle: float  # direction the light comes from (radians)
    light_strength: float  # relative brightness change across the image
    brightness: float
    noise_sigma: float  # grey levels
    blur_radius: float  # pixels


def random_pose(rng: np.random.Generator, image_size: int) -> Pose:
    """A still-image pose: the face fills a good part of the frame but is rotated, shifted and rescaled."""
    return Pose(
        angle=float(np.clip(rng.normal(0.0, 8.0), -20, 20)),
        centre_x=image_size * (0.5 + rng.uniform(-0.07, 0.07)),
        centre_y=image_size * (0.5 + rng.uniform(-0.06, 0.06)),
        scale=image_size * BASE_SCALE * rng.uniform(0.82, 1.08),
    )


def random_background(rng: np.random.Generator, image_size: int) -> np.ndarray:
    """A gradient between two colours plus a few soft blobs and bars (offices, walls, windows).

    Drawn at 1/4 size and upsampled bilinearly: the out-of-focus look at a fraction of a blur's cost.
    """
    size = max(8, image_size // 4)
    first, second = rng.uniform(10, 245, 3), rng.uniform(10, 245, 3)
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    t = np.clip(0.5 + (xs - 0.5) * math.cos(angle) + (ys - 0.5) * math.sin(angle), 0, 1)[..., None]
    image = Image.fromarray((first * (1 - t) + second * t).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 7))):
        x0, y0 = rng.uniform(-0.2, 1.0, 2) * size
        w, h = rng.uniform(0.1, 0.6, 2) * size
        fill = _colour(rng.uniform(0, 255, 3))
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=fill)
        else:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=fill)
    image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def random_scene(rng: np.random.Generator, image_size: int) -> Scene:
    return Scene(
        background=random_background(rng, image_size),
        light_angle=float(rng.uniform(0, 2 * math.pi)),
        light_strength=float(rng.uniform(0.0, 0.45)),
        brightness=float(rng.uniform(0.75, 1.15)),
        noise_sigma=float(rng.uniform(0.0, 9.0)),
        blur_radius=float(rng.choice([0.0, 0.0, rng.uniform(0.3, 1.2)])),
    )


# ----------------------------------------------------------------------------------------------- geometry


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 28) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _jaw(identity: Identity, n: int) -> np.ndarray:
    """Lower face contour from the left ear level, round the chin, to the right (x increasing)."""
    phi = np.linspace(0, math.pi, n)
    x = -identity.face_width * np.cos(phi)
    y = EYE_Y + (identity.chin - EYE_Y) * np.sin(phi) ** identity.jaw_power
    return np.stack([x, y], axis=1)


def _skull(identity: Identity, n: int = 24, grow: float = 0.0) -> np.ndarray:
    """Upper head contour from the right side over the crown to the left side."""
    t = np.linspace(0, math.pi, n)
    x = (identity.face_width + grow) * np.cos(t)
    y = EYE_Y + (identity.crown - grow - EYE_Y) * np.sin(t)
    return np.stack([x, y], axis=1)


def _eye(cx: float, width: float, opening: float, n: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid curves of one eye, both sampled left to right."""
    u = np.linspace(-1, 1, n)
    x = cx + width * u
    upper = np.stack([x, EYE_Y - opening * (1 - u**2) ** 0.8], axis=1)
    lower = np.stack([x, EYE_Y + 0.55 * opening * (1 - u**2) ** 0.8], axis=1)
    return upper, lower


def _eye_landmarks(cx: float, width: float, opening: float) -> np.ndarray:
    """Six iBUG eye points: left corner, two upper lid, right corner, two lower lid (right to left)."""
    upper, lower = _eye(cx, width, opening, n=7)
    return np.array([upper[0], upper[2], upper[4], upper[6], lower[4], lower[2]])


def _brow(identity: Identity, expression: Expression, cx: float, inner_on_right: bool, n: int = 5) -> np.ndarray:
    """Brow top line sampled left to right; the inner end is the one nearer the nose."""
    width = identity.eye_width * 1.35
    u = np.linspace(-1, 1, n)
    x = cx + width * u
    inner_weight = (u + 1) / 2 if inner_on_right else (1 - u) / 2
    y = EYE_Y - identity.brow_gap - expression.brow_raise - identity.brow_arch * (1 - u**2)
    y = y - expression.brow_inner * inner_weight
    return np.stack([x, y], axis=1)


def _mouth_curves(identity: Identity, expression: Expression, n: int) -> dict[str, np.ndarray]:
    """Outer/inner lip lines sampled at n points left to right, and the sample positions u in [-1, 1]."""
    u = np.linspace(-1, 1, n)
    half_width = identity.mouth_width * expression.mouth_width_scale
    x = half_width * u
    centre = identity.mouth_y - expression.mouth_curve * u**2
    bulge = np.clip(1 - u**2, 0, None)
    inner_upper = centre - 0.45 * expression.mouth_open * bulge**0.7
    inner_lower = centre + 0.55 * expression.mouth_open * bulge**0.7
    cupid = 0.35 * identity.lip_upper * np.exp(-((u / 0.18) ** 2))
    outer_upper = inner_upper - identity.lip_upper * bulge**0.5 + cupid
    outer_lower = inner_lower + identity.lip_lower * bulge**0.5
    return {
        "u": u,
        "outer_upper": np.stack([x, outer_upper], axis=1),
        "outer_lower": np.stack([x, outer_lower], axis=1),
        "inner_upper": np.stack([x, inner_upper], axis=1),
        "inner_lower": np.stack([x, inner_lower], axis=1),
    }


def _nose(identity: Identity) -> tuple[np.ndarray, np.ndarray]:
    """Bridge (4 points, top to tip) and base (5 points, left to right)."""
    tip = EYE_Y + identity.nose_length
    bridge = np.stack([np.zeros(4), np.linspace(EYE_Y + 0.02, tip, 4)], axis=1)
    u = np.linspace(-1, 1, 5)
    base = np.stack([identity.nose_width * u, tip + 0.07 - 0.04 * u**2], axis=1)
    return bridge, base


def canonical_landmarks(identity: Identity, expression: Expression) -> np.ndarray:
    """The 68 iBUG landmarks in canonical units (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67)."""
    left_x, right_x = -identity.eye_spacing, identity.eye_spacing
    bridge, base = _nose(identity)
    mouth = _mouth_curves(identity, expression, n=13)  # u step 1/6: indices 0, 2, 4, 6, 8, 10, 12 = sixths
    ou, ol, iu, il = mouth["outer_upper"], mouth["outer_lower"], mouth["inner_upper"], mouth["inner_lower"]
    outer = [ou[0], ou[2], ou[4], ou[6], ou[8], ou[10], ou[12], ol[10], ol[8], ol[6], ol[4], ol[2]]
    inner = [iu[1], iu[4], iu[6], iu[8], iu[11], il[8], il[6], il[4]]
    points = np.concatenate(
        [
            _jaw(identity, 17),
            _brow(identity, expression, left_x, inner_on_right=True),
            _brow(identity, expression, right_x, inner_on_right=False),
            bridge,
            base,
            _eye_landmarks(left_x, identity.eye_width, expression.eye_open),
            _eye_landmarks(right_x, identity.eye_width, expression.eye_open),
            np.array(outer),
            np.array(inner),
        ]
    )
    assert points.shape == (NUM_LANDMARKS, 2)
    return points


def head_box(identity: Identity, pose: Pose) -> tuple[float, float, float, float]:
    """Axis-aligned (x, y, w, h) box around the head outline (forehead to chin) in image pixels."""
    outline = pose.apply(np.concatenate([_jaw(identity, 17), _skull(identity)]))
    low, high = outline.min(axis=0), outline.max(axis=0)
    return float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])


# ------------------------------------------------------------------------------------------------ drawing


class _Canvas:
    """Draws canonical-unit polygons on a supersampled image through a pose."""

    def __init__(self, background: np.ndarray, pose: Pose):
        size = background.shape[0] * SUPERSAMPLE
        self.image = Image.fromarray(background).resize((size, size), Image.Resampling.NEAREST)
        self.draw = ImageDraw.Draw(self.image)
        self.pose = pose

    def _xy(self, points: np.ndarray) -> list[float]:
        # Output pixel k (centre at integer k) covers supersampled pixels 2k and 2k+1, centred at 2k + 0.5.
        pixels = self.pose.apply(np.asarray(points, dtype=np.float64)) * SUPERSAMPLE + (SUPERSAMPLE - 1) / 2
        return pixels.ravel().tolist()

    def polygon(self, points: np.ndarray, fill) -> None:
        self.draw.polygon(self._xy(points), fill=fill)

    def line(self, points: np.ndarray, fill, width_units: float) -> None:
        width = max(1, int(round(width_units * self.pose.scale * SUPERSAMPLE)))
        self.draw.line(self._xy(points), fill=fill, width=width, joint="curve")

    def result(self) -> Image.Image:
        return self.image.reduce(SUPERSAMPLE)


def _shade(colour, factor: float, add=(0, 0, 0)) -> tuple[int, int, int]:
    return _colour(np.asarray(colour, dtype=np.float64) * factor + np.asarray(add))


def _draw_body_and_back_hair(canvas: _Canvas, identity: Identity) -> None:
    w = identity.face_width
    neck = np.array([[-0.38, 0.5], [0.38, 0.5], [0.45, 1.9], [-0.45, 1.9]])
    shirt = np.array([[-0.45, 1.7], [0.45, 1.7], [1.9, 2.1], [2.2, 4.0], [-2.2, 4.0], [-1.9, 2.1]])
    if identity.hair_style == 2:  # long hair falls behind the face and onto the shoulders
        back = np.concatenate(
            [_skull(identity, grow=0.14), [[-w - 0.2, identity.chin + 0.45], [w + 0.2, identity.chin + 0.45]]]
        )
        canvas.polygon(back, _shade(identity.hair, 0.9))
    canvas.polygon(neck, _shade(identity.skin, 0.88))
    canvas.polygon(shirt, identity.shirt)
    for side in (-1, 1):
        canvas.polygon(_ellipse(side * w, 0.02, 0.13, 0.22), _shade(identity.skin, 0.93))
        if identity.earrings:
            canvas.polygon(_ellipse(side * w, 0.27, 0.035, 0.035), (235, 200, 60))


def _draw_head_and_hair(canvas: _Canvas, identity: Identity) -> None:
    canvas.polygon(np.concatenate([_jaw(identity, 33), _skull(identity)]), identity.skin)
    if identity.hair_style == 0:  # shaved: a faint shadow cap
        cap = np.concatenate([_skull(identity, grow=0.02), _hairline(identity, identity.hair_line - 0.08)])
        canvas.polygon(cap, _colour(np.asarray(identity.skin) * 0.75 + np.asarray(identity.hair) * 0.25))
        return
    cap = np.concatenate([_skull(identity, grow=0.1), _hairline(identity, identity.hair_line)])
    canvas.polygon(cap, identity.hair)
    if identity.hair_style == 3:  # fringe over the forehead
        w = identity.face_width
        fringe = [
            [w * 0.9, identity.hair_line],
            [0.1, identity.hair_line + 0.22],
            [-w * 0.95, identity.hair_line + 0.1],
            [-w, identity.hair_line - 0.2],
        ]
        canvas.polygon(np.array(fringe), identity.hair)


def _hairline(identity: Identity, height: float) -> np.ndarray:
    """Lower edge of the hair, left temple to right temple (closes the skull curve), dipping at the sides."""
    w = identity.face_width
    x = np.linspace(-w - 0.1, w + 0.1, 15)
    y = height + 0.35 * (np.abs(x) / (w + 0.1)) ** 4
    return np.stack([x, y], axis=1)


def _draw_beard(canvas: _Canvas, identity: Identity, expression: Expression) -> None:
    jaw = _jaw(identity, 33)[6:27]
    top = identity.mouth_y + identity.lip_lower + 0.55 * expression.mouth_open + 0.06
    below_mouth = np.array([[jaw[-1][0], top - 0.1], [0.0, top], [jaw[0][0], top - 0.1]])
    canvas.polygon(np.concatenate([jaw, below_mouth]), _shade(identity.hair, 0.95))


def _draw_brows(canvas: _Canvas, identity: Identity, expression: Expression) -> None:
    for cx, inner_on_right in ((-identity.eye_spacing, True), (identity.eye_spacing, False)):
        top = _brow(identity, expression, cx, inner_on_right, n=11)
        taper = np.linspace(0.55, 1.0, 11) if inner_on_right else np.linspace(1.0, 0.55, 11)
        bottom = top + np.stack([np.zeros(11), identity.brow_thickness * taper], axis=1)
        canvas.polygon(np.concatenate([top, bottom[::-1]]), _shade(identity.hair, 0.8))


def _draw_eyes(canvas: _Canvas, identity: Identity, expression: Expression) -> None:
    width, opening = identity.eye_width, expression.eye_open
    for cx in (-identity.eye_spacing, identity.eye_spacing):
        upper, lower = _eye(cx, width, opening, n=21)
        canvas.polygon(np.concatenate([upper, lower[::-1]]), (244, 242, 236))
        for radius, colour in ((0.062, identity.iris), (0.028, (12, 10, 10))):
            circle = _ellipse(cx, EYE_Y - 0.1 * opening, radius, radius, n=24)
            u = np.clip((circle[:, 0] - cx) / width, -1, 1)
            top = EYE_Y - opening * (1 - u**2) ** 0.8
            bottom = EYE_Y + 0.55 * opening * (1 - u**2) ** 0.8
            circle[:, 1] = np.clip(circle[:, 1], top, bottom)  # the lids cover the iris
            canvas.polygon(circle, colour)
        canvas.line(upper, (25, 18, 16), 0.022)
        canvas.line(lower, _shade(identity.skin, 0.7), 0.01)


def _draw_nose(canvas: _Canvas, identity: Identity) -> None:
    bridge, base = _nose(identity)
    side = np.array([[0.05, bridge[0][1] + 0.06], [identity.nose_width * 0.55, bridge[-1][1]], base[3]])
    canvas.line(side, _shade(identity.skin, 0.78), 0.018)
    canvas.line(base[1:4], _shade(identity.skin, 0.72), 0.02)
    for x in (-0.5 * identity.nose_width, 0.5 * identity.nose_width):
        canvas.polygon(_ellipse(x, base[2][1] - 0.035, 0.03, 0.016, n=12), _shade(identity.skin, 0.45))


def _draw_mouth(canvas: _Canvas, identity: Identity, expression: Expression) -> None:
    curves = _mouth_curves(identity, expression, n=31)
    if expression.mouth_curve > 0.05:  # smile lines from the nose wings to the mouth corners
        corner = curves["outer_upper"][0]
        for sign in (-1, 1):
            fold = np.array(
                [
                    [sign * identity.nose_width * 1.2, EYE_Y + identity.nose_length],
                    [sign * (abs(corner[0]) + 0.08), (EYE_Y + identity.nose_length + corner[1]) / 2 + 0.02],
                    [sign * (abs(corner[0]) + 0.07), corner[1] + 0.06],
                ]
            )
            canvas.line(fold, _shade(identity.skin, 0.8), 0.014 + 0.1 * (expression.mouth_curve - 0.05))
    canvas.polygon(np.concatenate([curves["outer_upper"], curves["outer_lower"][::-1]]), identity.lip)
    if expression.mouth_open > 0.008:
        cavity = np.concatenate([curves["inner_upper"], curves["inner_lower"][::-1]])
        canvas.polygon(cavity, (70, 22, 28))
        teeth_depth = np.minimum(curves["inner_lower"][:, 1] - curves["inner_upper"][:, 1], 0.045) * 0.8
        teeth_bottom = curves["inner_upper"] + np.stack([np.zeros_like(teeth_depth), teeth_depth], axis=1)
        canvas.polygon(np.concatenate([curves["inner_upper"][4:-4], teeth_bottom[4:-4][::-1]]), (236, 232, 220))
    canvas.line(
        np.concatenate([curves["inner_upper"], curves["inner_lower"][::-1][1:]])[:31], _shade(identity.lip, 0.6), 0.01
    )


def _draw_glasses(canvas: _Canvas, identity: Identity) -> None:
    radius = identity.eye_width * 1.45
    frame = (30, 30, 34)
    for cx in (-identity.eye_spacing, identity.eye_spacing):
        ring = _ellipse(cx, EYE_Y, radius, radius * 0.78, n=28)
        canvas.line(np.concatenate([ring, ring[:1]]), frame, 0.022)
    inner = identity.eye_spacing - radius
    canvas.line(np.array([[-inner, EYE_Y - 0.02], [inner, EYE_Y - 0.02]]), frame, 0.022)


def _apply_scene(image: Image.Image, scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """Directional light, global brightness, Gaussian sensor noise and optional blur."""
    size = image.size[0]
    if scene.blur_radius > 0:
        image = image.filter(ImageFilter.GaussianBlur(radius=scene.blur_radius))
    pixels = np.asarray(image, dtype=np.float32)
    ramp = (np.arange(size, dtype=np.float32) / max(size - 1, 1)) - 0.5
    light = np.float32(scene.brightness) * (
        1.0
        + np.float32(scene.light_strength)
        * (
            ramp[None, :] * np.float32(math.cos(scene.light_angle))
            + ramp[:, None] * np.float32(math.sin(scene.light_angle))
        )
    )
    pixels = pixels * light[..., None]
    if scene.noise_sigma > 0:
        pixels = pixels + rng.standard_normal(pixels.shape, dtype=np.float32) * np.float32(scene.noise_sigma)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def render_face(
    identity: Identity, valence: float, arousal: float, pose: Pose, scene: Scene, noise_rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Render one face; returns (image (S, S, 3) uint8, landmarks (68, 2) float in image pixels)."""
    expression = expression_for(identity, valence, arousal)
    canvas = _Canvas(scene.background, pose)
    _draw_body_and_back_hair(canvas, identity)
    _draw_head_and_hair(canvas, identity)
    if identity.beard:
        _draw_beard(canvas, identity, expression)
    _draw_brows(canvas, identity, expression)
    _draw_eyes(canvas, identity, expression)
    _draw_nose(canvas, identity)
    _draw_mouth(canvas, identity, expression)
    if identity.glasses:
        _draw_glasses(canvas, identity)
    image = _apply_scene(canvas.result(), scene, noise_rng)
    landmarks = pose.apply(canonical_landmarks(identity, expression))
    return image, landmarks.astype(np.float32)
