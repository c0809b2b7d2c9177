"""Label formats (NOVA, ELAN, AFEW-VA, time-based CSV): each writer's output read as its format describes it,
round trips through a real variable-frame-rate video's decoded timestamps, and the two commands end to end."""

import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from mtclar_hf.cli import main as cli_main
from mtclar_hf.errors import InputFileError, LabelError
from mtclar_hf.labeling.formats import (
    export_labels,
    import_labels,
    labels_from_table,
    nova_paths,
    read_labels_table,
    resample,
    write_support_csv,
)
from mtclar_hf.labeling.support import read_support_csv
from mtclar_hf.labeling.video import frame_timestamps, write_video

NUM_FRAMES = 40
FACELESS = range(15, 20)


def cli(*args) -> int:
    return cli_main([str(a) for a in args])


@pytest.fixture(scope="module")
def vfr_video(tmp_path_factory):
    """A real variable-frame-rate h264 video: frame intervals of 20 to 60 ms, starting at 0."""
    rng = np.random.default_rng(3)
    times = np.concatenate([[0.0], np.cumsum(rng.choice([0.02, 0.04, 0.06], NUM_FRAMES - 1))])
    frames = [np.full((32, 32, 3), 10 + 5 * i, dtype=np.uint8) for i in range(NUM_FRAMES)]
    return write_video(frames, tmp_path_factory.mktemp("vfr") / "vfr.mp4", timestamps=times), times


@pytest.fixture(scope="module")
def labels_csv(vfr_video, tmp_path_factory):
    """A labels table as `mtclar label --landmarks` writes it, on the video's decoded timestamps."""
    video, _ = vfr_video
    times = frame_timestamps(video)
    face = ~np.isin(np.arange(NUM_FRAMES), FACELESS)
    valence = np.where(face, 0.8 * np.sin(2 * times), np.nan)
    arousal = np.where(face, 0.6 * np.cos(3 * times) - 0.2, np.nan)
    table = pd.DataFrame({"frame": np.arange(NUM_FRAMES), "timestamp": times, "valence": valence, "arousal": arousal,
                          "face_found": face, "is_support": np.arange(NUM_FRAMES) % 10 == 0})
    ring = np.stack([np.cos(np.linspace(0, 6.2, 68)), np.sin(np.linspace(0, 6.2, 68))], axis=1) * 10 + 16
    points = np.where(face[:, None, None], ring[None] + np.arange(NUM_FRAMES)[:, None, None] * 0.1, np.nan)
    landmarks = pd.DataFrame(points.reshape(NUM_FRAMES, -1), columns=[f"lm{i}_{a}" for i in range(68) for a in "xy"])
    path = tmp_path_factory.mktemp("labels") / "clip_labels.csv"
    pd.concat([table, landmarks], axis=1).to_csv(path, index=False)
    return path


def test_decoded_timestamps_are_the_written_variable_ones(vfr_video):
    video, written = vfr_video
    np.testing.assert_allclose(frame_timestamps(video), written, atol=1e-3)


@pytest.mark.parametrize(("to", "name", "rate", "tolerance"), [
    ("seconds", "clip.csv", 200, 0.02),
    ("nova", "clip", 200, 0.02),
    ("elan", "clip.eaf", None, 0.005 + 1e-9),  # values rounded to 2 decimals
    ("afew-va", "clip.json", None, 0.05 + 1e-9),  # integer tenths
])
def test_round_trip_through_the_video_timestamps(tmp_path, vfr_video, labels_csv, to, name, rate, tolerance):
    video, _ = vfr_video
    labels = read_labels_table(labels_csv)
    written = export_labels(labels, to, tmp_path / name, rate=rate)
    times = frame_timestamps(video)
    support = import_labels(written[0], to, times)
    labelled = [i for i in range(NUM_FRAMES) if i not in FACELESS]
    assert sorted(support) == labelled  # faceless frames stay unlabelled, every other frame comes back
    for frame, (valence, arousal) in support.items():
        assert valence == pytest.approx(labels.valence[frame], abs=tolerance)
        assert arousal == pytest.approx(labels.arousal[frame], abs=tolerance)
    out = write_support_csv(support, times, tmp_path / "support.csv")
    reread = read_support_csv(out)
    assert sorted(reread) == sorted(support)
    np.testing.assert_allclose([reread[f] for f in support], list(support.values()), atol=1e-4)


