"""Untrusted files: pickle weights never load (and never run), mismatched folders are refused, our code never
sets trust_remote_code, the demo serves nothing outside its cache, and random bytes / arrays thrown at the
image processor and the frame reader end in our own clear errors (hypothesis, bounded time)."""

import ast
import http.client
import json
import os
import pickle
import shutil
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from bad_inputs import RunsCode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mtclar_hf.errors import InputFileError, MTCLARError, UnsafeModelError

REPO = Path(__file__).resolve().parents[2]


def pickle_folder(tiny_model_dir, tmp_path) -> Path:
    """A model folder whose only weights are a pickle that creates PICKLE_RAN when unpickled."""
    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "pickled"))
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(RunsCode(tmp_path / "PICKLE_RAN")))
    return folder


def mismatched_folder(tiny_model_dir, tmp_path) -> Path:
    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "mismatched"))
    config = json.loads((folder / "config.json").read_text())
    config["embedding_size"] = 48
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_pickle_weights_never_run(tiny_model_dir, tmp_path):
    """Every way our code loads a model refuses the pickle, and its payload never runs."""
    from transformers import AutoModel

    from mtclar_hf import MTCLARModel
    from mtclar_hf.labeling.loading import load_model_and_processor

    folder = pickle_folder(tiny_model_dir, tmp_path)
    with pytest.raises(UnsafeModelError, match="pytorch_model.bin: pickle weights refused"):
        load_model_and_processor(folder)
    for load in (MTCLARModel.from_pretrained, AutoModel.from_pretrained):
        with pytest.raises(Exception, match="safetensors only"):
            load(folder)
        with pytest.raises(Exception, match="safetensors only"):
            load(folder, use_safetensors=False)
    assert not (tmp_path / "PICKLE_RAN").exists()


def test_from_pretrained_raises_unsafe_model_error_for_pickles(tiny_model_dir, tmp_path):
    from mtclar_hf import MTCLARModel

    with pytest.raises(UnsafeModelError):
        MTCLARModel.from_pretrained(pickle_folder(tiny_model_dir, tmp_path))


def test_config_that_does_not_match_the_weights_is_refused(tiny_model_dir, tmp_path):
    from mtclar_hf.labeling.loading import load_model_and_processor

    with pytest.raises(UnsafeModelError, match="weights do not match config.json"):
        load_model_and_processor(mismatched_folder(tiny_model_dir, tmp_path))


def test_from_pretrained_refuses_mismatch_with_our_error(tiny_model_dir, tmp_path):
    from mtclar_hf import MTCLARModel

    with pytest.raises(UnsafeModelError):
        MTCLARModel.from_pretrained(mismatched_folder(tiny_model_dir, tmp_path))


def test_damaged_safetensors_header_is_a_one_line_error(tiny_model_dir, tmp_path):
    from mtclar_hf import MTCLARModel

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "damaged"))
    (folder / "model.safetensors").write_bytes((2**40).to_bytes(8, "little") + b"{}")
    with pytest.raises(InputFileError, match="model.safetensors: not a readable safetensors file") as caught:
        MTCLARModel.from_pretrained(folder)
    assert "\n" not in str(caught.value)


