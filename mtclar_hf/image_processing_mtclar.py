"""Image processor for MT-CLAR: face crop -> resize -> centre crop, identical numbers on every input type.

transformers 5 image processors come with two backends (Pillow on numpy, torchvision on tensors) that give
slightly different numbers. MT-CLAR embeddings are compared across frames, videos and machines, so this
processor does its own pixel maths with numpy only: one resampling kernel, whatever the input type and
whether or not torchvision is installed. It derives from `BaseImageProcessor` (not from a backend) for
`save_pretrained` / `from_pretrained` / `AutoImageProcessor`, and overrides `preprocess` entirely so nothing
dispatches to a backend.

The eval transform is the reference one (MT-CLAR authors: resize 288 -> centre crop 256, RGB in [0, 1], no
mean/std). With a face box, the square region around the enlarged box is cut out first (zeros outside the
image).

The face crop is part of the model: one convention, `LANDMARK_BOX`, is produced by every path of the
project (prepared datasets, frame folders, raw video): the tight box of the 68 iBUG landmarks, made square
and grown by `face_margin` on each side. Other boxes (a detector's, AffectNet's `face_*` columns) only
seed a landmark predictor. `face_box_source` records which boxes the model was trained on, so labelling
can warn when it crops differently. Crop, padding, resize and centre crop are folded into one separable resampling per axis, computed
straight from the source pixels: no padded copy is made, and only the output pixels that survive the centre
crop are computed. Resampling is Pillow's antialiased bilinear filter (what torchvision's `Resize` applies to
PIL images), so downscaling large faces does not alias.

It is copied next to saved models for `trust_remote_code`, so it imports only transformers, numpy, PIL, torch and,
relatively, the configuration module (which holds the input size). Being one remote-code file is also why it
is longer than most modules: the resampling maths cannot move into a package module.
"""

import math
import numbers
import os
from typing import Any, TypedDict

import numpy as np
from PIL import Image
from transformers.image_processing_base import BatchFeature
from transformers.image_processing_utils import BaseImageProcessor

from .configuration_mtclar import IMAGE_SIZE, RESIZE_SIZE

BILINEAR = 2  # PIL.Image.Resampling.BILINEAR; the only filter implemented here
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
# Float inputs a hair outside [0, 1] (rounding after arithmetic) are clipped; anything further is a mistake,
# typically a 0..255 image stored as float, which would otherwise be fed in silently at 255 times the scale.
FLOAT_RANGE_TOLERANCE = 1e-3
PIL_MODES_AS_ARRAY = ("RGB", "L", "I;16", "I;16L", "I;16B", "I;16N", "I", "F")
NUM_LANDMARK_POINTS = 68
LANDMARK_BOX = "landmarks68"  # boxes around the 68 iBUG landmarks: the crop every path of the project makes
UNKNOWN_BOX_SOURCE = "unknown"  # folders saved before the source was recorded


class MTCLARImageProcessorKwargs(TypedDict, total=False):
    """Parameters that `from_pretrained(..., **kwargs)` and `preprocess(..., **kwargs)` may override."""

    resize_size: int
    crop_size: int
    face_margin: float
    do_normalize: bool
    image_mean: list[float]
    image_std: list[float]
    resample: int
    face_box_source: str


# ----------------------------------------------------------------------------------------------------------
# Input conversion: any supported image -> HWC array, uint8 or float32 in [0, 1], with 1 or 3 channels.
# uint8 stays uint8 until the crop region is cut, so a uint8 frame, the same frame as a PIL image and the
# same frame as float32 (u8 / 255) all reach the kernel as the same float32 numbers.
# ----------------------------------------------------------------------------------------------------------


def _is_torch_tensor(obj) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "detach")


