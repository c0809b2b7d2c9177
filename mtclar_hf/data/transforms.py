"""Training-time augmentation (the reference recipe) and the evaluation transform it mirrors.

Reference (the authors' code): resize to 288 -> RandomAffine(degrees=20,
translate=0.2, scale=0.8-1.2, shear=0.1) -> horizontal flip p=0.5 -> random crop 256. Evaluation is
resize 288 -> centre crop 256, which is what :class:`mtclar_hf.MTCLARImageProcessor` does; `EvalTransform`
calls the processor so there is a single eval path.

Both paths first crop the face with the processor's own code (the face box grown by ``face_margin`` on
each side and made square, zeros outside the image), so training and evaluation see faces framed the
same way. The augmentation itself is one OpenCV warp seeded by a `numpy.random.Generator` passed in, so
an augmented pair is reproducible from (seed, epoch, index).

``shear=0.1`` follows torchvision's meaning (the reference used torchvision): degrees of x-shear, i.e.
almost none. A horizontal flip does not change valence or arousal, so labels are never touched.
"""

from __future__ import annotations

import math

import numpy as np

from ..configuration_mtclar import IMAGE_SIZE, RESIZE_SIZE
from ..image_processing_mtclar import MTCLARImageProcessor

DEFAULT_FACE_MARGIN = 0.25


