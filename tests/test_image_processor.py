"""MTCLARImageProcessor: same numbers for every input type, face-box geometry, save/load, clear errors."""

import json
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from mtclar_hf import MTCLARImageProcessor
from mtclar_hf.image_processing_mtclar import crop_resize_center
from mtclar_hf.testing_utils import run_without_mtclar_hf


@pytest.fixture
def rgb_uint8():
    return np.random.default_rng(0).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)


@pytest.fixture
def processor():
    return MTCLARImageProcessor(resize_size=72, crop_size=64)


def pixels(processor, images, **kwargs) -> np.ndarray:
    return processor(images, return_tensors="np", **kwargs)["pixel_values"]


@pytest.mark.parametrize("box", [None, (10, 8, 30, 24)])
def test_same_numbers_from_pil_numpy_and_torch(processor, rgb_uint8, box):
    as_float = rgb_uint8.astype(np.float32) / np.float32(255)
    variants = {
        "pil": Image.fromarray(rgb_uint8),
        "numpy uint8": rgb_uint8,
        "numpy float32": as_float,
        "numpy CHW": np.ascontiguousarray(rgb_uint8.transpose(2, 0, 1)),
        "torch CHW uint8": torch.from_numpy(rgb_uint8).permute(2, 0, 1),
        "torch HWC uint8": torch.from_numpy(rgb_uint8),
        "torch CHW float": torch.from_numpy(as_float).permute(2, 0, 1).contiguous(),
    }
    boxes = None if box is None else [box]
    expected = pixels(processor, [variants["numpy uint8"]], face_boxes=boxes)
    assert expected.shape == (1, 3, 64, 64) and expected.dtype == np.float32
    for name, image in variants.items():
        np.testing.assert_array_equal(pixels(processor, image, face_boxes=boxes), expected, err_msg=name)
    # Deterministic, batch position does not matter, and the video fast path agrees bit for bit.
    batch = pixels(processor, [rgb_uint8, variants["pil"]], face_boxes=None if box is None else [box, box])
    np.testing.assert_array_equal(batch, np.concatenate([expected, expected]))
    np.testing.assert_array_equal(processor.preprocess_arrays([rgb_uint8], boxes), expected)


def test_default_call_returns_torch_batch_feature(rgb_uint8):
    batch = MTCLARImageProcessor()(rgb_uint8)
    assert list(batch.keys()) == ["pixel_values"]
    assert isinstance(batch["pixel_values"], torch.Tensor)
    assert batch["pixel_values"].shape == (1, 3, 256, 256) and batch["pixel_values"].dtype == torch.float32


@pytest.mark.parametrize("size", [(37, 51), (300, 220)])  # upscaling and downscaling (antialiased)
def test_resampling_matches_pillow_bilinear_on_float_images(size):
    image = np.random.default_rng(1).random(size + (3,), dtype=np.float32)
    ours = crop_resize_center(image, (0, 0, size[1], size[0]), 72, 64).transpose(1, 2, 0)
    channels = [Image.fromarray(image[:, :, c], mode="F").resize((72, 72), Image.Resampling.BILINEAR) for c in range(3)]
    reference = np.stack([np.asarray(c) for c in channels], axis=-1)[4:68, 4:68]
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_whole_image_is_stretched_to_a_square_without_box(processor):
    # Left half black, right half white on a wide image: the boundary stays in the middle after the
    # non-aspect-preserving resize, so columns left of centre are dark and right of centre bright.
    image = np.zeros((20, 100, 3), dtype=np.uint8)
    image[:, 50:] = 255
    out = pixels(processor, image)[0]
    np.testing.assert_allclose(out[:, :, :28], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[:, :, 36:], 1.0, atol=1e-6)


def test_greyscale_inputs_are_repeated_to_rgb(processor, rgb_uint8):
    grey = rgb_uint8[:, :, 0]
    expected = pixels(processor, np.repeat(grey[:, :, None], 3, axis=2))
    for image in (grey, grey[:, :, None], Image.fromarray(grey), torch.from_numpy(grey)[None]):
        np.testing.assert_array_equal(pixels(processor, image), expected)
    np.testing.assert_array_equal(expected[0, 0], expected[0, 2])


def test_alpha_is_dropped_not_composited(processor, rgb_uint8):
    alpha = np.zeros(rgb_uint8.shape[:2] + (1,), dtype=np.uint8)  # fully transparent
    rgba = np.concatenate([rgb_uint8, alpha], axis=2)
    expected = pixels(processor, rgb_uint8)
    np.testing.assert_array_equal(pixels(processor, rgba), expected)
    np.testing.assert_array_equal(pixels(processor, Image.fromarray(rgba, mode="RGBA")), expected)
    la = Image.fromarray(np.stack([rgb_uint8[:, :, 1], alpha[:, :, 0]], axis=2), mode="LA")
    np.testing.assert_array_equal(pixels(processor, la), pixels(processor, rgb_uint8[:, :, 1]))


