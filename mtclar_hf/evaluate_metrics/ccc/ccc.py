"""Concordance correlation coefficient (CCC) as an `evaluate` metric, wrapping `mtclar_hf.metrics.ccc`.

CCC = 2 cov(y, p) / (var(y) + var(p) + (mean(y) - mean(p))^2), population variances, float64;
NaN pairs (frames without a face) are dropped first. Load offline with `evaluate.load(<this folder>)`.
"""

import datasets
import evaluate

from mtclar_hf.metrics import ccc

_DESCRIPTION = "Concordance correlation coefficient between predictions and references (Lin, 1989)."
_KWARGS_DESCRIPTION = """
Args:
    predictions (list of float): predicted values (e.g. valence per frame).
    references (list of float): ground-truth values.
Returns:
    ccc (float): in [-1, 1]; 1 is perfect agreement. NaN when fewer than two finite pairs.
Examples:
    >>> metric = evaluate.load("mtclar_hf/evaluate_metrics/ccc")
    >>> metric.compute(predictions=[0.1, 0.5, -0.2], references=[0.1, 0.5, -0.2])
    {'ccc': 1.0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CCC(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
        )

    def _compute(self, predictions, references):
        return {"ccc": ccc(references, predictions)}
