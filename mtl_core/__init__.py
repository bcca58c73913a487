"""The torch-free core that both halves of mtl-sweep import, and that imports neither.

- `tasks`: the task vocabulary, headline metrics and task-set shorthands;
- `contract`: the MLflow run contract (tag, param, metric and artifact names);
- `errors`: user-facing errors (exit code 2);
- `registry` plus one registry per concept: `backbones`, `weightings`, `sources`;
- `settings` and `trial`: the typed train settings and the `TrialConfig` the orchestrator
  builds once and hands to the trainable;
- `files`, `cachedir`, `runs`: atomic writes, the cache folder, contract lookups in MLflow.

Nothing here imports torch or ray; mlflow only inside the functions that take a client.
"""
