"""Evaluation: trec_eval-exact rank metrics (TREC files are read and written by `types.Run` / `types.Qrels`)."""
from retrieval_lab.evaluate.metrics import METRICS, Evaluation, evaluate, metric_name

__all__ = ["METRICS", "Evaluation", "evaluate", "metric_name"]
