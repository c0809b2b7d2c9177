"""Video IO: PyAV decoding of each codec this build can encode, VFR timestamps, frame folders, bad input."""

import gc
import json
import weakref

import numpy as np
import pytest
from PIL import Image

from mtclar_hf.errors import InputFileError
from mtclar_hf.labeling.video import (
    box_from_landmarks,
    iter_frames,
    probe_video,
    read_afew_annotation,
    write_video,
)


def colour_frames(num: int, height: int = 48, width: int = 64):
    return [np.full((height, width, 3), (20 * i + 10, 100, 200 - 15 * i), dtype=np.uint8) for i in range(num)]


def encoder_available(codec: str) -> bool:
    import av

    try:
        av.codec.Codec(codec, "w")
        return True
    except Exception:
        return False


@pytest.mark.parametrize(
    "codec,suffix,decoded_as",
    [("libx264", ".mp4", "h264"), ("libx265", ".mp4", "hevc"), ("libvpx-vp9", ".webm", "vp9")],
)
def test_each_codec_round_trips(tmp_path, codec, suffix, decoded_as):
    if not encoder_available(codec):
        pytest.skip(f"this PyAV build cannot encode {codec}")
    frames = colour_frames(8)
    path = write_video(frames, tmp_path / f"clip{suffix}", fps=10, codec=codec)
    info = probe_video(path)
    assert info.codec == decoded_as and (info.width, info.height) == (64, 48)
    decoded = list(iter_frames(path))
    assert [f.index for f in decoded] == list(range(8))
    np.testing.assert_allclose([f.timestamp for f in decoded], np.arange(8) / 10, atol=1e-3)
    for original, frame in zip(frames, decoded):
        assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
        # lossy yuv420p: colours come back within a few levels
        assert np.abs(frame.image.astype(int).mean((0, 1)) - original[0, 0]).max() < 8


def test_variable_frame_rate_keeps_real_timestamps(tmp_path):
    times = [0.0, 0.04, 0.1, 0.13, 0.3, 0.31, 0.5, 0.9, 1.0]
    path = write_video(colour_frames(len(times)), tmp_path / "vfr.mkv", timestamps=times)
    decoded = [f.timestamp for f in iter_frames(path)]
    np.testing.assert_allclose(decoded, times, atol=1e-3)


def test_odd_frame_size_is_padded(tmp_path):
    path = write_video(colour_frames(3, height=47, width=63), tmp_path / "odd.mp4", fps=25)
    assert next(iter(iter_frames(path))).image.shape == (48, 64, 3)


def test_write_video_is_atomic_on_failure(tmp_path):
    target = tmp_path / "bad.mp4"
    with pytest.raises(ValueError, match="frame 1"):
        write_video([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)], target)
    assert list(tmp_path.iterdir()) == []