def _pil_to_array(image: Image.Image) -> np.ndarray:
    """PIL image of any mode -> array; alpha and transparency are dropped, not composited onto a colour."""
    if image.mode not in PIL_MODES_AS_ARRAY:
        # RGBA/LA/PA/P/CMYK/YCbCr/HSV/1: Pillow's RGB conversion. For alpha modes it keeps the colour
        # channels as they are (the same as dropping the 4th channel of an RGBA array).
        image = image.convert("RGB")
    array = np.asarray(image)
    if image.mode.startswith("I;16"):
        array = array.astype(np.uint16, copy=False)  # I;16B arrives big-endian
    elif image.mode == "I":
        # Pillow stores 16-bit PNG/TIFF greyscale as 32-bit "I"; we read it as 16-bit.
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise ValueError(
                f"PIL image of mode 'I' has values outside 0..65535 (min {array.min()}, max {array.max()})"
            )
        array = array.astype(np.uint16)
    return array


def _channels_last(array: np.ndarray, prefer_channels_first: bool) -> np.ndarray:
    """Return an HWC view of a 3-D image; CHW is recognised by a leading 1/3/4 and a trailing dim that isn't."""
    leading, trailing = array.shape[0] in (1, 3, 4), array.shape[-1] in (1, 3, 4)
    if leading and (not trailing or prefer_channels_first):
        return array.transpose(1, 2, 0)
    if trailing:
        return array
    raise ValueError(f"cannot find the channel axis of an image of shape {tuple(array.shape)}: need 1, 3 or 4 channels")


def _scale_to_unit(array: np.ndarray) -> np.ndarray:
    """Map the pixel dtype onto [0, 1]: uint8 kept (scaled later), uint16 / 65535, floats checked."""
    if array.dtype.byteorder == ">":  # e.g. big-endian 16-bit data read from a file
        array = array.astype(array.dtype.newbyteorder("="))
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return array.astype(np.float32) / np.float32(65535)
    if array.dtype.kind != "f":
        raise TypeError(f"unsupported image dtype {array.dtype}: use uint8, uint16 or float in [0, 1]")
    array = array.astype(np.float32, copy=False)
    low, high = float(array.min()), float(array.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("image contains NaN or infinite values")
    if low < -FLOAT_RANGE_TOLERANCE or high > 1 + FLOAT_RANGE_TOLERANCE:
        raise ValueError(
            f"float image values must lie in [0, 1], got [{low:g}, {high:g}] (divide 0..255 images by 255)"
        )
    if low < 0 or high > 1:
        array = np.clip(array, 0.0, 1.0)
    return array


def to_unit_rgb_array(image, prefer_channels_first: bool = False) -> np.ndarray:
    """Convert one image to an HWC array with 1 or 3 channels, dtype uint8 (0..255) or float32 (0..1).

    Accepts PIL images (any mode), numpy arrays HW / HWC (CHW recognised when unambiguous) and torch
    tensors CHW / HWC. A 4th channel is treated as alpha and dropped.
    """
    if isinstance(image, Image.Image):
        array = _pil_to_array(image)
    elif _is_torch_tensor(image):
        tensor = image.detach().cpu()
        if tensor.is_floating_point() and tensor.dtype.itemsize < 4:
            tensor = tensor.float()  # bfloat16 has no numpy dtype
        array = tensor.numpy()
        prefer_channels_first = True  # torch convention
    elif isinstance(image, np.ndarray):
        array = image
    else:
        raise TypeError(f"unsupported image type {type(image).__name__}: pass a PIL image, numpy array or torch tensor")

    if array.ndim == 3:
        array = _channels_last(array, prefer_channels_first)
    elif array.ndim != 2:
        raise ValueError(f"an image must have 2 (HW) or 3 (HWC/CHW) dimensions, got shape {tuple(array.shape)}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"image has zero size: shape {tuple(array.shape)}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] == 4:
        array = array[:, :, :3]
    elif array.shape[2] not in (1, 3):
        raise ValueError(f"an image needs 1, 3 or 4 channels, got {array.shape[2]} (shape {tuple(array.shape)})")
    return _scale_to_unit(array)


# ----------------------------------------------------------------------------------------------------------
# Geometry and resampling
# ----------------------------------------------------------------------------------------------------------


# The square crop may reach past the frame (zero padding), but not absurdly: see `_crop_resize_batch`.
MAX_CROP_TO_IMAGE = 8


def square_crop_region(box, margin: float) -> tuple[int, int, int]:
    """(x, y, w, h) face box -> (left, top, side) of the square crop: box grown by `margin` on each side.

    The side is the longer box side times (1 + 2 * margin), centred on the box centre, rounded to whole
    pixels (a crop of real pixels, like cutting the face out and then resizing it).
    """
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"a face box must be 4 numbers (x, y, w, h), got {box!r}") from None
    if not all(math.isfinite(v) for v in (x, y, w, h)) or w <= 0 or h <= 0:
        raise ValueError(f"a face box must be finite with positive width and height, got {box!r}")
    side = max(w, h) * (1.0 + 2.0 * margin)
    left = math.floor(x + w / 2.0 - side / 2.0 + 0.5)
    top = math.floor(y + h / 2.0 - side / 2.0 + 0.5)
    return left, top, max(1, math.floor(side + 0.5))


