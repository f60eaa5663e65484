"""The training pipeline as DVC stages: ingest -> validate -> prepare -> train -> evaluate -> register.
Shared by the levels that train with DVC and MLflow (2, 3, 4); extra ``taxi-shared[pipeline]``.

One module a stage, each a function with explicit inputs and outputs (paths and params as arguments), so a
test can call it without DVC:

- ``ingest.ingest(params, out, downloads)``: params.yaml `ingest` (source, months, scenario, rows, seed) ->
  one parquet file a month in ``out``;
- ``validate.validate(raw, out, report, months)``: structurally broken months stop the pipeline
  (taxi.validation.DataValidationError); dirty rows are counted in ``report``;
- ``prepare.prepare(validated, out, Split.of(params))``: train.parquet / test.parquet, the last months
  held out;
- ``train.train(data, model_out, run_out, params, *, tracking_uri, experiment)``: fit the raw-trip pipeline,
  save it, log an MLflow run with the model and its lineage (git commit, DVC data hash, params hash);
- ``evaluate.evaluate(model, run, data, reports, *, tracking_uri)``: metrics overall and per borough, plots,
  logged to the same run;
- ``register.register(run, metrics, out, *, model_name, tracking_uri)``: a version in the MLflow Model
  Registry with lineage and metrics tags (not twice for the same run).

A level runs them as commands: ``app.add_typer(stage_cli(load_settings), name="stage")`` in its CLI, and its
own dvc.yaml calls `levelN stage NAME` with the stage's deps and outs as options (e.g. `--raw data/raw
--out data/validated`), listing these modules as the stages' code dependencies. ``tools`` runs dvc, git,
mlflow and prefect from the environment (``tools.repro``: dvc repro + dvc push). Nothing here does work at
import time.

When the platform is down, a stage says so in one line and leaves nothing half done: an MLflow tracking server
that does not answer fails train / evaluate / register before their work, naming its URI and the setting it
comes from (``common.check_tracking``; register adds a version with its tags in one call, or nothing); a DVC
remote that cannot take the data fails the push naming it, dvc.lock, outputs and cache kept
(``tools.push_to_remote``); a Prefect server at PREFECT_API_URL that does not answer is refused before anything
is served (``prefect_server.check_prefect_server``). Test helpers: ``scratch`` (a level's DVC project, or a
one-stage one, in a temporary git repository) and ``tampering`` (a registered model tampered with in its
artifact store, for the levels' tests that their services refuse it).
"""

from taxi.pipeline.cli import PipelineSettings, add_init_git, stage_cli
from taxi.pipeline.common import StageError

__all__ = ["PipelineSettings", "StageError", "add_init_git", "stage_cli"]
