"""TrainAugment (the reference augmentation) and EvalTransform (the processor as a transform)."""

import math

import numpy as np
import pytest
from PIL import Image

from mtclar_hf import MTCLARImageProcessor
from mtclar_hf.data.affectnet import affectnet_features, dataset_from_columns
from mtclar_hf.data.transforms import EvalTransform, TrainAugment


def gradient_image(size=64):
    """Left-right asymmetric RGB image, so a horizontal flip is visible."""
    x = np.linspace(0, 255, size, dtype=np.float32)
    red = np.tile(x, (size, 1))
    green = red.T
    blue = np.full((size, size), 80.0)
    return Image.fromarray(np.stack([red, green, blue], axis=-1).astype(np.uint8))


def no_op_augment(**overrides):
    settings = dict(resize_size=40, crop_size=40, degrees=0.0, translate=0.0, scale=(1.0, 1.0), shear=0.0, flip_p=0.0)
    settings.update(overrides)
    return TrainAugment(**settings)


def test_output_shape_range_and_determinism():
    augment = TrainAugment(resize_size=40, crop_size=32)
    image = gradient_image()
    first = augment(image, [8, 8, 40, 40], rng=np.random.default_rng(3))
    again = augment(image, [8, 8, 40, 40], rng=np.random.default_rng(3))
    other = augment(image, [8, 8, 40, 40], rng=np.random.default_rng(4))
    assert first.shape == (3, 32, 32) and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_without_randomness_it_is_the_processor_face_crop():
    """Identity augmentation == the processor's resize-only output: same face geometry in both paths."""
    image, box = gradient_image(), [10, 12, 30, 26]
    out = no_op_augment()(image, box, rng=np.random.default_rng(0))
    processor = MTCLARImageProcessor(resize_size=40, crop_size=40)
    expected = processor(image, face_boxes=[box], return_tensors="np")["pixel_values"][0]
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_flip_mirrors_the_image():
    image = gradient_image()
    plain = no_op_augment()(image, None, rng=np.random.default_rng(0))
    flipped = no_op_augment(flip_p=1.0)(image, None, rng=np.random.default_rng(0))
    np.testing.assert_allclose(flipped, plain[:, :, ::-1], atol=1e-5)


def test_affine_parameters_stay_in_the_reference_ranges():
    augment = TrainAugment(resize_size=288, crop_size=256)
    rng = np.random.default_rng(0)
    scales, flips, angles = [], [], []
    for _ in range(400):
        linear = augment.sample_matrix(rng)[:, :2]
        flipped = np.linalg.det(linear) < 0
        if flipped:  # the flip negates the output x row
            linear = np.diag([-1.0, 1.0]) @ linear
        scales.append(math.sqrt(np.linalg.det(linear)))  # shear keeps the area
        flips.append(flipped)
        angles.append(math.degrees(math.atan2(linear[1, 0], linear[0, 0])))  # x-shear keeps the first column
    assert 0.8 - 1e-6 <= min(scales) and max(scales) <= 1.2 + 1e-6
    assert max(scales) - min(scales) > 0.3  # the range is actually used
    assert 0.4 < np.mean(flips) < 0.6  # flip p=0.5
    assert max(abs(angle) for angle in angles) <= 20.0 + 0.2  # shear adds at most 0.1 degree
    assert max(abs(angle) for angle in angles) > 15.0


def test_crop_offset_is_random_within_bounds():
    """The random crop never samples outside the resized face: with no affine, pixels come from the face."""
    image = Image.fromarray(np.full((64, 64, 3), 200, dtype=np.uint8))
    augment = no_op_augment(crop_size=24)
    outs = [augment(image, None, rng=np.random.default_rng(seed)) for seed in range(6)]
    for out in outs:
        np.testing.assert_allclose(out, 200 / 255, atol=1e-5)  # no zero padding leaks in
    ramp = gradient_image()
    crops = {augment(ramp, None, rng=np.random.default_rng(seed))[0, 0, 0].round(4) for seed in range(12)}
    assert len(crops) > 3  # different offsets


def tiny_dataset(tmp_path, rows=3):
    paths = []
    for index in range(rows):
        path = tmp_path / f"{index}.png"
        gradient_image(48).save(path)
        paths.append(path)
    columns = {
        "image": paths,
        "expression": np.arange(rows, dtype=np.int64),
        "valence": np.linspace(-0.5, 0.5, rows).astype(np.float32),
        "arousal": np.zeros(rows, dtype=np.float32),
        "face_box": np.tile([4, 4, 36, 36], (rows, 1)),
        "landmarks": np.zeros((rows, 136)),
        "image_id": [str(i) for i in range(rows)],
        "identity": [""] * rows,
    }
    return dataset_from_columns(columns, affectnet_features())


def test_the_evaluation_transform_is_the_processor(tmp_path):
    dataset = tiny_dataset(tmp_path, rows=2)
    processor = MTCLARImageProcessor(resize_size=40, crop_size=32)
    transform = EvalTransform(processor)
    crops = np.stack([transform(dataset[i]["image"], dataset[i]["face_box"]) for i in range(2)])
    expected = processor([dataset[i]["image"] for i in range(2)], face_boxes=[[4, 4, 36, 36]] * 2, return_tensors="np")
    np.testing.assert_allclose(crops, expected["pixel_values"], atol=1e-6)
    assert isinstance(EvalTransform().processor, MTCLARImageProcessor)


def test_crop_larger_than_resize_is_rejected():
    with pytest.raises(ValueError, match="crop_size"):
        TrainAugment(resize_size=32, crop_size=40)


def test_box_jitter_moves_and_scales_the_box_within_its_bounds():
    from mtclar_hf.data.transforms import BoxJitter

    seen = []
    jitter = BoxJitter(lambda image, box, rng: seen.append(box) or box, jitter=0.1)
    rng = np.random.default_rng(0)
    for _ in range(200):
        jitter(None, (40.0, 60.0, 100.0, 80.0), rng)
    boxes = np.asarray(seen)
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    assert np.abs(centres - (90.0, 100.0)).max() <= 0.1 * 100 + 1e-9  # up to 10% of the longer side
    assert np.allclose(boxes[:, 2] / boxes[:, 3], 100 / 80)  # the shape is kept, only the size changes
    assert boxes[:, 2].min() >= 90 - 1e-9 and boxes[:, 2].max() <= 110 + 1e-9 and boxes[:, 2].std() > 1
    assert jitter(None, None, rng) is None  # no box: nothing to move
