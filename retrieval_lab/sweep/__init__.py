"""Sweeps: Hydra multirun glue (parent/child MLflow runs, resume), leaderboard and plots, best config, export.

- `callbacks.SweepCallback`: parent run per multirun, configured in conf/config.yaml (hydra.callbacks.sweep).
- `job.run_sweep_job`: one configuration as a tagged child run; skipped when already FINISHED.
- `resume`: finished-config look-up by hash, orphaned RUNNING runs marked KILLED.
- `ray_launch`: `hydra/launcher=ray`, each configuration a Ray task (the plugin class: hydra_plugins/).
- `grids`: the candidate pipelines of the cross-validated selection (benchmarks/cross_validate.py).
- `report`: leaderboard table (with paired intervals and the power line) and plots logged on the parent run.
- `best` (commands/best.py): paired intervals and tests against the top, the cheapest configuration shown
  non-inferior, the power line, cross-validation (statistics in evaluate/significance.py).
- `export`: frozen best.yaml, safe loading (`retrieval_lab.load_retriever`), `search` and `evaluate --config`.
- `ui`: the MLflow UI with fast settings and the sorted runs-view URL.
"""
