"""Valence/arousal metrics (RMSE, PCC, CCC, SAGR for each) as an `evaluate` metric.

Wraps `mtclar_hf.metrics.affect_metrics`: float64, NaN pairs dropped, PCC of a constant is NaN.
Predictions and references are (valence, arousal) pairs, one per frame or image.
Load offline with `evaluate.load(<this folder>)`.
"""

import datasets
import evaluate

from mtclar_hf.metrics import affect_metrics

_DESCRIPTION = "RMSE, PCC, CCC and SAGR of valence and arousal, as in EmoNet and MT-CLAR."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of [valence, arousal]): predicted labels in [-1, 1].
    references (list of [valence, arousal]): ground-truth labels in [-1, 1].
Returns:
    valence_rmse, valence_pcc, valence_ccc, valence_sagr, arousal_rmse, arousal_pcc, arousal_ccc, arousal_sagr (float).
Examples:
    >>> metric = evaluate.load("mtclar_hf/evaluate_metrics/va_metrics")
    >>> metric.compute(predictions=[[0.1, 0.2], [0.5, -0.1]], references=[[0.2, 0.2], [0.4, -0.3]])["valence_ccc"]
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class VAMetrics(evaluate.Metric):
    def _info(self):
        pair = datasets.Sequence(datasets.Value("float64"), length=2)
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": pair, "references": pair}),
        )

    def _compute(self, predictions, references):
        import numpy as np

        predicted = np.asarray(predictions, dtype=np.float64).reshape(-1, 2)
        truth = np.asarray(references, dtype=np.float64).reshape(-1, 2)
        return affect_metrics(truth[:, 0], predicted[:, 0], truth[:, 1], predicted[:, 1])
