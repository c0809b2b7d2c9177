"""Few-shot video labelling with MT-CLAR: the labelling API the CLI, the demo, the quickstart and the benchmarks use.

    from mtclar_hf.labeling import load_model_and_processor, make_labeler, read_support_csv, write_table

    model, processor = load_model_and_processor("outputs/quickstart/model")
    labeler = make_labeler(model, processor)                   # face detector -> 68 landmarks -> crop
    encoded = labeler.encode("video.mp4")                      # every frame embedded once: an EncodedVideo
    table = labeler.label(encoded, read_support_csv("support.csv"))   # any support set, any anchor mode
    write_table(table, "labels.csv")

* loading a model, its processor and a labeller: `load_model_and_processor`, `make_labeler`;
* encoding and labelling: `FewShotVideoLabeler`, `EncodedVideo` (`labeler`: a frame to a crop to an embedding,
  and the table), `label_encoded` (an encoded video and a support set to the table, given only the model),
  `predict_from_anchors`, the mode lists (`ANCHOR_MODES`, `BASELINES`, `ALL_MODES`, `AUTO_MODE`) and the
  model's `label_range` (`anchors`: an embedding and the anchors to a label);
* labelling files: `label_source` (one video or frame folder to a table and its summary), `label_folder` (every
  video of a folder), with their `LabelOptions`;
* support sets: `read_support_csv`, `read_label_csv`, `check_support`, `select_support` (`STRATEGIES`),
  `suggest_frames`, `suggestion_table`;
* tables and figures: `write_table`, `plot_labels`, `timeline_figure`, `circumplex_figure`;
* evaluation: `Protocol`, `evaluate_afew_va`, `evaluate_videos`.

Names are imported lazily (PEP 562) so that `mtclar --help`, which imports `mtclar_hf.labeling.cli`, does
not pay for torch, PyAV, OpenCV or pandas.
"""

from ..lazy_exports import lazy_exports

_EXPORTS = {
    "load_model_and_processor": "loading",
    "make_labeler": "loading",
    "ALL_MODES": "anchors",
    "ANCHOR_MODES": "anchors",
    "AUTO_MODE": "anchors",
    "BASELINES": "anchors",
    "EncodedVideo": "labeler",
    "FewShotVideoLabeler": "labeler",
    "label_encoded": "labeler",
    "label_range": "anchors",
    "predict_from_anchors": "anchors",
    "LabelOptions": "batch",
    "label_folder": "batch",
    "label_source": "batch",
    "STRATEGIES": "support",
    "check_support": "support",
    "read_label_csv": "support",
    "read_support_csv": "support",
    "select_support": "support",
    "suggest_frames": "support",
    "suggestion_table": "suggestions",
    "circumplex_figure": "tables",
    "plot_labels": "tables",
    "timeline_figure": "tables",
    "write_table": "tables",
    "Protocol": "evaluation",
    "evaluate_afew_va": "evaluation",
    "evaluate_videos": "own_videos",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
