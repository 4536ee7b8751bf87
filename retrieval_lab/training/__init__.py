"""Fine-tuning on a dataset's training queries: bi-encoders (`train-embedder`) and cross-encoders (`train-reranker`).

Both trainers share this module's pieces: the training data with its leakage guard (never a query of the split being
evaluated), the content hash of the data, MLflow logging of the training run (params, loss curve, data hash, time,
peak memory); `models.registry` makes a trained model usable as `embedder=<name>` / `reranker=<name>`.
"""
from retrieval_lab.training.data import TrainingQueries, check_leakage, training_queries

__all__ = ["TrainingQueries", "check_leakage", "training_queries"]
