"""Sweeps: Hydra multirun glue (parent/child MLflow runs, resume), leaderboard and plots, best config, export.

- `callbacks.SweepCallback`: parent run per multirun, configured in conf/config.yaml (hydra.callbacks.sweep).
- `job.run_sweep_job`: one configuration as a tagged child run; skipped when already FINISHED.
- `resume`: finished-config look-up by hash, orphaned RUNNING runs marked KILLED.
- `ray_launch`: `hydra/launcher=ray`, each configuration a Ray task (the plugin class: hydra_plugins/).
- `report`: leaderboard table and plots logged on the parent run.
- `best`: paired significance tests with Holm correction, cheapest config not significantly worse.
- `export`: frozen best.yaml, safe loading (`retrieval_lab.load_retriever`), `search` and `evaluate --config`.
- `ui`: the MLflow UI with fast settings and the sorted runs-view URL.
"""
