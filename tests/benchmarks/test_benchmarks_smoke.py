"""The benchmark commands run from the repository root in their smoke sizes and write complete JSON.

No timing assertions (the figures depend on the machine): every figure must be there, and be a positive,
finite number. The full-size figures are in docs/PERFORMANCE.md.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import finite_positive

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(module: str, out: Path, *extra: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", module, "--quick", "--tiny", "--device", "cpu", "--out", str(out), *extra],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "wrote" in done.stdout
    return json.loads(out.read_text())


def assert_figures(section: dict, names: tuple[str, ...]) -> None:
    for name in names:
        assert finite_positive(section[name]), (name, section)


def test_labeling_benchmark_smoke(tmp_path):
    result = run_benchmark("benchmarks.labeling", tmp_path / "labeling.json")
    assert result["device"] == "cpu" and result["machine"]["cpu_cores"] >= 1
    stages = result["stages"]
    assert_figures(stages["decode"], ("frames", "seconds", "fps"))
    assert_figures(stages["faces"], ("fps", "detect_track_fps", "crop_fps", "face_found_fraction", "workers"))
    by_detector = result["face_stage_by_detector"]
    face_stages = {
        "haar boxes only (no landmarks)", "hog + 68 landmarks", "haar + 68 landmarks",
        "hog + 68 landmarks, detect every frame",
    }
    assert {f"generated clip: {stage}" for stage in face_stages} <= set(by_detector)
    for row in by_detector.values():
        assert_figures(row, ("fps", "face_found_fraction"))
    assert_figures(stages["encoder"], ("frames", "fps"))
    assert stages["decode"]["frames"] == 60  # 2 s at 30 frames/s
    assert result["slowest_stage"] in stages
    e2e = result["end_to_end"]
    assert_figures(e2e, ("frames", "fps", "encode_seconds", "label_seconds"))
    assert {"decode", "faces", "crop", "encode", "total"} <= set(e2e["profile_seconds"])
    anchors = result["anchors"]
    assert set(anchors["by_k"]) == {"1", "5", "20"} and anchors["support_frames"] >= 20
    for row in anchors["by_k"].values():
        assert_figures(row, ("label_seconds", "cached_fps", "label_only_fps", "reencode_fps", "cached_vs_reencode"))
    assert_figures(anchors, ("encode_seconds", "time_ratio_k20_vs_k1"))
    memory = result["memory"]
    assert_figures(memory, ("run_peak_rss_mb", "peak_rss_ratio"))
    assert memory["long_clip"]["frames"] == 10 * memory["short_clip"]["frames"]
    for clip in ("short_clip", "long_clip"):
        assert_figures(memory[clip], ("frames", "seconds", "setup_rss_mb", "peak_rss_mb"))
        assert memory[clip]["gpu_peak_mb"] is None
    assert set(result["targets"]) == {
        "end_to_end_vs_slowest_stage", "time_k20_vs_k1", "cached_vs_reencode_k20", "peak_rss_10x_clip_vs_1x"
    }
    for check in result["targets"].values():
        assert finite_positive(check["value"]) and isinstance(check["met"], bool)


def test_labeling_benchmark_compares_backends(tmp_path):
    result = run_benchmark("benchmarks.labeling", tmp_path / "backends.json", "--backend", "torch", "onnx")
    assert result["benchmark"] == "labeling-backends" and set(result["backends"]) == {"torch", "onnx"}
    assert result["backends"]["onnx"]["providers"] == ["CPUExecutionProvider"]
    for figures in result["backends"].values():
        assert_figures(figures["encoder"], ("frames", "fps"))
        for run in ("end_to_end", "end_to_end_no_detect"):
            assert_figures(figures[run], ("frames", "fps", "encode_seconds"))
    assert figures["end_to_end_no_detect"]["face_found_fraction"] == 1.0  # every whole frame is "the face"
    assert_figures(result["onnx_vs_torch"], ("encoder", "end_to_end", "end_to_end_no_detect"))
    assert result["label_max_abs_difference"] < 1e-3 and result["targets"]["label_max_abs_difference"]["met"]
    assert isinstance(result["targets"]["onnx_encoder_vs_torch"]["met"], bool)


def test_training_benchmark_smoke(tmp_path):
    result = run_benchmark("benchmarks.training", tmp_path / "training.json")
    assert result["device"] == "cpu"
    assert_figures(result["loader"], ("pairs", "seconds", "pairs_per_s", "first_batch_seconds"))
    assert_figures(result["model_only"], ("pairs", "seconds", "pairs_per_s"))
    workers = result["settings"]["num_workers"]
    assert set(result["with_data"]) == {"0", str(workers)}
    for figures in result["with_data"].values():
        assert_figures(figures, ("pairs", "seconds", "pairs_per_s"))
    assert_figures(result, ("with_data_vs_model_only",))
    assert_figures(result["memory"], ("peak_rss_mb",))


def test_face_crop_benchmark_smoke(tmp_path):
    from benchmarks.face_crop import main

    out, figure = tmp_path / "face_crop.json", tmp_path / "face_crop.png"
    assert main(["--clips", "1", "--frames", "6", "--figure", str(figure), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["synthaffect"]["found_fraction"]) == {
        "haar boxes only", "hog + landmarks", "haar + landmarks", "hog + landmarks, detect every frame"
    }
    assert result["detect_every"] >= 1
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(result["figure"]["crops_left_top_side"]) == {"68 landmarks", "face_* (forehead)", "Haar", "HOG"}