def test_nova_files_are_as_nova_describes_them(tmp_path, labels_csv):
    labels = read_labels_table(labels_csv)
    written = export_labels(labels, "nova", tmp_path / "clip", rate=50)
    assert sorted(p.name for p in written) == [
        "clip.arousal.annotation", "clip.arousal.annotation~", "clip.valence.annotation", "clip.valence.annotation~"]
    expected_samples = math.ceil(labels.frame_ends()[-1] * 50)
    for dimension, (header, data) in nova_paths(tmp_path / "clip").items():
        assert header.read_text().startswith('<?xml version="1.0" ?>')
        root = ET.parse(header).getroot()
        assert root.tag == "annotation" and root.get("ssi-v") == "3"
        assert [child.tag for child in root] == ["info", "meta", "scheme"]
        assert root.find("info").attrib == {"ftype": "ASCII", "size": str(expected_samples)}
        assert root.find("scheme").attrib == {"name": dimension, "type": "CONTINUOUS", "sr": "50", "min": "-1", "max": "1"}
        lines = data.read_text().splitlines()
        assert len(lines) == expected_samples
        pairs = [line.split(";") for line in lines]
        assert all(len(pair) == 2 for pair in pairs)
        # line k is the sample at k / sr seconds: NaN with confidence 0 exactly inside the faceless stretch
        start, end = labels.timestamps[FACELESS[0]], labels.frame_ends()[FACELESS[-1]]
        for k, (score, confidence) in enumerate(pairs):
            inside = start <= k / 50 < end
            assert (score == "NaN") == inside and confidence == ("0" if inside else "1")
            assert inside or -1 <= float(score) <= 1


def test_elan_document_is_valid_eaf(tmp_path, labels_csv):
    labels = read_labels_table(labels_csv)
    (path,) = export_labels(labels, "elan", tmp_path / "clip.eaf")
    root = ET.parse(path).getroot()
    assert root.tag == "ANNOTATION_DOCUMENT" and root.get("FORMAT") == "3.0"
    assert {"AUTHOR", "DATE", "VERSION"} <= set(root.attrib)
    assert [child.tag for child in root][:2] == ["HEADER", "TIME_ORDER"]
    assert root.find("HEADER").get("TIME_UNITS") == "milliseconds"
    slots = {s.get("TIME_SLOT_ID"): int(s.get("TIME_VALUE")) for s in root.iter("TIME_SLOT")}
    assert len(slots) == len(root.findall("TIME_ORDER/TIME_SLOT"))  # ids unique
    types = {t.get("LINGUISTIC_TYPE_ID"): t for t in root.iter("LINGUISTIC_TYPE")}
    tiers = root.findall("TIER")
    assert [t.get("TIER_ID") for t in tiers] == ["valence", "arousal"]
    ids = set()
    for tier in tiers:
        assert types[tier.get("LINGUISTIC_TYPE_REF")].get("TIME_ALIGNABLE") == "true"
        previous_end = -1
        runs = tier.findall("ANNOTATION/ALIGNABLE_ANNOTATION")
        for annotation in runs:
            start, end = slots[annotation.get("TIME_SLOT_REF1")], slots[annotation.get("TIME_SLOT_REF2")]
            assert previous_end <= start < end  # ordered, no overlap, no zero length
            previous_end = end
            assert -1 <= float(annotation.findtext("ANNOTATION_VALUE")) <= 1
            ids.add(annotation.get("ANNOTATION_ID"))
        # the faceless stretch is a gap: no annotation covers its frames
        gap = (round(labels.timestamps[FACELESS[0]] * 1000), round(labels.frame_ends()[FACELESS[-1]] * 1000))
        assert all(slots[a.get("TIME_SLOT_REF2")] <= gap[0] or slots[a.get("TIME_SLOT_REF1")] >= gap[1] for a in runs)
    assert len(ids) == len(root.findall(".//ALIGNABLE_ANNOTATION"))  # annotation ids unique across tiers