def test_palette_and_cmyk_use_pillow_rgb_conversion(processor, rgb_uint8):
    palette = Image.fromarray(rgb_uint8).quantize(colors=16)
    assert palette.mode == "P"
    np.testing.assert_array_equal(pixels(processor, palette), pixels(processor, np.asarray(palette.convert("RGB"))))
    cmyk = Image.fromarray(rgb_uint8).convert("CMYK")
    np.testing.assert_array_equal(pixels(processor, cmyk), pixels(processor, np.asarray(cmyk.convert("RGB"))))


def test_sixteen_bit_images_are_scaled_by_65535(processor):
    deep = np.random.default_rng(2).integers(0, 65536, size=(40, 30), dtype=np.uint16)
    deep[0, 0], deep[0, 1] = 0, 65535
    expected = pixels(processor, deep.astype(np.float32) / np.float32(65535))
    pil_16 = Image.fromarray(deep)
    assert pil_16.mode.startswith("I;16")
    pil_32 = pil_16.convert("I")
    for image in (deep, pil_16, pil_32, np.stack([deep] * 3, axis=2)):
        np.testing.assert_array_equal(pixels(processor, image), expected)
    white = pixels(processor, np.full((8, 8), 65535, dtype=np.uint16))
    np.testing.assert_array_equal(white, np.ones_like(white))


def test_pil_float_mode_is_read_as_unit_range(processor):
    values = np.random.default_rng(3).random((30, 40), dtype=np.float32)
    np.testing.assert_array_equal(pixels(processor, Image.fromarray(values, mode="F")), pixels(processor, values))


def test_face_box_content_fills_the_centre():
    # A red 60x60 face box (plus a blue 60x30 one) on black; with margin 0.25 the square crop is 1.5x the
    # box side, so the box covers the middle 2/3 of the 288 px resize: rows/cols 48..240, i.e. 32..224 after
    # the 16 px centre crop to 256.
    image = np.zeros((200, 300, 3), dtype=np.uint8)
    image[50:110, 120:180] = (255, 0, 0)
    image[140:170, 20:80] = (0, 0, 255)
    out = pixels(MTCLARImageProcessor(), [image, image], face_boxes=[(120, 50, 60, 60), (20, 140, 60, 30)])
    red, blue = out
    np.testing.assert_array_equal(red[:, 34:222, 34:222], np.broadcast_to([[[1.0]], [[0.0]], [[0.0]]], (3, 188, 188)))
    assert np.all(red[:, :30] == 0) and np.all(red[:, :, :30] == 0) and np.all(red[:, 226:] == 0)
    # The wide box is made square around its centre: full width as above, a quarter of the height each side.
    assert np.all(blue[2, 82:174, 34:222] == 1) and np.all(blue[:, :78] == 0) and np.all(blue[:, 178:] == 0)


def test_box_partly_or_wholly_outside_the_image_is_zero_padded(rgb_uint8):
    processor = MTCLARImageProcessor(resize_size=72, crop_size=72, face_margin=0.0)
    white = np.full((40, 40, 3), 255, dtype=np.uint8)
    half_out = pixels(processor, white, face_boxes=[(-20, 0, 40, 40)])[0]
    assert np.all(half_out[:, :, :35] == 0) and np.all(half_out[:, :, 37:] == 1)
    for box in [(500, 500, 30, 30), (-100, -90, 20, 20)]:
        out = pixels(processor, rgb_uint8, face_boxes=[box])
        np.testing.assert_array_equal(out, np.zeros_like(out))
    # A box much larger than the image: the image sits in the middle of a black square.
    big = pixels(processor, white, face_boxes=[(-40, -40, 120, 120)])[0]
    assert np.all(big[:, 26:46, 26:46] == 1) and np.all(big[:, :22] == 0)