def test_weight_checks_travel_with_the_model_code():
    """The modules copied beside saved weights check weight files themselves: they import only torch, transformers,
    huggingface_hub, numpy, PIL and the standard library, and each other relatively; never the Hub code."""
    import sys

    allowed = {"torch", "transformers", "huggingface_hub", "numpy", "PIL", *sys.stdlib_module_names}
    copied = ("configuration_mtclar", "modeling_mtclar", "modeling_emofan", "image_processing_mtclar", "weights_safety", "errors")
    for name in copied:
        tree = ast.parse((REPO / "mtclar_hf" / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(alias.name.split(".")[0] in allowed for alias in node.names), (name, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 1 and node.module in copied or node.level == 0 and node.module.split(".")[0] in allowed, (
                    name, node.lineno
                )
    safety = ast.parse((REPO / "mtclar_hf" / "weights_safety.py").read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(safety) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(safety) if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert modules <= set(sys.stdlib_module_names), modules


def test_our_code_never_sets_trust_remote_code():
    """trust_remote_code=True runs code from a folder: our package and demo never pass it (only tests do, on
    folders they wrote themselves)."""
    offenders = []
    for path in sorted([*(REPO / "mtclar_hf").rglob("*.py"), *(REPO / "demo").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            for keyword in getattr(node, "keywords", []):
                if keyword.arg == "trust_remote_code" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
            if isinstance(node, ast.Dict):  # **{"trust_remote_code": True}
                for key in node.keys:
                    if isinstance(key, ast.Constant) and key.value == "trust_remote_code":
                        offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders, offenders


# ----------------------------------------------------------------------------------------------- demo


@pytest.fixture(scope="module")
def served_demo(tiny_model_dir, tmp_path_factory):
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio-cache"))
    from mtclar_hf.demo_loading import load_demo_module

    app_module = load_demo_module()
    app = app_module.LabellingDemo(
        default_model=str(tiny_model_dir), workdir=tmp_path_factory.mktemp("served"), example_seeds=(3,)
    )
    app.build()
    app.launch(host="127.0.0.1", prevent_thread_lock=True, quiet=True)
    yield app
    app.close()


def get(app, path: str) -> tuple[int, bytes]:
    """A raw GET (no client-side path normalisation), as an attacker would send it."""
    host, port = urllib.parse.urlsplit(app.blocks.local_url).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()


def test_demo_serves_nothing_outside_its_cache(served_demo, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve me")
    cache = os.environ["GRADIO_TEMP_DIR"]
    example = served_demo.workdir / "examples" / "synthaffect_3.mp4"
    attempts = [
        "/gradio_api/file=/etc/passwd",
        "/gradio_api/file=../../../../../../etc/passwd",
        "/gradio_api/file=..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/gradio_api/file=%2Fetc%2Fpasswd",
        f"/gradio_api/file={cache}/../../../../etc/passwd",
        f"/gradio_api/file={urllib.parse.quote(cache)}%2F..%2F..%2F..%2Fetc%2Fpasswd",
        f"/gradio_api/file={secret}",
        f"/gradio_api/file={example}",  # the app's own temp folder is not served either, only Gradio's cache
        "/file=/etc/passwd",
        "/gradio_api/file=/proc/self/environ",
        "/static/../../../../etc/passwd",
        "/assets/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    ]
    served = []
    for path in attempts:
        status, body = get(served_demo, path)
        if status == 200 or b"root:" in body or b"do not serve me" in body or b"HF_HUB_OFFLINE" in body:
            served.append((path, status))
    assert not served, served
    assert served_demo.blocks.allowed_paths == [] and served_demo.blocks.max_file_size == 50 * 1024 * 1024


# ----------------------------------------------------------------------------------------------- fuzz

FUZZ = settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@pytest.fixture(scope="module")
def processor():
    from mtclar_hf import MTCLARImageProcessor

    return MTCLARImageProcessor(resize_size=36, crop_size=32)


INTEGER_ARRAYS = hnp.arrays(
    st.sampled_from([np.uint8, np.uint16, np.int32, np.bool_]),
    hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=24),
)
FLOAT_ARRAYS = hnp.arrays(
    st.sampled_from([np.float32, np.float64]),
    hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=24),
    elements=st.one_of(st.floats(-2, 2, width=32), st.sampled_from([np.nan, np.inf, -np.inf])),
)
# Boxes up to a few times the image size (far larger ones are refused: see the test below), NaN and infinities included.
BOXES = st.one_of(st.none(), st.tuples(*[st.one_of(st.floats(-50, 100), st.sampled_from([np.nan, np.inf]))] * 4))


@FUZZ
@given(array=st.one_of(INTEGER_ARRAYS, FLOAT_ARRAYS), box=BOXES)
def test_processor_on_random_arrays(processor, array, box):
    """Any array and box: pixel values in [0, 1] of the right shape, or a one-line ValueError/TypeError."""
    boxes = None if box is None or array.ndim == 4 else [box]
    try:
        pixels = processor(array, face_boxes=boxes, return_tensors="np")["pixel_values"]
    except (ValueError, TypeError) as err:  # MTCLARError is a ValueError too
        assert str(err) and "\n" not in str(err).strip(), repr(err)
        return
    assert pixels.shape[1:] == (3, 32, 32) and np.isfinite(pixels).all()
    assert pixels.min() >= 0 and pixels.max() <= 1


def test_processor_huge_face_box_is_cheap_or_refused(processor):
    started = time.perf_counter()
    try:
        processor(np.zeros((10, 12, 3), np.uint8), face_boxes=[(0, 0, 1e5, 1e5)], return_tensors="np")
    except ValueError:
        pass
    assert time.perf_counter() - started < 0.1


@FUZZ
@given(data=st.binary(min_size=0, max_size=4096), suffix=st.sampled_from([".mp4", ".mkv", ".avi", ".png", ".jpg"]),
       header=st.sampled_from([b"", b"\x00\x00\x00\x18ftypmp42", b"\x1aE\xdf\xa3", b"RIFF\x00\x00\x00\x00AVI ",
                               b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0"]))
def test_frame_reader_on_random_bytes(tmp_path_factory, data, suffix, header):
    """Random bytes behind a real container/image signature: frames come out as RGB uint8, or InputFileError."""
    from mtclar_hf.labeling.video import iter_frames

    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / f"random{suffix}"
    path.write_bytes(header + data)
    if suffix in (".png", ".jpg"):  # an image goes through the frame-folder reader
        path = folder
    try:
        for frame in iter_frames(path):
            assert frame.image.dtype == np.uint8 and frame.image.ndim == 3 and frame.image.shape[2] == 3
    except MTCLARError as err:
        assert isinstance(err, InputFileError) and "\n" not in str(err), repr(err)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