def test_elan_runs_join_frames_of_one_rounded_value(tmp_path):
    table = pd.DataFrame({"frame": range(6), "timestamp": np.arange(6) * 0.04,
                          "valence": [0.101, 0.099, 0.1, 0.5, np.nan, 0.5], "arousal": [0.0] * 6})
    table.loc[4, "arousal"] = np.nan
    (path,) = export_labels(labels_from_table(table), "elan", tmp_path / "runs.eaf")
    root = ET.parse(path).getroot()
    slots = {s.get("TIME_SLOT_ID"): int(s.get("TIME_VALUE")) for s in root.iter("TIME_SLOT")}
    valence = [(slots[a.get("TIME_SLOT_REF1")], slots[a.get("TIME_SLOT_REF2")], a.findtext("ANNOTATION_VALUE"))
               for a in root.findall("TIER[@TIER_ID='valence']/ANNOTATION/ALIGNABLE_ANNOTATION")]
    assert valence == [(0, 120, "0.10"), (120, 160, "0.50"), (200, 240, "0.50")]


def test_afew_va_json_is_as_the_dataset_stores_it(tmp_path, labels_csv):
    labels = read_labels_table(labels_csv)
    (path,) = export_labels(labels, "afew-va", tmp_path / "007.json")
    data = json.loads(path.read_text())
    assert data["video_id"] == "007" and isinstance(data["actor"], str)
    assert list(data["frames"]) == [f"{i:05d}" for i in range(NUM_FRAMES) if i not in FACELESS]
    for name, entry in data["frames"].items():
        assert set(entry) == {"valence", "arousal", "landmarks"}
        assert all(isinstance(entry[k], int) and -10 <= entry[k] <= 10 for k in ("valence", "arousal"))
        assert entry["valence"] == round(labels.valence[int(name)] * 10)
        assert np.asarray(entry["landmarks"]).shape == (68, 2)


def test_seconds_csv_is_interpolated_and_empty_without_a_face(tmp_path, labels_csv):
    labels = read_labels_table(labels_csv)
    (path,) = export_labels(labels, "seconds", tmp_path / "clip.csv", rate=10)
    table = pd.read_csv(path)
    assert list(table.columns) == ["time", "valence", "arousal"]
    np.testing.assert_allclose(table.time, np.arange(len(table)) / 10)
    times, valence, _ = resample(labels, 10)
    np.testing.assert_allclose(table.valence, valence, atol=1e-4)
    # the sample at 0.3 s is the straight line between the frames shown before and after it
    i = int(np.searchsorted(labels.timestamps, 0.3, side="right")) - 1
    t0, t1 = labels.timestamps[i : i + 2]
    line = labels.valence[i] + (0.3 - t0) / (t1 - t0) * (labels.valence[i + 1] - labels.valence[i])
    assert table.valence[3] == pytest.approx(line, abs=1e-4)
    start, end = labels.timestamps[FACELESS[0]], labels.frame_ends()[FACELESS[-1]]
    inside = (table.time >= start) & (table.time < end)
    assert inside.any() and table.valence[inside].isna().all() and table.valence[~inside].notna().all()


def test_afew_va_export_without_landmarks_refuses_in_one_line(tmp_path, labels_csv, capsys):
    table = pd.read_csv(labels_csv)
    bare = tmp_path / "bare.csv"
    table.drop(columns=[c for c in table.columns if c.startswith("lm")]).to_csv(bare, index=False)
    assert cli("export-labels", bare, "--to", "afew-va", "--out", tmp_path / "out.json") == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "bare.csv" in error and "--landmarks" in error
    assert not (tmp_path / "out.json").exists()