def test_values_in_unit_range_and_normalisation(rgb_uint8):
    plain = MTCLARImageProcessor(resize_size=72, crop_size=64)
    out = pixels(plain, rgb_uint8, face_boxes=[(5, 5, 50, 30)])
    assert out.min() >= 0.0 and out.max() <= 1.0 and out.max() > 0.9
    normalised = pixels(plain, rgb_uint8, face_boxes=[(5, 5, 50, 30)], do_normalize=True)
    mean = np.array(plain.image_mean, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array(plain.image_std, dtype=np.float32).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(normalised, (out - mean) / std, rtol=1e-6)


def test_save_and_load_round_trip(tmp_path, rgb_uint8):
    from transformers import AutoImageProcessor

    original = MTCLARImageProcessor(resize_size=80, crop_size=70, face_margin=0.4, do_normalize=True)
    original.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["resize_size"] == 80 and saved["crop_size"] == 70 and saved["face_margin"] == 0.4
    assert saved["resample"] == 2 and saved["do_normalize"] is True
    assert saved["auto_map"]["AutoImageProcessor"] == "image_processing_mtclar.MTCLARImageProcessor"
    assert (tmp_path / "image_processing_mtclar.py").exists()
    box = [(4, 6, 30, 20)]
    for loaded in (MTCLARImageProcessor.from_pretrained(tmp_path), AutoImageProcessor.from_pretrained(tmp_path)):
        assert type(loaded) is MTCLARImageProcessor
        assert loaded.to_dict() == original.to_dict()
        np.testing.assert_array_equal(
            pixels(loaded, rgb_uint8, face_boxes=box), pixels(original, rgb_uint8, face_boxes=box)
        )
    assert MTCLARImageProcessor.from_pretrained(tmp_path, crop_size=64).crop_size == 64


def test_remote_code_without_torchvision_gives_identical_numbers(tmp_path, rgb_uint8):
    """Loaded via trust_remote_code where mtclar_hf, torchvision and even torch are absent: the same output.

    Blocking torch as well shows the pixel maths use no tensor backend at all (and keeps the subprocess fast).
    """
    from transformers.image_processing_backends import PilBackend, TorchvisionBackend

    assert not issubclass(MTCLARImageProcessor, PilBackend | TorchvisionBackend)
    processor = MTCLARImageProcessor(resize_size=72, crop_size=64)
    processor.save_pretrained(tmp_path / "proc")
    np.save(tmp_path / "image.npy", rgb_uint8)
    code = textwrap.dedent(
        """
        import sys
        sys.modules["torchvision"] = None  # any import of these now raises ImportError
        sys.modules["torch"] = None
        import numpy as np
        from PIL import Image
        from transformers import AutoImageProcessor
        proc = AutoImageProcessor.from_pretrained("proc", trust_remote_code=True)
        assert type(proc).__module__.startswith("transformers_modules"), type(proc).__module__
        image = np.load("image.npy")
        out = proc([Image.fromarray(image), image], face_boxes=[None, (10, 8, 30, 24)], return_tensors="np")
        np.save("remote.npy", out["pixel_values"])
        """
    )
    result = run_without_mtclar_hf(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = pixels(processor, [rgb_uint8, rgb_uint8], face_boxes=[None, (10, 8, 30, 24)])
    np.testing.assert_array_equal(np.load(tmp_path / "remote.npy"), expected)


@pytest.mark.parametrize(
    ("bad_input", "error", "fragment"),
    [
        (np.zeros((0, 5, 3), dtype=np.uint8), ValueError, "zero size"),
        (np.zeros((5,), dtype=np.uint8), ValueError, "dimensions"),
        (np.zeros((2, 2, 5, 5, 3), dtype=np.uint8), ValueError, "dimensions"),
        (np.zeros((5, 5, 2), dtype=np.uint8), ValueError, "channel"),
        (np.full((5, 5), np.nan, dtype=np.float32), ValueError, "NaN"),
        (np.full((5, 5, 3), 200.0, dtype=np.float32), ValueError, "divide"),
        (np.zeros((5, 5, 3), dtype=np.int64), TypeError, "dtype"),
        (np.zeros((5, 5, 3), dtype=bool), TypeError, "dtype"),
        ({"pixels": 1}, TypeError, "unsupported image type"),
        ([], ValueError, "empty"),
        ("https://example.com/face.jpg", ValueError, "URLs"),
        ("/nonexistent/face.png", ValueError, "cannot read"),
    ],
)
def test_bad_images_raise_one_line_errors(processor, bad_input, error, fragment):
    with pytest.raises(error, match=fragment) as info:
        processor(bad_input)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("boxes", "fragment"),
    [
        ([(1, 1, 0, 5)], "positive"),
        ([(1, 1, float("nan"), 5)], "finite"),
        ([(1, 1, 5)], "4 numbers"),
        ([None, None], "2 face boxes for 1 images"),
    ],
)
def test_bad_face_boxes_raise(processor, rgb_uint8, boxes, fragment):
    with pytest.raises(ValueError, match=fragment):
        processor(rgb_uint8, face_boxes=boxes)


def test_bad_settings_raise():
    with pytest.raises(ValueError, match="crop_size <= resize_size"):
        MTCLARImageProcessor(resize_size=64, crop_size=72)
    with pytest.raises(ValueError, match="only bilinear"):
        MTCLARImageProcessor(resample=3)
    with pytest.raises(TypeError, match="unknown preprocessing option"):
        MTCLARImageProcessor()(np.zeros((4, 4, 3), dtype=np.uint8), crop_szie=3)
    with pytest.raises(ValueError, match="uint8 RGB HWC"):
        MTCLARImageProcessor().preprocess_arrays([np.zeros((4, 4, 3), dtype=np.float32)])


def test_batched_arrays_and_box_shorthands(processor, rgb_uint8):
    box = (10, 8, 30, 24)
    expected = pixels(processor, [rgb_uint8, rgb_uint8], face_boxes=[box, box])
    chw = torch.from_numpy(rgb_uint8).permute(2, 0, 1)
    np.testing.assert_array_equal(
        pixels(processor, np.stack([rgb_uint8] * 2), face_boxes=np.array([box] * 2)), expected
    )
    np.testing.assert_array_equal(
        pixels(processor, torch.stack([chw] * 2), face_boxes=torch.tensor([box] * 2)), expected
    )
    # One image, one bare box (numpy scalars included).
    np.testing.assert_array_equal(pixels(processor, rgb_uint8, face_boxes=np.float32(box)), expected[:1])
