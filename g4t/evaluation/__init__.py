"""Evaluation: the published GPT4Tools metrics (exact), chunk gathering, strict mode and reports.

Bad files raise ``g4t.data.io.DataError`` (the one data-error class of the project).
"""

from g4t.evaluation.gather import Gathered, gather_chunks
from g4t.evaluation.io import load_annotations, load_predictions
from g4t.evaluation.metrics import SampleScore, bleu1, extract_prediction, score_sample
from g4t.evaluation.report import EvalResult, evaluate_predictions

__all__ = [
    "EvalResult",
    "Gathered",
    "SampleScore",
    "bleu1",
    "evaluate_predictions",
    "extract_prediction",
    "gather_chunks",
    "load_annotations",
    "load_predictions",
    "score_sample",
]
