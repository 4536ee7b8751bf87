"""The tracking store: MLflow runs and where they go.

- `store`: the tracking URI (SQLite under `mlruns/`, a server, `tracking=server`), the store check that fails before
  any work, the client (HTTP retries against a server), experiments.
- `runs`: one run per evaluated configuration (params, metrics, config.yaml, per-query table, TREC run), the summary
  printed beside it, per-query values read back.
- `server` and `postgres`: `retrieval-lab server`'s process library, an MLflow server on a throwaway PostgreSQL
  cluster.

What a composed config means for a run (its experiment, its params) is the pipeline's: `pipeline.tracked`.
"""
from retrieval_lab.tracking.runs import (finishing, flatten, format_number, log_params, log_run, per_query_values,
                                         summary_table, write_artifacts)
from retrieval_lab.tracking.store import (CHECK_HTTP_ENV, HTTP_RETRY_DEFAULTS, ServerClient, TrackingStoreError,
                                          artifact_root, check_store, client, ensure_experiment,
                                          quiet_mlflow_environment, server_command, tracking_uri, uri_source)

__all__ = ["CHECK_HTTP_ENV", "HTTP_RETRY_DEFAULTS", "ServerClient", "TrackingStoreError", "artifact_root",
           "check_store", "client", "ensure_experiment", "finishing", "flatten", "format_number", "log_params",
           "log_run", "per_query_values", "quiet_mlflow_environment", "server_command", "summary_table",
           "tracking_uri", "uri_source", "write_artifacts"]
