"""The labelling API in Python: what `mtclar label` writes comes from `mtclar_hf.labeling` alone."""

import json

import pandas as pd

import mtclar_hf.labeling as labeling


def test_every_exported_name_resolves():
    for name in labeling.__all__:
        assert getattr(labeling, name) is not None, name


def test_label_source_writes_what_mtclar_label_writes(tmp_path, tiny_model_dir, face_video):
    from mtclar_hf.labeling.summary import model_record

    model, processor = labeling.load_model_and_processor(tiny_model_dir)
    labeler = labeling.make_labeler(model, processor, detector=None)
    support = tmp_path / "support.csv"
    support.write_text("frame,valence,arousal\n0,0.5,-0.25\n30,-0.5,0.25\n")
    options = labeling.LabelOptions(support=support, anchor="latest")
    out = tmp_path / "labels.csv"

    summary = labeling.label_source(
        labeler, face_video, out, options, model_info=model_record(tiny_model_dir, model, processor)
    )

    table = pd.read_csv(out)
    assert len(table) == 60 and table.is_support.sum() == 2
    assert table.loc[0, "valence"] == 0.5 and table.loc[30, "arousal"] == 0.25
    assert json.loads((tmp_path / "labels.summary.json").read_text()) == summary
    assert summary["faces"] == "given crops (--no-detect)" and summary["anchor_mode"] == "latest"