def landmark_boxes(landmarks) -> np.ndarray:
    """68-point landmarks -> tight (x, y, w, h) boxes, the boxes of the `LANDMARK_BOX` crop.

    Takes (68, 2), (N, 68, 2) or (N, 136) points; returns (N, 4) float64. Non-finite points are ignored; a
    face with fewer than two finite points, or a box under one pixel wide or tall, gets a NaN row.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    points = points.reshape(1 if points.ndim == 2 and points.shape[-1] == 2 else len(points), NUM_LANDMARK_POINTS, 2)
    finite = np.isfinite(points).all(axis=2, keepdims=True)
    with np.errstate(invalid="ignore"):
        low = np.where(finite, points, np.inf).min(axis=1)
        high = np.where(finite, points, -np.inf).max(axis=1)
    boxes = np.concatenate([low, high - low], axis=1)
    usable = (finite.sum(axis=(1, 2)) >= 2) & (boxes[:, 2] >= 1) & (boxes[:, 3] >= 1)
    boxes[~usable] = np.nan
    return boxes


def bilinear_taps(in_size: int, out_size: int, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's antialiased bilinear filter along one axis, for output pixels first .. first + count - 1.

    Returns (indices, weights), both (count, K): output pixel i = sum_k weights[i, k] * input[indices[i, k]],
    indices in 0 .. in_size - 1. Same support, centring and edge renormalisation as Pillow's resample.
    """
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = filter_scale  # the triangle filter has support 1, widened when downscaling
    centres = (np.arange(first, first + count, dtype=np.float64) + 0.5) * scale
    starts = np.maximum(np.trunc(centres - support + 0.5), 0).astype(np.int64)
    stops = np.minimum(np.trunc(centres + support + 0.5), in_size).astype(np.int64)
    num_taps = max(1, int((stops - starts).max()))  # widest window actually used (2 when upscaling)
    indices = starts[:, None] + np.arange(num_taps)[None, :]
    weights = np.maximum(0.0, 1.0 - np.abs((indices - centres[:, None] + 0.5) / filter_scale))
    weights[indices >= stops[:, None]] = 0.0
    weights /= weights.sum(axis=1, keepdims=True)
    return np.minimum(indices, in_size - 1), weights


def region_taps(start: int, length: int, image_size: int, out_size: int, first: int, count: int):
    """Taps from image pixels for a region [start, start + length) resized to out_size, zeros outside the image.

    Padding pixels get weight 0 (their value is 0); their index is clamped so gathers stay in bounds.
    """
    indices, weights = bilinear_taps(length, out_size, first, count)
    indices = indices + start
    outside = (indices < 0) | (indices >= image_size)
    weights[outside] = 0.0
    return np.clip(indices, 0, image_size - 1), weights.astype(np.float32)