class TrainAugment:
    """The reference training augmentation on one face image; returns float32 (3, crop, crop) in [0, 1].

    face crop (the processor's geometry) -> resize ``resize_size`` -> random affine (rotation ±``degrees``, translation up to
    ``translate`` x size, scale in ``scale``, x-shear ±``shear`` degrees, about the centre, zero fill) ->
    horizontal flip with probability ``flip_p`` -> random ``crop_size`` crop. The affine, flip and crop are
    composed into a single warp so the image is interpolated once after the resize.
    """

    def __init__(
        self,
        resize_size: int = RESIZE_SIZE,
        crop_size: int = IMAGE_SIZE,
        face_margin: float = DEFAULT_FACE_MARGIN,
        degrees: float = 20.0,
        translate: float = 0.2,
        scale: tuple[float, float] = (0.8, 1.2),
        shear: float = 0.1,
        flip_p: float = 0.5,
    ):
        if crop_size > resize_size:
            raise ValueError(f"crop_size ({crop_size}) must not exceed resize_size ({resize_size})")
        self.resize_size = resize_size
        self.crop_size = crop_size
        self.face_margin = face_margin
        self.degrees = degrees
        self.translate = translate
        self.scale = scale
        self.shear = shear
        self.flip_p = flip_p
        # The processor with crop == resize returns the whole resized face: the shared first step.
        self.face_processor = MTCLARImageProcessor(
            resize_size=resize_size, crop_size=resize_size, face_margin=face_margin
        )

    def __repr__(self) -> str:
        return (
            f"TrainAugment(resize_size={self.resize_size}, crop_size={self.crop_size}, face_margin={self.face_margin}, "
            f"degrees={self.degrees}, translate={self.translate}, scale={self.scale}, shear={self.shear}, flip_p={self.flip_p})"
        )

    def sample_matrix(self, rng: np.random.Generator) -> np.ndarray:
        """The 2x3 matrix from the resized face (resize_size²) to the output crop (crop_size²)."""
        size = self.resize_size
        centre = (size - 1) / 2.0
        angle = math.radians(rng.uniform(-self.degrees, self.degrees))
        scale = rng.uniform(*self.scale)
        shear = math.radians(rng.uniform(-self.shear, self.shear))
        max_shift = self.translate * size
        shift_x, shift_y = rng.uniform(-max_shift, max_shift, size=2)
        flip = rng.random() < self.flip_p
        offset_x, offset_y = rng.integers(0, size - self.crop_size + 1, size=2)

        cos, sin = math.cos(angle), math.sin(angle)
        # Rotation * x-shear * scale, as torchvision's RandomAffine composes them.
        linear = scale * np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, math.tan(shear)], [0.0, 1.0]])
        affine = np.eye(3)
        affine[:2, :2] = linear
        affine[:2, 2] = np.array([centre, centre]) + np.array([shift_x, shift_y]) - linear @ np.array([centre, centre])
        flip_matrix = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) if flip else np.eye(3)
        crop_matrix = np.array([[1.0, 0.0, -float(offset_x)], [0.0, 1.0, -float(offset_y)], [0.0, 0.0, 1.0]])
        return (crop_matrix @ flip_matrix @ affine)[:2]

    def resized_face(self, image, face_box=None) -> np.ndarray:
        """The face crop resized to resize_size x resize_size: float32 HWC in [0, 1] (no randomness)."""
        box = None if face_box is None else [float(value) for value in face_box]
        pixels = self.face_processor([image], face_boxes=[box], return_tensors=None)["pixel_values"][0]
        return np.ascontiguousarray(np.asarray(pixels, dtype=np.float32).transpose(1, 2, 0))

    def __call__(self, image, face_box=None, rng: np.random.Generator | None = None) -> np.ndarray:
        import cv2

        rng = rng if rng is not None else np.random.default_rng()
        face = self.resized_face(image, face_box)
        out = cv2.warpAffine(
            face,
            self.sample_matrix(rng),
            (self.crop_size, self.crop_size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        return np.clip(out.transpose(2, 0, 1), 0.0, 1.0).astype(np.float32, order="C")


class BoxJitter:
    """Moves and scales each face box at random before `transform` crops it.

    Landmarks predicted on a user's video frame a face a few percent differently from annotated ones (box IoU
    about 0.86 on SynthAffect, docs/FACES.md); a model that saw such framings in training tolerates them.
    The centre moves by up to ``jitter`` x the box size on each axis and the size changes by up to ``jitter``.
    """

    def __init__(self, transform, jitter: float):
        self.transform = transform
        self.jitter = jitter

    def __repr__(self) -> str:
        return f"BoxJitter({self.transform!r}, jitter={self.jitter})"

    def __call__(self, image, face_box=None, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = rng if rng is not None else np.random.default_rng()
        if face_box is None:
            return self.transform(image, None, rng)
        x, y, w, h = (float(value) for value in face_box)
        shift_x, shift_y, grow = rng.uniform(-self.jitter, self.jitter, size=3)
        centre_x, centre_y = x + w / 2 + shift_x * max(w, h), y + h / 2 + shift_y * max(w, h)
        w, h = w * (1 + grow), h * (1 + grow)
        return self.transform(image, (centre_x - w / 2, centre_y - h / 2, w, h), rng)


class EvalTransform:
    """The eval path for one image: the MT-CLAR image processor (face crop -> resize -> centre crop)."""

    def __init__(self, processor=None, resize_size: int = RESIZE_SIZE, crop_size: int = IMAGE_SIZE):
        if processor is None:
            processor = MTCLARImageProcessor(resize_size=resize_size, crop_size=crop_size)
        self.processor = processor

    def __repr__(self) -> str:
        return f"EvalTransform({type(self.processor).__name__})"

    def __call__(self, image, face_box=None, rng: np.random.Generator | None = None) -> np.ndarray:
        box = None if face_box is None else [float(value) for value in face_box]
        pixel_values = self.processor([image], face_boxes=[box], return_tensors="np")["pixel_values"]
        return np.asarray(pixel_values[0], dtype=np.float32)


def as_image_transform(transform):
    """Accept a TrainAugment/EvalTransform, an image processor, or a callable (image, face_box, rng)."""
    if transform is None:
        return EvalTransform()
    if hasattr(transform, "preprocess") and not isinstance(transform, TrainAugment | EvalTransform):
        return EvalTransform(processor=transform)
    return transform


__all__ = [
    "BoxJitter",
    "EvalTransform",
    "TrainAugment",
    "as_image_transform",
]