def test_bad_label_files_are_one_line_errors(tmp_path, vfr_video):
    video, _ = vfr_video
    times = frame_timestamps(video)
    eaf = tmp_path / "bad.eaf"
    eaf.write_text("<ANNOTATION_DOCUMENT><HEADER TIME_UNITS='milliseconds'/><TIME_ORDER>"
                   "<TIME_SLOT TIME_SLOT_ID='t1' TIME_VALUE='0'/><TIME_SLOT TIME_SLOT_ID='t2' TIME_VALUE='500'/>"
                   "</TIME_ORDER><TIER TIER_ID='valence'><ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID='a1' "
                   "TIME_SLOT_REF1='t1' TIME_SLOT_REF2='t2'><ANNOTATION_VALUE>happy</ANNOTATION_VALUE>"
                   "</ALIGNABLE_ANNOTATION></ANNOTATION></TIER><TIER TIER_ID='arousal'/></ANNOTATION_DOCUMENT>")
    with pytest.raises(InputFileError, match=r"bad.eaf: annotation a1 on tier valence: 'happy' is not a number"):
        import_labels(eaf, "elan", times)
    eaf.write_text(eaf.read_text().replace("happy", "0.5"))
    with pytest.raises(LabelError, match=r"bad.eaf: frame 0 \(t=0.000 s\) has valence but no arousal"):
        import_labels(eaf, "elan", times)
    broken = tmp_path / "broken.eaf"
    broken.write_text("<ANNOTATION_DOCUMENT>")
    with pytest.raises(InputFileError, match=r"broken.eaf: not valid XML"):
        import_labels(broken, "elan", times)
    loud = tmp_path / "loud.csv"
    loud.write_text("time,valence,arousal\n0,0.2,0.1\n0.5,2.5,0.1\n")
    with pytest.raises(LabelError, match=r"loud.csv: line 3: valence 2.5 is outside \[-1, 1\]"):
        import_labels(loud, "seconds", times)
    with pytest.raises(InputFileError, match=r"clip.valence.annotation: NOVA valence header not found"):
        import_labels(tmp_path / "clip.valence.annotation", "nova", times)


def test_nova_in_another_range_is_rescaled(tmp_path, vfr_video):
    """NOVA annotators often use [0, 1]: the scheme's min and max map onto [-1, 1]."""
    video, _ = vfr_video
    times = frame_timestamps(video)
    for dimension, score in (("valence", "0.75"), ("arousal", "0.25")):
        header = tmp_path / f"rater.{dimension}.annotation"
        header.write_text(f'<?xml version="1.0" ?><annotation ssi-v="3"><info ftype="ASCII" size="10"/>'
                          f'<scheme name="{dimension}" type="CONTINUOUS" sr="10" min="0" max="1"/></annotation>')
        (tmp_path / f"rater.{dimension}.annotation~").write_text(f"{score};1\n" * 10)
    support = import_labels(tmp_path / "rater.arousal.annotation", "nova", times)
    # samples at 0, 0.1, ..., 0.9 s: frames up to one sample interval past the last one are labelled
    assert sorted(support) == list(range(int(np.flatnonzero(times <= 1.0 + 1e-9)[-1]) + 1))
    np.testing.assert_allclose(list(support.values()), [(0.5, -0.5)] * len(support))


def test_commands_end_to_end_from_mtclar_label(tmp_path, tiny_model_dir, afew_raw, capsys):
    """`mtclar label --landmarks` -> export-labels (every format) -> import-labels -> `mtclar label --support`."""
    clip = afew_raw / "001"
    labels = tmp_path / "labels.csv"
    assert cli("label", clip, "--model", tiny_model_dir, "--labels", clip / "001.json", "--strategy", "every-k",
               "--k", "10", "--landmarks", "--out", labels, "--quiet") == 0
    table = pd.read_csv(labels)
    for to, out in (("afew-va", "clip.json"), ("elan", "clip.eaf"), ("nova", "nova/clip"), ("seconds", "clip.csv")):
        assert cli("export-labels", labels, "--to", to, "--out", tmp_path / out) == 0, capsys.readouterr().err
        support = tmp_path / f"support_{to}.csv"
        assert cli("import-labels", tmp_path / out, "--from", to, "--video", clip, "--out", support) == 0
        frames = pd.read_csv(support)
        assert frames.frame.tolist() == list(range(len(table)))  # a frame folder at 25 fps: every frame back
        # sampled formats at the default rate (the folder's 25 fps) put one sample on each frame: exact
        tolerance = {"afew-va": 0.05, "elan": 0.005, "nova": 1e-4, "seconds": 1e-4}[to]
        np.testing.assert_allclose(frames.valence, table.valence, atol=tolerance + 1e-9)
        np.testing.assert_allclose(frames.arousal, table.arousal, atol=tolerance + 1e-9)
    # the imported file is a support CSV `mtclar label` takes
    out = tmp_path / "relabelled.csv"
    assert cli("label", clip, "--model", tiny_model_dir, "--support", tmp_path / "support_elan.csv",
               "--out", out, "--quiet") == 0
    assert pd.read_csv(out).is_support.all()
    assert cli("export-labels", labels, "--to", "elan", "--out", tmp_path / "x.eaf", "--rate", "5") == 1
    assert "--rate applies to the nova and seconds formats" in capsys.readouterr().err