def _gather_weighted(source: np.ndarray, indices: np.ndarray, weights: np.ndarray, axis: int, out=None):
    """sum_k weights[:, k] * take(source, indices[:, k], axis): one separable resampling pass, float32.

    Terms are added in tap order, so the result depends only on the pixel values, never on the input type.
    """
    shape = [1, 1, 1]
    shape[axis] = -1
    for k in range(indices.shape[1]):
        gathered = np.take(source, indices[:, k], axis=axis)
        tap_weights = weights[:, k].reshape(shape)
        if k == 0:
            out = np.multiply(gathered, tap_weights, out=out)
        else:
            out += gathered * tap_weights
    return out


def crop_resize_center(
    image: np.ndarray, region: tuple[int, int, int, int], resize_size: int, crop_size: int, out=None
) -> np.ndarray:
    """HWC image (uint8 or float32 [0,1]) -> (C, crop, crop) float32, written into `out` when given.

    Equivalent to: cut `region` = (left, top, width, height) out of the image (zeros outside it), resize it
    to resize_size x resize_size, take the centre crop_size x crop_size.
    """
    height, width = image.shape[:2]
    left, top, region_w, region_h = region
    offset = int(round((resize_size - crop_size) / 2.0))  # torchvision CenterCrop's rounding
    rows, row_w = region_taps(top, region_h, height, resize_size, offset, crop_size)
    cols, col_w = region_taps(left, region_w, width, resize_size, offset, crop_size)
    # Work only on the pixels the taps touch: a view, then one small channels-first float copy of it
    # (channels-first keeps both gathers on contiguous memory and the result in the model's layout).
    row_lo, row_hi = int(rows.min()), int(rows.max()) + 1
    col_lo, col_hi = int(cols.min()), int(cols.max()) + 1
    patch = image[row_lo:row_hi, col_lo:col_hi].transpose(2, 0, 1).astype(np.float32, order="C")
    if image.dtype == np.uint8:
        patch /= np.float32(255)
    resized_rows = _gather_weighted(patch, rows - row_lo, row_w, axis=1)
    return _gather_weighted(resized_rows, cols - col_lo, col_w, axis=2, out=out)


def _as_list(images) -> list:
    """A single image, a list/tuple of images, or a 4-D batch (numpy BHWC / torch BCHW) -> list of images."""
    if isinstance(images, list | tuple):
        if len(images) == 0:
            raise ValueError("no images given: the image list is empty")
        return list(images)
    if (isinstance(images, np.ndarray) or _is_torch_tensor(images)) and images.ndim == 4:
        if images.shape[0] == 0:
            raise ValueError("no images given: the batch dimension is 0")
        return list(images)
    return [images]


def _as_box_list(face_boxes, num_images: int) -> list:
    """None, one box (single image), or one box-or-None per image -> list of length num_images."""
    if face_boxes is None:
        return [None] * num_images
    if _is_torch_tensor(face_boxes) or isinstance(face_boxes, np.ndarray):
        face_boxes = face_boxes.tolist()
    if num_images == 1 and len(face_boxes) == 4 and all(isinstance(v, numbers.Real) for v in face_boxes):
        face_boxes = [face_boxes]
    if len(face_boxes) != num_images:
        raise ValueError(f"got {len(face_boxes)} face boxes for {num_images} images: give one box or None per image")
    return list(face_boxes)


def _load_image_path(path) -> Image.Image:
    """Open a local image file; URLs are refused (everything here works offline)."""
    path = os.fspath(path)
    if "://" in path:
        raise ValueError(f"{path}: URLs are not fetched; download the image and pass the file or a PIL image")
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read image ({err})") from None


