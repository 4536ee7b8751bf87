"""Evaluation: trec_eval-exact rank metrics and TREC file formats."""
from retrieval_lab.evaluate.metrics import METRICS, Evaluation, evaluate, metric_name

__all__ = ["METRICS", "Evaluation", "evaluate", "metric_name"]