def test_not_a_video_is_a_one_line_error(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n")
    with pytest.raises(InputFileError, match="notes.mp4"):
        list(iter_frames(bad))
    with pytest.raises(InputFileError, match="no such video"):
        iter_frames(tmp_path / "missing.mp4")


def test_frame_folder_with_afew_json(tmp_path):

    folder = tmp_path / "042"
    folder.mkdir()
    for t in range(3):
        Image.fromarray(colour_frames(3)[t]).save(folder / f"{t:05d}.png")
    landmarks = [[10 + i % 10, 5 + i // 10] for i in range(68)]
    frames = {f"{t:05d}": {"valence": 5 - t, "arousal": -10, "landmarks": landmarks} for t in range(3)}
    (folder / "042.json").write_text(json.dumps({"actor": "x", "video_id": "042", "frames": frames}))
    decoded = list(iter_frames(folder, fps=25))
    assert [f.name for f in decoded] == ["00000", "00001", "00002"]
    assert [f.timestamp for f in decoded] == [0.0, 0.04, 0.08]
    assert decoded[0].box == (10.0, 5.0, 9.0, 6.0)
    annotation = read_afew_annotation(folder / "042.json")
    assert annotation["frames"]["00001"]["valence"] == pytest.approx(0.4)
    assert annotation["frames"]["00001"]["arousal"] == pytest.approx(-1.0)


def test_a_calm_afew_clip_is_read_in_tenths_like_any_other(tmp_path):
    """AFEW-VA stores tenths: labels all in {-1, 0, 1} are 0.1 steps, as the dataset reader reads them."""
    from mtclar_hf.data.afew_va import load_afew_va_clips

    raw = tmp_path / "raw"
    folder = raw / "007"
    folder.mkdir(parents=True)
    calm = [(1, 0), (0, -1), (-1, 1)]
    landmarks = [[10 + i % 10, 5 + i // 10] for i in range(68)]
    for t in range(3):
        Image.fromarray(colour_frames(3)[t]).save(folder / f"{t:05d}.png")
    frames = {f"{t:05d}": {"valence": v, "arousal": a, "landmarks": landmarks} for t, (v, a) in enumerate(calm)}
    (folder / "007.json").write_text(json.dumps({"actor": "x", "video_id": "007", "frames": frames}))
    annotation = read_afew_annotation(folder / "007.json")
    read = [value for e in annotation["frames"].values() for value in (e["valence"], e["arousal"])]
    assert read == pytest.approx([0.1, 0.0, 0.0, -0.1, -0.1, 0.1])
    (clip,) = load_afew_va_clips(raw)
    assert np.stack([clip.valence, clip.arousal], axis=1).ravel() == pytest.approx(read)
    frames["00001"]["valence"] = 12
    (folder / "007.json").write_text(json.dumps({"actor": "x", "video_id": "007", "frames": frames}))
    with pytest.raises(InputFileError, match=r"007\.json.*valence 12 is outside \[-10, 10\]"):
        read_afew_annotation(folder / "007.json")


def test_box_from_degenerate_landmarks_is_none():
    assert box_from_landmarks(np.zeros((68, 2))) is None
    assert box_from_landmarks(np.full((68, 2), np.nan)) is None


class LiveCounter:
    """Counts how many of the tracked arrays are alive at once (weak references: tracking keeps nothing alive)."""

    def __init__(self):
        self.alive = 0
        self.peak = 0

    def track(self, array):
        self.alive += 1
        self.peak = max(self.peak, self.alive)
        weakref.finalize(array, self._release)
        return array

    def _release(self):
        self.alive -= 1


def test_memory_stays_bounded_on_a_long_video(tmp_path, tiny_labeler_parts, monkeypatch):
    """A long video is decoded, cropped and encoded with only a queue's worth of frames alive at any time."""
    from mtclar_hf.labeling import FewShotVideoLabeler
    from mtclar_hf.labeling import labeler as labeler_module

    model, processor = tiny_labeler_parts
    size, num_frames, batch_size = 64, 800, 8
    pattern = np.random.default_rng(0).integers(0, 255, size=(size, size, 3), dtype=np.uint8)
    path = write_video((np.roll(pattern, i, axis=1) for i in range(num_frames)), tmp_path / "long.mp4", fps=25, crf=40)

    decoded, crops = LiveCounter(), LiveCounter()

    def tracked_frames(*args, **kwargs):
        for frame in iter_frames(*args, **kwargs):
            decoded.track(frame.image)
            yield frame

    monkeypatch.setattr(labeler_module, "iter_frames", tracked_frames)
    labeler = FewShotVideoLabeler(model, processor, detector=None, batch_size=batch_size)
    monkeypatch.setattr(
        labeler, "_crop", lambda frame, box: crops.track(processor.preprocess_arrays([frame.image], [box])[0])
    )
    gc.disable()  # only reference counting frees frames, as in a real run; no collector luck
    try:
        encoded = labeler.encode(path)
    finally:
        gc.enable()
    assert encoded.num_frames == num_frames and encoded.face_found.all()
    # The decode queue plus the chunk the face workers hold; the crop queue plus that chunk and the pending batch.
    assert decoded.peak <= 2 * batch_size + 4, decoded.peak
    assert crops.peak <= labeler.queue_size + 2 * batch_size + 2, crops.peak