class MTCLARImageProcessor(BaseImageProcessor):
    r"""
    Prepares face images for MT-CLAR: optional square face crop, resize, centre crop, RGB float in [0, 1].

    Args:
        resize_size (`int`, *optional*, defaults to 288):
            Side of the square the (face) image is resized to, without keeping the aspect ratio (as EmoNet's
            `cv2.resize`); face crops are square anyway.
        crop_size (`int`, *optional*, defaults to 256):
            Side of the centre crop taken from the resized image; the model's input size.
        face_margin (`float`, *optional*, defaults to 0.25):
            Fraction of the longer box side added on each side of a face box before cropping.
        do_normalize (`bool`, *optional*, defaults to `False`):
            Subtract `image_mean` and divide by `image_std`. MT-CLAR/EmoFAN use plain [0, 1] input.
        image_mean (`list[float]`, *optional*, defaults to ImageNet's mean):
        image_std (`list[float]`, *optional*, defaults to ImageNet's std):
            Used only when `do_normalize` is set (for encoders pretrained with ImageNet normalisation).
        resample (`int`, *optional*, defaults to 2 = `PIL.Image.Resampling.BILINEAR`):
            Resampling filter; only antialiased bilinear is implemented.
        face_box_source (`str`, *optional*, defaults to `"unknown"`):
            Where the face boxes of the model's training images came from: `"landmarks68"` (the project's
            convention), another source name (e.g. `"affectnet_face_box"`), or `"unknown"`. Training sets it
            from the prepared dataset; the labeller warns when it differs from the boxes it crops with.

    Alpha channels (RGBA, LA, PA, 4-channel arrays) are dropped, never composited: a transparent pixel keeps
    whatever colour it stores. 16-bit images (uint16, PIL "I;16"/"I") are divided by 65535; CMYK, palette and
    other PIL modes go through Pillow's RGB conversion; greyscale is repeated to three channels.
    """

    model_input_names = ["pixel_values"]
    valid_kwargs = MTCLARImageProcessorKwargs

    resize_size = RESIZE_SIZE
    crop_size = IMAGE_SIZE
    face_margin = 0.25
    do_normalize = False
    image_mean = IMAGENET_MEAN
    image_std = IMAGENET_STD
    resample = BILINEAR
    face_box_source = UNKNOWN_BOX_SOURCE

    def __init__(
        self,
        resize_size: int = RESIZE_SIZE,
        crop_size: int = IMAGE_SIZE,
        face_margin: float = 0.25,
        do_normalize: bool = False,
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
        resample: int = BILINEAR,
        face_box_source: str = UNKNOWN_BOX_SOURCE,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.resize_size = int(resize_size)
        self.crop_size = int(crop_size)
        self.face_margin = float(face_margin)
        self.do_normalize = bool(do_normalize)
        self.image_mean = [float(v) for v in (IMAGENET_MEAN if image_mean is None else image_mean)]
        self.image_std = [float(v) for v in (IMAGENET_STD if image_std is None else image_std)]
        self.resample = int(resample)
        self.face_box_source = str(face_box_source)
        self._check_settings(self.__dict__)

    @staticmethod
    def _check_settings(settings: dict[str, Any]) -> None:
        resize_size, crop_size = settings["resize_size"], settings["crop_size"]
        if not 0 < crop_size <= resize_size:
            raise ValueError(f"need 0 < crop_size <= resize_size, got crop_size={crop_size}, resize_size={resize_size}")
        if not 0 <= settings["face_margin"] < 10:
            raise ValueError(f"face_margin must be a fraction in [0, 10), got {settings['face_margin']}")
        if settings["resample"] != BILINEAR:
            raise ValueError(f"resample={settings['resample']} is not supported: only bilinear (2) is implemented")
        for name in ("image_mean", "image_std"):
            if len(settings[name]) != 3:
                raise ValueError(f"{name} needs 3 values (R, G, B), got {settings[name]}")
        if any(v <= 0 for v in settings["image_std"]):
            raise ValueError(f"image_std values must be positive, got {settings['image_std']}")

    def _settings(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """This processor's parameters with per-call overrides applied and checked."""
        unknown = set(overrides) - set(MTCLARImageProcessorKwargs.__annotations__)
        if unknown:
            raise TypeError(f"unknown preprocessing option(s): {', '.join(sorted(unknown))}")
        settings = {name: getattr(self, name) for name in MTCLARImageProcessorKwargs.__annotations__}
        settings.update({k: v for k, v in overrides.items() if v is not None})
        self._check_settings(settings)
        return settings

    def preprocess(
        self, images, face_boxes=None, landmarks=None, return_tensors: str | None = "pt", **kwargs
    ) -> BatchFeature:
        """
        Preprocess one image or a batch.

        Args:
            images: a PIL image, numpy array (HW/HWC; uint8, uint16 or float in [0, 1]), torch tensor (CHW/HWC),
                a local file path, a list of those, or a 4-D numpy (BHWC) / torch (BCHW) batch.
            face_boxes: None, or one (x, y, w, h) pixel box or None per image (a single box for a single image).
            landmarks: instead of `face_boxes`, the 68 iBUG landmarks per image ((68, 2) each, or (B, 68, 2));
                the crop is then the project's `LANDMARK_BOX` convention.
            return_tensors: "pt" (default), "np", or None (numpy).
            kwargs: per-call overrides of the constructor parameters.

        Returns:
            `BatchFeature` with `pixel_values` of shape (B, 3, crop_size, crop_size), float32.
        """
        settings = self._settings(kwargs)
        if landmarks is not None:
            if face_boxes is not None:
                raise ValueError("give face_boxes or landmarks, not both")
            face_boxes = [None if np.isnan(box).any() else box.tolist() for box in landmark_boxes(landmarks)]
        image_list = [_load_image_path(im) if isinstance(im, str | os.PathLike) else im for im in _as_list(images)]
        boxes = _as_box_list(face_boxes, len(image_list))
        arrays = [to_unit_rgb_array(image) for image in image_list]
        pixel_values = self._crop_resize_batch(arrays, boxes, settings)
        return BatchFeature(data={"pixel_values": pixel_values}, tensor_type=return_tensors)

    def preprocess_arrays(self, frames, boxes=None) -> np.ndarray:
        """Fast path for video frames: uint8 RGB HWC numpy frames (+ optional boxes) -> (B, 3, S, S) float32.

        No dtype/layout inference and no copy of the full frame: only the face region is read. Gives exactly
        the same numbers as `preprocess` on the same frames.
        """
        frames = list(frames)
        for frame in frames:
            if not (
                isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
            ):
                shape = getattr(frame, "shape", None)
                raise ValueError(
                    f"preprocess_arrays takes uint8 RGB HWC numpy frames, got {type(frame).__name__} {shape}"
                )
            if frame.shape[0] == 0 or frame.shape[1] == 0:
                raise ValueError(f"frame has zero size: shape {frame.shape}")
        return self._crop_resize_batch(frames, _as_box_list(boxes, len(frames)), self._settings({}))

    def _crop_resize_batch(self, arrays: list[np.ndarray], boxes: list, settings: dict[str, Any]) -> np.ndarray:
        crop = settings["crop_size"]
        out = np.empty((len(arrays), 3, crop, crop), dtype=np.float32)
        for i, (array, box) in enumerate(zip(arrays, boxes)):
            if box is None:
                region = (0, 0, array.shape[1], array.shape[0])
            else:
                left, top, side = square_crop_region(box, settings["face_margin"])
                # Resampling cost grows with the crop: a box far beyond the frame is a bug upstream, not a face.
                if side > MAX_CROP_TO_IMAGE * max(array.shape[:2]):
                    raise ValueError(
                        f"face box {tuple(box)} is more than {MAX_CROP_TO_IMAGE} times the image size {array.shape[1]}x{array.shape[0]}"
                    )
                region = (left, top, side, side)
            if array.shape[2] == 3:
                crop_resize_center(array, region, settings["resize_size"], crop, out=out[i])
            else:  # a single grey channel broadcasts to R, G and B
                out[i] = crop_resize_center(array, region, settings["resize_size"], crop)
        # Weights sum to 1 only up to float32 rounding; keep the documented [0, 1] range exact.
        np.clip(out, 0.0, 1.0, out=out)
        if settings["do_normalize"]:
            mean = np.asarray(settings["image_mean"], dtype=np.float32).reshape(1, 3, 1, 1)
            std = np.asarray(settings["image_std"], dtype=np.float32).reshape(1, 3, 1, 1)
            out = (out - mean) / std
        return out


__all__ = ["LANDMARK_BOX", "MTCLARImageProcessor", "landmark_boxes"]
